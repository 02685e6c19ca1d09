package simulator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is a stand-in server that records every request by agent and
// answers like recledger would at the HTTP level (it tests the client).
type recorder struct {
	mu       sync.Mutex
	byAgent  map[int][]string
	events   uint64
	commands int
	// sealOnFirstConfig makes the "server" append a day_closed event of
	// its own when the first config change arrives.
	sealOnFirstConfig bool
	types             []string // type of each event, for /v1/events
	// brokenChain makes /v1/verify say the chain is not ok.
	brokenChain bool
	// metricsOff, when set, is added to the counters /metrics gives, by
	// the number of its call (1 the first).
	metricsOff   func(call int) (events, commands int)
	metricsCalls int
	// override, when set, answers a request of the play or the setup
	// instead (ok true), appending nothing.
	override func(path string, body []byte) (status int, answer string, ok bool)
	played   int // requests of the play and the setup
}

func (rec *recorder) append(typ string, n int) {
	for range n {
		rec.types = append(rec.types, typ)
	}
	rec.events += uint64(n)
}

var (
	agentRe = regexp.MustCompile(`agent(\d{5})`)
	extRe   = regexp.MustCompile(`(?:"extension":"|extension=)3(\d{5})`)
	known   = map[string]bool{"tag": true, "recordtag": true, "pause": true, "pauseurl": true, "resume": true,
		"restart": true, "delete": true, "login": true, "logout": true, "metadata": true, "startsegment": true,
		"stopsegment": true, "start": true, "stop": true, "config": true}
)

