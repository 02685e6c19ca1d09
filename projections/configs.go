package projections

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"time"

	"github.com/recledger/recledger/ledger"
)

// configChange applies a TypeConfig event: put or delete one part, or
// replace the whole document. It takes effect from the next event on.
//
// A change costs time in what it changes, not in the size of the
// configuration: a site configured user by user (as administrators and
// `recledger simulate` do it) folds in linear time. The configuration's
// maps are changed in place; nothing outside the state holds them (Config
// hands out a copy, members copy a user and a team by value), and a part
// is stored only once its value decoded, so a bad event changes nothing.
//
// A change of max_pause_seconds takes effect at the change (limitAt): a
// pause already open then expires no earlier than that, and never before
// the limit existed.
func (s *State) configChange(at ledger.Time, d *ledger.ConfigChange) (Effect, error) {
	limit := s.cfg.Site.MaxPauseSeconds
	defer func() {
		if s.cfg.Site.MaxPauseSeconds != limit {
			s.limitAt = at
		}
	}()
	put := d.Op != ledger.OpDelete
	var err error
	var gone []string    // users removed while logged in
	var touched []string // users whose configuration the change is (a trace by user shows it)
	all := false         // a change of what every user's rules read
	switch d.Part {
	case ledger.PartDocument:
		var c ledger.Config
		if put {
			err = json.Unmarshal(d.Value, &c)
		}
		if err == nil {
			c.Normalize()
			touched = changedUsers(s.cfg, c)
			all = !reflect.DeepEqual(s.cfg.Site, c.Site) || !reflect.DeepEqual(s.cfg.Metadata, c.Metadata)
			for id := range c.Users {
				if _, was := s.cfg.Users[id]; !was {
					s.configuredAnew(id)
				}
			}
			s.cfg = c
			s.rebuildCaches()
			gone = s.forgetRemovedLogins()
		}
	case ledger.PartSite:
		var v ledger.Site
		if put {
			err = json.Unmarshal(d.Value, &v)
		}
		if err == nil {
			v.Normalize()
			s.cfg.Site = v
			s.siteCaches()
			all = true
		}
	case ledger.PartMetadata:
		all = true
		if put {
			var v ledger.MetadataKey
			if err = json.Unmarshal(d.Value, &v); err == nil {
				s.cfg.Metadata[d.Key] = v
			}
		} else {
			delete(s.cfg.Metadata, d.Key)
		}
	case ledger.PartTeam:
		if put {
			var v ledger.Team
			if err = json.Unmarshal(d.Value, &v); err == nil {
				v.Normalize()
				s.cfg.Teams[d.Key] = v
			}
		} else {
			delete(s.cfg.Teams, d.Key)
		}
		if err == nil {
			s.resetMembers() // each member holds its team's workflow
			touched = s.usersOfTeam(d.Key)
		}
	case ledger.PartUser:
		var v ledger.User
		if put {
			err = json.Unmarshal(d.Value, &v)
		}
		if err == nil {
			touched = []string{d.Key}
			if _, was := s.cfg.Users[d.Key]; put && !was {
				s.configuredAnew(d.Key)
			}
			s.userChanged(d.Key, v, put)
			if !put && s.forgetLogin(d.Key) {
				gone = []string{d.Key}
			}
		}
	default:
		return Effect{}, fmt.Errorf("config: %w: part %q", ledger.ErrCorrupt, d.Part)
	}
	if err != nil {
		return Effect{}, fmt.Errorf("config %s: %w: %v", d.Part, ledger.ErrCorrupt, err)
	}
	line := "config " + d.Op + " " + d.Part
	if d.Key != "" {
		line += " " + d.Key
	}
	switch {
	case !put:
	case d.Part == ledger.PartDocument:
		line += fmt.Sprintf(" (%d users, %d teams, %d metadata keys)", len(s.cfg.Users), len(s.cfg.Teams), len(s.cfg.Metadata))
		if len(touched) > 0 && len(touched) < len(s.cfg.Users) {
			// which users it changes, and to what: a trace by user needs it
			for i, id := range touched {
				if i == maxUsersShown {
					line += fmt.Sprintf("; and %d more", len(touched)-i)
					break
				}
				if u, ok := s.cfg.Users[id]; ok {
					b, _ := json.Marshal(u)
					line += "; user " + id + " → " + string(b)
				} else {
					line += "; user " + id + " removed"
				}
			}
		}
	default:
		line += " → " + string(d.Value) // what an engineer asks of a change: the value it set
	}
	eff := Effect{Changes: []string{line}, Users: touched, All: all}
	for _, u := range gone {
		if !slices.Contains(eff.Users, u) {
			eff.Users = append(eff.Users, u)
		}
		eff.Changes = append(eff.Changes, u+" no longer configured: logged out")
	}
	return eff, nil
}

