package ingest_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// TestConcurrentCommands: many agents at once; each answer is the result of
// the client's own event (its user, its call, the state its command left),
// seqs are unique, and the ledger holds every command.
func TestConcurrentCommands(t *testing.T) {
	const agents, rounds = 32, 10
	s := newStack(t, nil)
	s.must(200, "PUT", "/v1/config/teams/sales", "application/json", `{}`)
	for i := range agents {
		s.must(200, "PUT", fmt.Sprintf("/v1/config/users/a%d", i), "application/json",
			fmt.Sprintf(`{"name":"A%d","team":"sales","recording":"desktop","extension":"%d"}`, i, 6000+i))
		s.signal(fmt.Sprintf(`{"call_id":"k-%d","extension":"%d","type":"ringing","direction":"inbound"}`, i, 6000+i))
	}
	type answer struct {
		Outcome   string `json:"outcome"`
		Seq       uint64 `json:"seq"`
		UserID    string `json:"user_id"`
		CallID    string `json:"call_id"`
		Recording string `json:"recording"`
	}
	var (
		mu   sync.Mutex
		seqs = map[uint64]bool{}
		wg   sync.WaitGroup
	)
	for i := range agents {
		wg.Go(func() {
			user := fmt.Sprintf("a%d", i)
			for r := range rounds {
				cmd, want := "pause", "paused"
				if r%2 == 1 {
					cmd, want = "resume", "recording"
				}
				resp, err := http.Post(s.srv.URL+"/recordingcontrols/rest/"+cmd, "application/x-www-form-urlencoded", strings.NewReader("sender_id="+user))
				if err != nil {
					t.Error(err)
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				var a answer
				json.Unmarshal(b, &a)
				if resp.StatusCode != 200 || a.Outcome != "applied" || a.UserID != user || a.CallID != fmt.Sprintf("k-%d", i) || a.Recording != want {
					t.Errorf("%s %s round %d: %d %s", user, cmd, r, resp.StatusCode, b)
					return
				}
				mu.Lock()
				if seqs[a.Seq] {
					t.Errorf("seq %d answered twice", a.Seq)
				}
				seqs[a.Seq] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	s.verified(1 + 2*agents + agents*rounds)
	if p := s.must(200, "GET", "/v1/pauses", "", ""); strings.Count(p.Raw, `"ended_by":"resume"`) != agents*rounds/2 {
		t.Fatalf("pauses: %s", p.Raw)
	}
}
