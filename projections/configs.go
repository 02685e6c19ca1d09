package projections

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/recledger/recledger/ledger"
)

// configChange applies a TypeConfig event: put or delete one part, or
// replace the whole document. It takes effect from the next event on.
func (s *State) configChange(d *ledger.ConfigChange) (Effect, error) {
	cfg := cloneConfig(s.cfg)
	put := d.Op != ledger.OpDelete
	var err error
	switch d.Part {
	case ledger.PartDocument:
		var c ledger.Config
		if put {
			err = json.Unmarshal(d.Value, &c)
		}
		cfg = c
	case ledger.PartSite:
		var v ledger.Site
		if put {
			err = json.Unmarshal(d.Value, &v)
		}
		cfg.Site = v
	case ledger.PartMetadata:
		if put {
			var v ledger.MetadataKey
			if err = json.Unmarshal(d.Value, &v); err == nil {
				cfg.Metadata[d.Key] = v
			}
		} else {
			delete(cfg.Metadata, d.Key)
		}
	case ledger.PartTeam:
		if put {
			var v ledger.Team
			if err = json.Unmarshal(d.Value, &v); err == nil {
				cfg.Teams[d.Key] = v
			}
		} else {
			delete(cfg.Teams, d.Key)
		}
	case ledger.PartUser:
		if put {
			var v ledger.User
			if err = json.Unmarshal(d.Value, &v); err == nil {
				cfg.Users[d.Key] = v
			}
		} else {
			delete(cfg.Users, d.Key)
		}
	default:
		return Effect{}, fmt.Errorf("config: %w: part %q", ledger.ErrCorrupt, d.Part)
	}
	if err != nil {
		return Effect{}, fmt.Errorf("config %s: %w: %v", d.Part, ledger.ErrCorrupt, err)
	}
	cfg.Normalize()
	s.cfg = cfg
	s.rebuildCaches()
	line := "config " + d.Op + " " + d.Part
	if d.Key != "" {
		line += " " + d.Key
	}
	return Effect{Changes: []string{line}}, nil
}

// cloneConfig copies the maps, so a config value handed out by Config is
// never changed behind its holder's back.
func cloneConfig(c ledger.Config) ledger.Config {
	out := ledger.Config{Site: c.Site,
		Metadata: make(map[string]ledger.MetadataKey, len(c.Metadata)),
		Teams:    make(map[string]ledger.Team, len(c.Teams)),
		Users:    make(map[string]ledger.User, len(c.Users)),
	}
	for k, v := range c.Metadata {
		out.Metadata[k] = v
	}
	for k, v := range c.Teams {
		out.Teams[k] = v
	}
	for k, v := range c.Users {
		out.Users[k] = v
	}
	return out
}

// rebuildCaches derives the time zone and the default-extension index from
// the configuration.
func (s *State) rebuildCaches() {
	// The zone is read again only when its name changed: loading it reads
	// the system's zone files, and most changes are to users or teams.
	if s.loc == nil || s.locName != s.cfg.Site.Timezone {
		s.loc, s.locName = time.UTC, s.cfg.Site.Timezone
		if l, err := time.LoadLocation(s.cfg.Site.Timezone); err == nil {
			s.loc = l
		}
	}
	s.uploadMin = 23 * 60
	if u, err := time.Parse("15:04", s.cfg.Site.UploadTime); err == nil {
		s.uploadMin = u.Hour()*60 + u.Minute()
	}
	s.resetMembers()
	s.defaults = make(map[string][]string, len(s.cfg.Users))
	for id, u := range s.cfg.Users {
		if u.Extension != "" {
			s.defaults[u.Extension] = append(s.defaults[u.Extension], id)
		}
	}
	for _, ids := range s.defaults {
		sort.Strings(ids)
	}
}

// team returns the workflow of a team; an unknown team has the zero
// workflow (every associated extension recorded, nothing saved).
func (s *State) team(name string) ledger.Team { return s.cfg.Teams[name] }
