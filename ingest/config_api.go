package ingest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/recledger/recledger/ledger"
)

// Config change sources.
const (
	configSourceAPI  = "api"
	configSourceFile = "file"
)

// configReply is the answer to a configuration change.
type configReply struct {
	Part    string `json:"part"`
	Key     string `json:"key,omitempty"`
	Op      string `json:"op"`
	Seq     uint64 `json:"seq"`
	EventID string `json:"event_id"`
	// SharesExtensionWith lists the other users whose default extension
	// a user put has too, and Note says what that means: shared desks
	// are allowed, a typo is not told apart from one.
	SharesExtensionWith []string `json:"shares_extension_with,omitempty"`
	Note                string   `json:"note,omitempty"`
}

// handleGetConfig serves GET /v1/config: the whole document.
func (s *Server) handleGetConfig(w http.ResponseWriter, r *http.Request) {
	s.writeJSON(w, http.StatusOK, s.views.Config())
}

// handlePutSite serves PUT /v1/config/site.
func (s *Server) handlePutSite(w http.ResponseWriter, r *http.Request) {
	var site ledger.Site
	if !s.decodeConfig(w, r, "site", &site) {
		return
	}
	site.Normalize()
	s.putPart(w, r, ledger.PartSite, "", site, site.Validate("site"))
}

// handlePutMetadata serves PUT /v1/config/metadata/{key}; at most
// ledger.MaxMetadataKeys keys may be defined (checked in putPart).
func (s *Server) handlePutMetadata(w http.ResponseWriter, r *http.Request) {
	putNamed[ledger.MetadataKey](s, w, r, ledger.PartMetadata, "key", "metadata.")
}

// handlePutTeam serves PUT /v1/config/teams/{team}.
func (s *Server) handlePutTeam(w http.ResponseWriter, r *http.Request) {
	putNamed[ledger.Team](s, w, r, ledger.PartTeam, "team", "teams.")
}

// handlePutUser serves PUT /v1/config/users/{user_id}.
func (s *Server) handlePutUser(w http.ResponseWriter, r *http.Request) {
	putNamed[ledger.User](s, w, r, ledger.PartUser, "user_id", "users.")
}

// namedPart is a configuration part kept under a name (a metadata key, a
// team, a user): it validates itself, naming the field at fault.
type namedPart interface {
	Validate(field string) error
}

// putNamed reads, normalises (when the part has defaults) and validates one
// named part from the path value param, and appends it.
func putNamed[T namedPart](s *Server, w http.ResponseWriter, r *http.Request, part, param, prefix string) {
	name := r.PathValue(param)
	field := prefix + name
	var v T
	if !s.decodeConfig(w, r, field, &v) {
		return
	}
	if n, ok := any(&v).(interface{ Normalize() }); ok {
		n.Normalize()
	}
	err := ledger.ValidateName(field, name)
	if part == ledger.PartUser {
		err = ledger.ValidateUserID(field, name)
	}
	if err == nil {
		err = v.Validate(field)
	}
	s.putPart(w, r, part, name, v, err)
}

// decodeConfig reads a configuration part strictly (unknown fields are
// errors: a misspelt setting must not be silently dropped).
func (s *Server) decodeConfig(w http.ResponseWriter, r *http.Request, field string, v any) bool {
	release := s.holdFeedBody(r)
	body, err := readBody(w, r, maxFeedBody)
	if err != nil {
		release()
		s.writeError(w, r, err)
		return false
	}
	err = s.tokens.configToken(field, body)
	if err == nil {
		err = decodeConfigPart(body, field, v)
	}
	release()
	if err != nil {
		s.writeError(w, r, configError(err))
		return false
	}
	return true
}

// configError makes a validation error the 400 of API.md §4.
func configError(err error) error {
	var fe *ledger.FieldError
	if ok := asFieldError(err, &fe); ok {
		return newError(reasonInvalidConfig, fe.Message).with("field", fe.Field)
	}
	return newError(reasonInvalidConfig, err.Error())
}