// maxUsersShown bounds the users a document's change line shows.
const maxUsersShown = 10

// changedUsers lists, sorted, the users whose configuration differs
// between old and c (put, changed or removed).
func changedUsers(old, c ledger.Config) []string {
	var ids []string
	for id, u := range c.Users {
		if o, ok := old.Users[id]; !ok || !reflect.DeepEqual(o, u) {
			ids = append(ids, id)
		}
	}
	for id := range old.Users {
		if _, ok := c.Users[id]; !ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// usersOfTeam lists, sorted, the users configured in team.
func (s *State) usersOfTeam(team string) []string {
	var ids []string
	for id, u := range s.cfg.Users {
		if u.Team == team {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// configuredAnew starts user id, configured where it was not, as a new
// user: no last call, though its former self's call ended after the
// removal (events of version 2 on; until then the last call stayed), and
// no active call (version 3 on).
func (s *State) configuredAnew(id string) {
	a := s.agents[id]
	if a == nil || s.rules < 2 {
		return
	}
	a.LastCall = nil
	if s.rules >= 3 {
		// Its former self's calls, still active, stay that self's: they
		// record on to their end, and neither answer the new user's
		// commands nor become its last call (version 3; before, the new
		// user took them over, and the last of them as its last call).
		for _, k := range a.Calls {
			if c := s.calls[k]; c != nil {
				c.User, c.users = "", nil
			}
		}
		a.Calls = nil
	}
}

// forgetLogin logs out user id, removed from the configuration: its
// extension's calls go to nobody (or to the users there by default) from
// the next one, and a user configured again under that id starts as a
// new one, on its default extension, with no last call. Calls already
// active keep it until they end, as after a login elsewhere. It reports
// whether id was logged in.
func (s *State) forgetLogin(id string) bool {
	a := s.agents[id]
	if a == nil {
		return false
	}
	was := a.LoggedIn
	s.leave(a)
	a.Detached, a.LastCall = false, nil
	return was
}

// forgetRemovedLogins is forgetLogin for each user logged in that a new
// configuration document no longer has, in id order.
func (s *State) forgetRemovedLogins() []string {
	var gone []string
	for _, id := range s.logins {
		if _, ok := s.cfg.Users[id]; !ok {
			gone = append(gone, id)
		}
	}
	slices.Sort(gone)
	for _, id := range gone {
		s.forgetLogin(id)
	}
	return gone
}

// userChanged stores user id's new configuration u (put) or removes it,
// and mends the caches that depend on it: its member and the default
// extensions' index.
func (s *State) userChanged(id string, u ledger.User, put bool) {
	if old, ok := s.cfg.Users[id]; ok && old.Extension != "" {
		s.dropDefault(old.Extension, id)
	}
	delete(s.members, id)
	if !put {
		delete(s.cfg.Users, id)
		return
	}
	s.cfg.Users[id] = u
	if u.Extension != "" {
		s.addDefault(u.Extension, id)
	}
}

// addDefault puts id into ext's sorted list of users having it as default
// extension.
func (s *State) addDefault(ext, id string) {
	ids := s.defaults[ext]
	i, found := slices.BinarySearch(ids, id)
	if !found {
		s.defaults[ext] = slices.Insert(ids, i, id)
	}
}

// dropDefault takes id out of ext's list; an empty list is removed, as a
// rebuild would leave it.
func (s *State) dropDefault(ext, id string) {
	ids := s.defaults[ext]
	i, found := slices.BinarySearch(ids, id)
	switch {
	case !found:
	case len(ids) == 1:
		delete(s.defaults, ext)
	default:
		s.defaults[ext] = slices.Delete(ids, i, i+1)
	}
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

// rebuildCaches derives every cache from the whole configuration: after a
// new document or a checkpoint.
func (s *State) rebuildCaches() {
	s.siteCaches()
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

// siteCaches derives the time zone and the upload time from the site.
func (s *State) siteCaches() {
	// The zone is loaded again only when its name changed: loading it
	// reads the database the binary carries (ledger.LoadZone), never the
	// host's, so that every machine dates the site's contacts alike.
	if s.loc == nil || s.locName != s.cfg.Site.Timezone {
		s.loc, s.locName = time.UTC, s.cfg.Site.Timezone
		if l, err := ledger.LoadZone(s.cfg.Site.Timezone); err == nil {
			s.loc = l
		}
	}
	s.uploadMin = 23 * 60
	if u, err := time.Parse("15:04", s.cfg.Site.UploadTime); err == nil {
		s.uploadMin = u.Hour()*60 + u.Minute()
	}
}

// team returns the workflow of a team; an unknown team has the zero
// workflow (every associated extension recorded, nothing saved).
func (s *State) team(name string) ledger.Team { return s.cfg.Teams[name] }
