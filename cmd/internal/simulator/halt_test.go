package simulator

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// dropping wraps h: a request of the play or setup for which drop says
// so, after waiting wait, has its connection closed with no answer.
func dropping(h http.Handler, wait time.Duration, drop func(path string) bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/verify", "/metrics", "/v1/events", "/v1/config":
		default:
			if drop(r.URL.Path) {
				time.Sleep(wait)
				conn, _, err := http.NewResponseController(w).Hijack()
				if err == nil {
					conn.Close()
				}
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// A server that fails every other command, but answers in between, does
// not halt the play: only failures in a row count. Each failed request is
// counted as unanswered, under its command as "transport", and in
// neither the throughput nor the latencies.
func TestFailuresBetweenAnswersDoNotHaltThePlay(t *testing.T) {
	var mu sync.Mutex
	commands, dropped := 0, 0
	srv := httptest.NewServer(dropping(newRecorder(), 0, func(path string) bool {
		mu.Lock()
		defer mu.Unlock()
		if !strings.HasPrefix(path, "/recordingcontrols/rest/") {
			return false
		}
		if commands++; commands%2 == 0 {
			dropped++
			return true
		}
		return false
	}))
	defer srv.Close()
	rep, err := Run(context.Background(), Config{URL: srv.URL, Agents: 10, CallsPerAgent: 10, Seed: 5, Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if rep.StoppedEarly || dropped <= unreachableMisses || rep.Unanswered != dropped {
		t.Fatalf("stopped early %v (%s), %d unanswered of %d dropped (want more than %d, none halting)",
			rep.StoppedEarly, rep.StoppedWhy, rep.Unanswered, dropped, unreachableMisses)
	}
	transport := 0
	for _, byOutcome := range rep.Commands {
		transport += byOutcome["transport"]
	}
	if transport != dropped || rep.HTTPErrors["transport"] != dropped {
		t.Errorf("%d dropped; counted as outcome transport %d times, as HTTP errors %d", dropped, transport, rep.HTTPErrors["transport"])
	}
	answered := rep.Sent - rep.Unanswered - rep.Check.ExpectedConfig // the setup: configuration changes
	if rep.Latency.Count != answered || rep.PerSecond*rep.Seconds < float64(answered)-1e-6 || rep.PerSecond*rep.Seconds > float64(answered)+1e-6 {
		t.Errorf("%d latencies and %.1f requests/s over %.3fs for %d answered requests of the play",
			rep.Latency.Count, rep.PerSecond, rep.Seconds, answered)
	}
}

// A burst of failures shorter than twice the requests in flight (a server
// that dropped its connections once) does not halt the play, even past
// unreachableMisses.
func TestABurstOfFailuresDoesNotHaltThePlay(t *testing.T) {
	const agents, burst = 48, 80 // halts after 2×48 = 96 in a row
	var mu sync.Mutex
	played := 0
	srv := httptest.NewServer(dropping(newRecorder(), 0, func(path string) bool {
		mu.Lock()
		defer mu.Unlock()
		if strings.HasPrefix(path, "/v1/config/") { // the setup
			return false
		}
		played++
		return played <= burst
	}))
	defer srv.Close()
	rep, err := Run(context.Background(), Config{URL: srv.URL, Agents: agents, CallsPerAgent: 2, Seed: 6})
	if err != nil {
		t.Fatal(err)
	}
	if rep.StoppedEarly || rep.Unanswered != burst || rep.Sent != rep.Planned {
		t.Fatalf("stopped early %v (%s); %d unanswered, %d of %d sent: want the whole plan sent past a burst of %d",
			rep.StoppedEarly, rep.StoppedWhy, rep.Unanswered, rep.Sent, rep.Planned, burst)
	}
}

// Requests that fail slowly halt the play once none has been answered for
// unreachableAfter, long before unreachableMisses of them.
func TestSlowFailuresHaltThePlayAfterAWhile(t *testing.T) {
	srv := httptest.NewServer(dropping(newRecorder(), 600*time.Millisecond, func(path string) bool {
		return !strings.HasPrefix(path, "/v1/config/")
	}))
	defer srv.Close()
	done := make(chan struct{})
	var rep Report
	go func() {
		defer close(done)
		rep, _ = Run(context.Background(), Config{URL: srv.URL, Agents: 4, CallsPerAgent: 4, Seed: 7, Concurrency: 2})
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the play went on for 20 s against a server that answers nothing")
	}
	if !rep.StoppedEarly || !strings.Contains(rep.StoppedWhy, "without an answer") || rep.Unanswered >= unreachableMisses {
		t.Fatalf("stopped early %v (%s) after %d unanswered: want halted by time, before %d", rep.StoppedEarly, rep.StoppedWhy, rep.Unanswered, unreachableMisses)
	}
}

// The setup stops at the first configuration change refused: nothing of
// the site is sent after a refused part (the users name its teams), and
// the error names the request refused first, also when it was one of the
// users, sent in parallel.
func TestSetupStopsAtTheFirstRefused(t *testing.T) {
	for _, refuse := range []string{"/v1/config/teams/" + TeamSales, "/v1/config/users/" + Agents(8)[2].UserID} {
		t.Run(refuse, func(t *testing.T) {
			rec := newRecorder()
			var sent []string
			rec.override = func(path string, _ []byte) (int, string, bool) {
				if path != "/v1/config" { // the setup's read of what it replaces
					sent = append(sent, path) // under rec's lock
				}
				if path == refuse {
					return 409, `{"reason":"conflict","message":"not now"}`, true
				}
				return 0, "", false
			}
			srv := httptest.NewServer(rec)
			defer srv.Close()
			_, err := Run(context.Background(), Config{URL: srv.URL, Agents: 8, CallsPerAgent: 1, Seed: 8, Concurrency: 4})
			if err == nil || !strings.Contains(err.Error(), "the first: PUT "+refuse+": 409 not now") {
				t.Fatalf("err = %v", err)
			}
			setup := configRequests(Agents(8))
			want := len(setup) // users: each sent, in parallel
			for i, r := range setup {
				if r.Path == refuse && !strings.HasPrefix(refuse, "/v1/config/users/") {
					want = i + 1 // the fixed part: one at a time
				}
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if len(sent) != want {
				t.Errorf("sent %d requests, want %d: %v", len(sent), want, sent)
			}
		})
	}
}
