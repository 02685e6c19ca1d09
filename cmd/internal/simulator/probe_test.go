package simulator

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// probeRunner is a runner that reads srv, as Run's check does.
func probeRunner(srv *httptest.Server) *runner {
	return &runner{cfg: Config{URL: srv.URL}.withDefaults(), base: srv.URL}
}

// The events the server appended by itself are counted up to the head
// the check read, not beyond (the server may seal meanwhile), through
// pages; a read refused says which role the simulator's token lacks.
func TestServerAppendedCountsUpToTheHead(t *testing.T) {
	types := []string{"config", "day_closed", "command", "call_signal", "timer_fired", "day_closed", "command", "config", "day_closed", "command"}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		after, _ := strconv.Atoi(r.URL.Query().Get("after_seq"))
		var evs []string
		for i := after; i < len(types) && i < after+4; i++ {
			evs = append(evs, fmt.Sprintf(`{"seq":%d,"type":%q}`, i+1, types[i]))
		}
		fmt.Fprintf(w, `{"events":[%s],"next_after_seq":%d}`, strings.Join(evs, ","), after+len(evs))
	}))
	defer srv.Close()
	r := probeRunner(srv)
	r.cfg.Token = "tok"
	for _, tc := range []struct{ after, upTo, want uint64 }{{0, 10, 4}, {0, 7, 3}, {2, 5, 1}, {5, 9, 2}} {
		if n, err := r.serverAppended(context.Background(), tc.after, tc.upTo); err != nil || uint64(n) != tc.want {
			t.Errorf("(%d, %d]: %d %v, want %d", tc.after, tc.upTo, n, err, tc.want)
		}
	}
	r.cfg.Token = ""
	if _, err := r.serverAppended(context.Background(), 0, 10); err == nil || !strings.Contains(err.Error(), "status 403: the simulator reads the ledger") {
		t.Errorf("a refused read: %v", err)
	}
	if _, _, err := r.verify(context.Background()); err == nil || !strings.Contains(err.Error(), "GET /v1/verify: status 403") || !strings.Contains(err.Error(), "admin role") {
		t.Errorf("a refused verify: %v", err)
	}
}

// The setup's metadata keys and the server's own fit when, counted once
// each, they are at most the 10 a site may define.
func TestKeysFit(t *testing.T) {
	setup := configRequests(Agents(1))
	for _, tc := range []struct {
		own []string
		ok  bool
	}{
		{nil, true},
		{[]string{"account", "note", "extra1"}, true},          // 9: two of the setup's own
		{[]string{"account", "x1", "x2"}, true},                // 10
		{[]string{"x1", "x2", "x3"}, false},                    // 11
		{[]string{"account", "note", "x1", "x2", "x3"}, false}, // 11
	} {
		// Only the keys the server lacks are said to be added.
		const adds = "the setup would add 6 (agentname, callback, ordernum, campaign, amount, duedate)"
		own := map[string]any{}
		for _, k := range tc.own {
			own[k] = map[string]string{"type": "text"}
		}
		b, _ := json.Marshal(own)
		err := keysFit(map[string]json.RawMessage{"metadata": b}, setup)
		if (err == nil) != tc.ok || (err != nil && !strings.Contains(err.Error(), "at most 10")) ||
			(err != nil && slices.Contains(tc.own, "account") && !strings.Contains(err.Error(), adds)) {
			t.Errorf("own keys %v: %v", tc.own, err)
		}
	}
}

// The setup names each part of the server's configuration it replaces
// with something else, and no other.
func TestReplacedNamesWhatTheSetupChanges(t *testing.T) {
	agents := Agents(2)
	setup := configRequests(agents)
	body := func(path string) json.RawMessage {
		for _, q := range setup {
			if q.Path == path {
				return q.Body
			}
		}
		t.Fatalf("no setup request %s", path)
		return nil
	}
	u0, u1 := agents[0].UserID, agents[1].UserID
	users, _ := json.Marshal(map[string]json.RawMessage{
		u0: body("/v1/config/users/" + u0),                      // the same
		u1: json.RawMessage(`{"name":"Someone","team":"care"}`), // another
	})
	cfg := map[string]json.RawMessage{
		"site":     json.RawMessage(`{"timezone":"UTC","upload_time":"23:00","max_pause_seconds":0,"server_host":""}`),
		"metadata": json.RawMessage(`{"account":{"type":"text"},"note":{"type":"text"},"other":{"type":"date"}}`),
		"teams":    json.RawMessage(`{"care":null,"sales":{"archive":true},"dialer":` + string(body("/v1/config/teams/"+TeamDialer)) + `}`),
		"users":    users,
	}
	want := []string{"metadata key account", "team sales", "user " + u1}
	if got := replaced(cfg, setup); !slices.Equal(got, want) {
		t.Errorf("replaced %q, want %q", got, want)
	}
}
