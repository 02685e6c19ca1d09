package simulator

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestReportAddsUpEveryRequest: the report's totals add up what each
// agent sent (the setup's requests too), while the latencies and the
// rates cover the play alone.
func TestReportAddsUpEveryRequest(t *testing.T) {
	rec := newRecorder()
	srv := httptest.NewServer(rec)
	defer srv.Close()
	rep, err := Run(context.Background(), Config{URL: srv.URL, Agents: 6, CallsPerAgent: 3, Seed: 2, Concurrency: 3})
	if err != nil {
		t.Fatal(err)
	}
	configs, signals := 0, 0
	for _, typ := range rec.types {
		switch typ {
		case "config":
			configs++
		case "call_signal":
			signals++
		}
	}
	c := rep.Check
	if rep.Sent != rec.played || rep.Planned != rec.played || rep.Unanswered != 0 {
		t.Errorf("sent %d of %d planned (%d unanswered); the server saw %d", rep.Sent, rep.Planned, rep.Unanswered, rec.played)
	}
	if c.ExpectedConfig != configs || rep.SignalEvents != signals || c.ExpectedCommands != rec.commands || !c.Match {
		t.Errorf("expected %d config, %d signals, %d commands; the server appended %d, %d, %d (check %+v)",
			c.ExpectedConfig, rep.SignalEvents, c.ExpectedCommands, configs, signals, rec.commands, c)
	}
	// The setup is the configuration changes: not in the play's figures.
	play := rep.Sent - configs
	if rep.Latency.Count != play {
		t.Errorf("%d latencies for %d requests of the play", rep.Latency.Count, play)
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-6*max(1, b) }
	if !near(rep.PerSecond*rep.Seconds, float64(play)) || !near(rep.AppendedPerSecond*rep.Seconds, float64(c.Expected-configs)) {
		t.Errorf("%.1f requests/s and %.1f events/s over %.3fs: want %d requests and %d events of the play",
			rep.PerSecond, rep.AppendedPerSecond, rep.Seconds, play, c.Expected-configs)
	}
}

// TestReportCountsWhatTheServerRefused: what a command's answer says
// appended follows its status: a 500 or a refusal at auth (401, 403)
// appended nothing, any other answer did; a signal or configuration
// change appended only when answered 2xx. Statuses, outcomes and the
// signals the server ignored are counted, and the note names the
// refusals at auth.
func TestReportCountsWhatTheServerRefused(t *testing.T) {
	rec := newRecorder()
	var mu sync.Mutex
	refused := map[string]int{}
	signal := 0
	rec.override = func(path string, body []byte) (int, string, bool) {
		mu.Lock()
		defer mu.Unlock()
		switch path {
		case "/recordingcontrols/rest/pause":
			refused["500"]++
			return 500, `{"reason":"internal","message":"disk gone"}`, true
		case "/recordingcontrols/rest/resume":
			refused["401"]++
			return 401, `{"reason":"unauthorized"}`, true
		case "/recordingcontrols/rest/tag":
			refused["403"]++
			return 403, `{"reason":"forbidden"}`, true
		case "/v1/calls/events":
			if signal++; signal%5 == 0 {
				refused["400"]++
				return 400, `{"reason":"invalid_input"}`, true
			}
			if signal%5 == 1 {
				// Taken (appended, each of a batch) but ignored: a late
				// signal.
				n := max(1, bytes.Count(body, []byte(`"call_id"`)))
				rec.append("call_signal", n)
				refused["ignored"]++
				return 200, fmt.Sprintf(`{"accepted":%d,"ignored":[{"index":0,"reason":"late"}]}`, n), true
			}
		}
		return 0, "", false
	}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	rep, err := Run(context.Background(), Config{URL: srv.URL, Agents: 6, CallsPerAgent: 4, Seed: 3, Concurrency: 3})
	if err != nil {
		t.Fatal(err)
	}
	for _, status := range []string{"500", "401", "403", "400"} {
		if refused[status] == 0 || rep.HTTPErrors[status] != refused[status] {
			t.Errorf("%d answered %s, the report says %d", refused[status], status, rep.HTTPErrors[status])
		}
	}
	// A refusal's answer has no outcome: its status is counted as one
	// (by each request's label: a bad request may use a command's path).
	outcomes := map[string]int{}
	for _, byOutcome := range rep.Commands {
		for o, n := range byOutcome {
			outcomes[o] += n
		}
	}
	for _, status := range []string{"500", "401", "403"} {
		if outcomes["http_"+status] != refused[status] {
			t.Errorf("outcome http_%s counted %d times, want %d: %v", status, outcomes["http_"+status], refused[status], rep.Commands)
		}
	}
	if refused["ignored"] == 0 || rep.SignalsIgnored != refused["ignored"] {
		t.Errorf("%d signals ignored, the report says %d", refused["ignored"], rep.SignalsIgnored)
	}
	c := rep.Check
	if !c.Match || c.ExpectedCommands != rec.commands {
		t.Errorf("expected %d commands, the server appended %d: %+v", c.ExpectedCommands, rec.commands, c)
	}
	if want := fmt.Sprintf("%d requests were refused at auth", refused["401"]+refused["403"]); !strings.Contains(c.Note, want) {
		t.Errorf("note %q, want %q", c.Note, want)
	}
}