func newRecorder() *recorder { return &recorder{byAgent: map[int][]string{}} }

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	key := r.Method + " " + r.URL.RequestURI() + " " + r.Header.Get("Content-Type") + " " + string(body)
	agent := -1
	if m := agentRe.FindStringSubmatch(key); m != nil {
		agent, _ = strconv.Atoi(m[1])
	} else if m := extRe.FindStringSubmatch(key); m != nil {
		agent, _ = strconv.Atoi(m[1])
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	switch {
	case r.URL.Path == "/v1/verify":
		fmt.Fprintf(w, `{"ok":%v,"events":%d,"head":"00"}`, !rec.brokenChain, rec.events)
		return
	case r.URL.Path == "/v1/events":
		after, _ := strconv.Atoi(r.URL.Query().Get("after_seq"))
		var evs []string
		for i := after; i < len(rec.types) && i < after+3; i++ { // small pages
			evs = append(evs, fmt.Sprintf(`{"seq":%d,"type":%q}`, i+1, rec.types[i]))
		}
		fmt.Fprintf(w, `{"events":[%s],"next_after_seq":%d}`, strings.Join(evs, ","), after+len(evs))
		return
	case r.URL.Path == "/metrics":
		events, commands := len(rec.types)-rec.serverEvents(), rec.commands
		if rec.metricsCalls++; rec.metricsOff != nil {
			de, dc := rec.metricsOff(rec.metricsCalls)
			events, commands = events+de, commands+dc
		}
		fmt.Fprintf(w, "# TYPE recledger_events_appended_total counter\nrecledger_events_appended_total %d\nrecledger_commands_total{command=\"tag\",outcome=\"applied\"} %d\n", events, commands)
		return
	}
	rec.byAgent[agent] = append(rec.byAgent[agent], key)
	if r.URL.Path != "/v1/config" {
		rec.played++
	}
	if rec.override != nil {
		if status, answer, ok := rec.override(r.URL.Path, body); ok {
			w.WriteHeader(status)
			w.Write([]byte(answer))
			return
		}
	}
	switch {
	case strings.HasPrefix(r.URL.Path, "/v1/config/"):
		if rec.sealOnFirstConfig {
			rec.sealOnFirstConfig = false
			rec.types = append(rec.types, "day_closed")
			rec.events++
		}
		rec.append("config", 1)
		w.Write([]byte(`{}`))
	case r.URL.Path == "/v1/calls/events":
		n := 1
		if bytes.HasPrefix(body, []byte("[")) {
			n = bytes.Count(body, []byte(`"call_id"`))
		}
		rec.append("call_signal", n)
		fmt.Fprintf(w, `{"accepted":%d}`, n)
	case strings.HasPrefix(r.URL.Path, "/recordingcontrols/rest/"):
		cmd := strings.ToLower(strings.TrimPrefix(r.URL.Path, "/recordingcontrols/rest/"))
		if !known[cmd] {
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"outcome":"rejected","reason":"unknown_command"}`))
			return
		}
		if len(body) > maxBody {
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			w.Write([]byte(`{"outcome":"rejected","reason":"too_large"}`))
			return
		}
		rec.append("command", 1)
		rec.commands++
		fmt.Fprintf(w, `{"command":%q,"outcome":"applied"}`, cmd)
	default:
		http.NotFound(w, r)
	}
}

func keys(reqs []Request) []string {
	out := make([]string, len(reqs))
	for i, r := range reqs {
		out[i] = r.Method + " " + r.Path + " " + r.ContentType + " " + string(r.Body)
	}
	return out
}

// TestSameSeedSameRequests runs the simulator twice with one seed against a
// recording server: each agent's requests arrive in the same order with the
// same bytes, and equal Script's; another seed gives other requests.
func TestSameSeedSameRequests(t *testing.T) {
	const agents, calls = 12, 8
	run := func(seed int64) *recorder {
		rec := newRecorder()
		srv := httptest.NewServer(rec)
		defer srv.Close()
		rep, err := Run(context.Background(), Config{URL: srv.URL, Agents: agents, CallsPerAgent: calls, Seed: seed, Concurrency: 4})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Check.Match {
			var b bytes.Buffer
			rep.WriteText(&b)
			t.Fatalf("check does not match:\n%s", b.String())
		}
		return rec
	}
	a, b := run(42), run(42)
	for i, ag := range Agents(agents) {
		want := append(keys(configRequests([]Agent{ag})[len(configRequests(nil)):]), keys(Script(42, ag, calls, time.Time{}))...)
		if !reflect.DeepEqual(a.byAgent[i], want) {
			t.Fatalf("agent %d: recorded requests differ from its script (%d vs %d)", i, len(a.byAgent[i]), len(want))
		}
		if !reflect.DeepEqual(a.byAgent[i], b.byAgent[i]) {
			t.Fatalf("agent %d: two runs with the same seed sent different requests", i)
		}
	}
	c := run(43)
	if reflect.DeepEqual(a.byAgent[1], c.byAgent[1]) {
		t.Fatal("seeds 42 and 43 gave agent 1 the same requests")
	}
}

// TestScriptCoversTheDay checks that a day of a few agents holds every
// kind of request the issue asks for.
func TestScriptCoversTheDay(t *testing.T) {
	seen := map[string]int{}
	for _, a := range Agents(30) {
		for _, r := range Script(1, a, 30, scriptDay) {
			seen[r.Label]++
			switch {
			case r.Kind == KindSignal:
				var one struct{ Type, Direction string }
				if json.Unmarshal(r.Body, &one) == nil && one.Type != "" {
					seen["signal:"+one.Type+":"+one.Direction]++
				} else {
					seen["signal:batch"]++
				}
			case r.Kind == KindCommand && r.Method == "GET":
				seen["via:cad-get"]++
			case r.ContentType == "application/x-www-form-urlencoded":
				seen["via:cad-form"]++
			case r.ContentType == "":
				seen["via:finesse-bare"]++
			default:
				seen["via:finesse-json"]++
			}
			if bytes.Contains(r.Body, []byte("4111 1111 1111 1111")) || strings.Contains(r.Path, "4111+1111") {
				seen["card"]++
			}
		}
	}
	for _, k := range []string{"login", "logout", "tag", "recordtag", "pause", "pauseurl", "resume", "restart", "delete",
		"metadata", "startsegment", "stopsegment", "start", "stop", "config",
		"bad:unknown_command", "bad:unknown_user", "bad:finesse_variable", "bad:oversize",
		"signal:ringing:inbound", "signal:answered:inbound", "signal:ended:inbound", "signal:dialing:outbound",
		"signal:dialing:internal", "signal:held:inbound", "signal:retrieved:inbound", "signal:batch",
		"via:cad-get", "via:cad-form", "via:finesse-json", "via:finesse-bare", "card"} {
		if seen[k] == 0 {
			t.Errorf("no %q in the simulated day", k)
		}
	}
}

// TestSignalsWithoutADayCarryNoTime: with no day, the server stamps the
// signals, as it does commands.
func TestSignalsWithoutADayCarryNoTime(t *testing.T) {
	n := 0
	for _, r := range Script(9, Agents(3)[2], 10, time.Time{}) {
		if r.Kind == KindSignal {
			n++
			if bytes.Contains(r.Body, []byte(`"at"`)) {
				t.Fatalf("signal with a time: %s", r.Body)
			}
		}
	}
	if n == 0 {
		t.Fatal("no signals")
	}
}

// TestSignalTimesAdvance checks the simulated clock: every agent's signals
// are on the simulated day, in non-decreasing order.
func TestSignalTimesAdvance(t *testing.T) {
	for _, a := range Agents(5) {
		var last time.Time
		for _, r := range Script(9, a, 40, scriptDay) {
			if r.Kind != KindSignal {
				continue
			}
			var sigs []signal
			if r.Body[0] == '[' {
				json.Unmarshal(r.Body, &sigs)
			} else {
				var s signal
				json.Unmarshal(r.Body, &s)
				sigs = []signal{s}
			}
			for _, s := range sigs {
				at, err := time.Parse(time.RFC3339, s.At)
				if err != nil {
					t.Fatal(err)
				}
				if at.Before(last) || at.Format(time.DateOnly) != "2026-11-23" || at.Hour() < 8 {
					t.Fatalf("agent %d: signal at %s after %s", a.Index, at, last)
				}
				last = at
			}
		}
	}
}

func TestRateCapAndDuration(t *testing.T) {
	srv := httptest.NewServer(newRecorder())
	defer srv.Close()
	rep, err := Run(context.Background(), Config{URL: srv.URL, Agents: 4, CallsPerAgent: 50, Rate: 200, Duration: 300 * time.Millisecond, SkipSetup: true})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.StoppedEarly || rep.Sent >= rep.Planned {
		t.Fatalf("sent %d of %d, stopped early %v: --duration did not stop the run", rep.Sent, rep.Planned, rep.StoppedEarly)
	}
	// 200/s for 0.3 s plus the burst: far below the plan and below 200.
	if rep.Sent > 120 {
		t.Fatalf("sent %d requests in 0.3 s at a 200/s cap", rep.Sent)
	}
	if !rep.Check.Match {
		t.Fatalf("check: %+v", rep.Check)
	}
}

func TestSumMetric(t *testing.T) {
	text := []byte("# HELP x\nrecledger_commands_total{command=\"tag\",outcome=\"applied\"} 3\nrecledger_commands_total{command=\"pause\",outcome=\"no_effect\"} 4\nrecledger_commands_totalx 100\nrecledger_events_appended_total 1.2e+06\n")
	if n, ok := sumMetric(text, "recledger_commands_total"); !ok || n != 7 {
		t.Fatalf("commands = %d %v", n, ok)
	}
	if n, ok := sumMetric(text, "recledger_events_appended_total"); !ok || n != 1200000 {
		t.Fatalf("appended = %d %v", n, ok)
	}
	if _, ok := sumMetric(text, "nothing"); ok {
		t.Fatal("found a missing metric")
	}
	for _, tc := range []struct {
		text string
		n    int64
		ok   bool
	}{
		{"# TYPE c gauge\nc{a=\"1\"} 2\nc{a=\"2\"} 5\n", 7, true}, // a gauge is summed too
		{"# TYPE c counter\n", 0, false},                          // declared, no sample
		{"c{a=\"1\"} 2\nc{a=\"2\"} -5\n", 0, false},               // not a count
		{"c 9.3e18\n", 0, false},                                  // beyond int64
		{"# TYPE c summary\nc_sum 1\nc_count 1\n", 0, false},      // not a counter
	} {
		if n, ok := sumMetric([]byte(tc.text), "c"); n != tc.n || ok != tc.ok {
			t.Errorf("%q: %d %v, want %d %v", tc.text, n, ok, tc.n, tc.ok)
		}
	}
}

func TestSummarise(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	l := summarise(ds)
	if l.P50ms != 50 || l.P90ms != 90 || l.P99ms != 99 || l.MaxMs != 100 || l.Count != 100 {
		t.Fatalf("%+v", l)
	}
}

func (rec *recorder) serverEvents() int {
	n := 0
	for _, t := range rec.types {
		if t == "day_closed" {
			n++
		}
	}
	return n
}

// TestServerAppendedEventsAreNotCountedAsMismatch: a seal the server appends
// by itself during the run is found in /v1/events and explains the delta;
// the check still matches, and fails when the delta is unexplained.
func TestServerAppendedEventsAreNotCountedAsMismatch(t *testing.T) {
	rec := newRecorder()
	rec.sealOnFirstConfig = true
	srv := httptest.NewServer(rec)
	defer srv.Close()
	rep, err := Run(context.Background(), Config{URL: srv.URL, Agents: 3, CallsPerAgent: 2, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	c := rep.Check
	if !c.Match || c.ServerAppended != 1 || c.VerifyDelta != int64(c.Expected)+1 {
		t.Fatalf("check: %+v", c)
	}

	// An event the simulator did not send and the server did not append itself: mismatch.
	rec = newRecorder()
	srv2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/calls/events" {
			rec.mu.Lock()
			rec.append("command", 1) // someone else's command
			rec.mu.Unlock()
		}
		rec.ServeHTTP(w, r)
	}))
	defer srv2.Close()
	rep, err = Run(context.Background(), Config{URL: srv2.URL, Agents: 2, CallsPerAgent: 2, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Check.Match {
		t.Fatalf("extra events went unnoticed: %+v", rep.Check)
	}
}

// TestCheckComparesTheLedgerAndTheMetrics: the check matches only when
// the chain is ok and both the ledger's growth and the /metrics counters
// of events and of commands are what was sent; counters that went back
// (a restart) are not compared, and the note says so.
func TestCheckComparesTheLedgerAndTheMetrics(t *testing.T) {
	after := func(de, dc int) func(int) (int, int) {
		return func(call int) (int, int) {
			if call == 1 {
				return 0, 0
			}
			return de, dc
		}
	}
	for _, tc := range []struct {
		name       string
		broken     bool
		off        func(int) (int, int)
		match      bool
		metricsOff bool // the metrics deltas are not known (-1)
		note       string
	}{
		{name: "all agree", match: true},
		{name: "chain broken", broken: true, note: "does not verify"},
		{name: "one event more in the metrics", off: after(1, 0), note: "counts differ"},
		{name: "one command less in the metrics", off: after(0, -1), note: "counts differ"},
		{name: "events counter went back", off: func(call int) (int, int) { return 1000 * (2 - min(call, 2)), 0 }, match: true, metricsOff: true, note: "restarted"},
		{name: "commands counter went back", off: func(call int) (int, int) { return 0, 1000 * (2 - min(call, 2)) }, match: true, metricsOff: true, note: "restarted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := newRecorder()
			rec.brokenChain, rec.metricsOff = tc.broken, tc.off
			srv := httptest.NewServer(rec)
			defer srv.Close()
			rep, err := Run(context.Background(), Config{URL: srv.URL, Agents: 2, CallsPerAgent: 2, Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			c := rep.Check
			if c.Match != tc.match || c.VerifyOK == tc.broken || (c.MetricsAppendedDelta < 0) != tc.metricsOff ||
				(c.MetricsCommandsDelta < 0) != tc.metricsOff || !strings.Contains(c.Note, tc.note) {
				t.Fatalf("check: %+v", c)
			}
			var text strings.Builder
			rep.WriteText(&text)
			if want := map[bool]string{true: ": MATCH\n", false: ": MISMATCH\n"}[tc.match]; !strings.Contains(text.String(), want) {
				t.Errorf("report does not end its check line with %q:\n%s", want, text.String())
			}
		})
	}
}

func FuzzSumMetric(f *testing.F) {
	f.Add([]byte("recledger_commands_total{command=\"tag\",outcome=\"applied\"} 3\nrecledger_commands_total 4\n"))
	f.Add([]byte("recledger_commands_total{a=\"}\"} 1e3\n# x\n"))
	f.Add([]byte("recledger_commands_total NaN\n"))
	f.Add([]byte("recledger_commands_total +Inf\n"))
	f.Add([]byte("recledger_commands_total 1e300\n"))
	f.Fuzz(func(t *testing.T, text []byte) {
		n, ok := sumMetric(text, "recledger_commands_total")
		if !ok && n != 0 {
			t.Fatalf("not found but sum %d", n)
		}
		if ok && n < 0 {
			t.Fatalf("a count of %d", n)
		}
	})
}
