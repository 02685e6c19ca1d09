package ingest_test

import (
	"path/filepath"
	"strings"
	"testing"
)

// A user's team must be defined: a typo in it would make the user's calls
// recorded and never saved. A team with users, or with open contacts,
// cannot be deleted.
func TestConfigTeamReferences(t *testing.T) {
	s := newStack(t, nil)
	s.configure()
	r := s.do("PUT", "/v1/config/users/x", "", `{"name":"X","team":"saels","recording":"desktop","extension":"3999"}`)
	if r.Status != 400 || r.JSON["field"] != "users.x.team" || !strings.Contains(r.str("message"), `"saels"`) {
		t.Errorf("a user of an undefined team: %d %s", r.Status, r.Raw)
	}
	r = s.do("DELETE", "/v1/config/teams/sales", "", "")
	if users, _ := r.JSON["users"].([]any); r.Status != 409 || len(users) != 1 || users[0] != "jdoe" || !strings.Contains(r.str("message"), "has 1 user (jdoe)") {
		t.Errorf("deleting a team with a user: %d %s", r.Status, r.Raw)
	}
	// A team whose users moved on while their calls go on keeps deciding
	// those calls' contacts: not deleted until they have closed.
	s.signal(`{"call_id":"c-1","extension":"3420","type":"ringing","direction":"inbound","ani":"+13125550100"}`)
	s.must(200, "PUT", "/v1/config/users/jdoe", "", `{"name":"Jane Doe","team":"gw","recording":"desktop","extension":"3420"}`)
	r = s.do("DELETE", "/v1/config/teams/sales", "", "")
	if open, _ := r.JSON["contacts"].([]any); r.Status != 409 || len(open) != 1 || !strings.Contains(r.str("message"), "has 1 open contact (") {
		t.Errorf("deleting a team with an open contact: %d %s", r.Status, r.Raw)
	}
	s.signal(`{"call_id":"c-1","extension":"3420","type":"ended"}`)
	s.must(200, "DELETE", "/v1/config/teams/sales", "", "")

	path := filepath.Join(t.TempDir(), "config.json")
	writeFile(t, path, `{"teams":{"a":{}},"users":{"u":{"name":"U","team":"b","recording":"desktop"}}}`)
	if err := s.api.ApplyConfigFile(t.Context(), path); err == nil || !strings.Contains(err.Error(), "users.u.team") {
		t.Errorf("a config file with a user of an undefined team: %v", err)
	}
}