// putPart appends a validated put of one part.
func (s *Server) putPart(w http.ResponseWriter, r *http.Request, part, key string, v any, verr error) {
	if verr != nil {
		s.writeError(w, r, configError(verr))
		return
	}
	value, err := json.Marshal(v)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	var reply configReply
	if u, ok := v.(ledger.User); ok {
		cfg := s.views.Config()
		if _, defined := cfg.Teams[u.Team]; !defined {
			s.writeError(w, r, newError(reasonInvalidConfig,
				fmt.Sprintf("team %q is not defined: put the team first (a user of no team is recorded and nothing of it is saved)", u.Team)).with("field", "users."+key+".team"))
			return
		}
		reply.SharesExtensionWith, reply.Note = sharedExtension(cfg, key, u.Extension)
	}
	if part == ledger.PartMetadata {
		defined := s.views.Config().Metadata
		if _, ok := defined[key]; !ok && len(defined) >= ledger.MaxMetadataKeys {
			s.writeError(w, r, newError(reasonInvalidConfig,
				fmt.Sprintf("at most %d metadata keys may be defined", ledger.MaxMetadataKeys)).with("field", "metadata"))
			return
		}
	}
	s.changeConfigWith(w, r, ledger.ConfigChange{Part: part, Key: key, Op: ledger.OpPut, Value: value}, reply)
}

// sharedExtension lists the users other than user whose default
// extension is ext, and says what that means (an admin's walk gave bob
// jdoe's extension by mistake: bob, first by id, took jdoe's calls and
// nothing said so).
func sharedExtension(cfg ledger.Config, user, ext string) ([]string, string) {
	if ext == "" {
		return nil, ""
	}
	var others []string
	for id, u := range cfg.Users {
		if id != user && u.Extension == ext {
			others = append(others, id)
		}
	}
	if len(others) == 0 {
		return nil, ""
	}
	slices.Sort(others)
	first := slices.Min(append([]string{user}, others...))
	return others, fmt.Sprintf("extension %s is also the default extension of %s: its calls go to the agent logged in on it, else to the first of its users by user id (%s) unless logged in elsewhere; a shared desk is allowed (docs/rules-decisions.md)",
		ext, strings.Join(others, ", "), first)
}

// handleDelete serves DELETE of a metadata key, team or user (404 when it
// is not defined).
func (s *Server) handleDelete(part, pathKey string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key := r.PathValue(pathKey)
		s.writeMu.Lock()
		defer s.writeMu.Unlock()
		cfg := s.views.Config()
		var exists bool
		switch part {
		case ledger.PartMetadata:
			_, exists = cfg.Metadata[key]
		case ledger.PartTeam:
			_, exists = cfg.Teams[key]
		case ledger.PartUser:
			_, exists = cfg.Users[key]
		}
		if !exists {
			s.writeError(w, r, newError(reasonNotFound, fmt.Sprintf("%s %q is not defined", part, key)))
			return
		}
		if part == ledger.PartTeam {
			if users := teamUsers(cfg, key); len(users) > 0 {
				s.writeError(w, r, newError(reasonConflict,
					fmt.Sprintf("team %q has %s (%s): move or delete them first", key, plural(len(users), "user"), firstFew(users))).with("users", users))
				return
			}
			// Its workflow decides its contacts when they close: without
			// it, an archived call would be discarded, a tagged one kept
			// for no day.
			if open := s.views.OpenContactsOfTeam(key); len(open) > 0 {
				s.writeError(w, r, newError(reasonConflict,
					fmt.Sprintf("team %q has %s (%s), which its workflow decides when they close: delete it once their calls have ended", key, plural(len(open), "open contact"), firstFew(open))).with("contacts", open))
				return
			}
		}
		s.changeConfig(w, r, ledger.ConfigChange{Part: part, Key: key, Op: ledger.OpDelete})
	}
}

// changeConfig appends one change made through the API and answers it.
func (s *Server) changeConfig(w http.ResponseWriter, r *http.Request, c ledger.ConfigChange) {
	s.changeConfigWith(w, r, c, configReply{})
}

// changeConfigWith is changeConfig answering with reply's notes.
func (s *Server) changeConfigWith(w http.ResponseWriter, r *http.Request, c ledger.ConfigChange, reply configReply) {
	c.Principal, c.Source = principalOf(r), configSourceAPI
	envs, err := s.appendEvents(r.Context(), sourceConfig, ledger.Event{Type: ledger.TypeConfig, Data: c})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	reply.Part, reply.Key, reply.Op, reply.Seq, reply.EventID = c.Part, c.Key, c.Op, envs[0].Seq, envs[0].ID.String()
	s.writeJSON(w, http.StatusOK, reply)
}

// teamUsers lists, sorted, the users of team.
func teamUsers(cfg ledger.Config, team string) []string {
	var users []string
	for id, u := range cfg.Users {
		if u.Team == team {
			users = append(users, id)
		}
	}
	slices.Sort(users)
	return users
}

// firstFew joins the first 5 of ids, for a message (the answer's member
// lists them all).
func firstFew(ids []string) string { return strings.Join(ids[:min(len(ids), 5)], ", ") }

// plural is "1 user", "2 users".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
