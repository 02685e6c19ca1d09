package simulator

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"
)

// Report is what a simulation sent and what the server answered.
type Report struct {
	Seed          int64 `json:"seed"`
	Agents        int   `json:"agents"`
	CallsPerAgent int   `json:"calls_per_agent"`
	Planned       int   `json:"planned_requests"`
	Sent          int   `json:"sent_requests"`
	StoppedEarly  bool  `json:"stopped_early"`
	// StoppedWhy says what stopped the play early: --duration, a
	// server that stopped answering, an interruption.
	StoppedWhy string `json:"stopped_why,omitempty"`
	// Unanswered counts the requests that got no answer (a transport
	// error): neither in the throughput nor in the latencies.
	Unanswered int     `json:"unanswered_requests"`
	Seconds    float64 `json:"seconds"`
	// PerSecond is requests answered per second of the play phase (setup excluded).
	PerSecond float64 `json:"requests_per_second"`
	// AppendedPerSecond is ledger events the play phase should have appended, per second.
	AppendedPerSecond float64 `json:"appended_per_second"`

	// Commands counts commands by command (as sent) then by outcome
	// ("applied", "no_effect", …, or "http_NNN" when the answer had none).
	Commands map[string]map[string]int `json:"commands"`
	// SignalEvents counts the call signals accepted (a signal request
	// refused is counted in HTTPErrors by its status).
	SignalEvents int `json:"signal_events"`
	// SignalsIgnored counts the signals the server took and ignored (a
	// late signal of an ended call, one for an unknown call): a run whose
	// call ids an earlier run used has its calls ignored whole.
	SignalsIgnored int `json:"signals_ignored"`
	// HTTPErrors counts answers of 400 and above by status code ("transport" for no answer).
	HTTPErrors map[string]int `json:"http_errors"`

	Latency Latency `json:"latency"`
	Check   Check   `json:"check"`
	// Replaced names the parts of the server's configuration the setup
	// replaced with its own (the site, a team, a metadata key, a user),
	// as they were before: the simulator configures the site it plays.
	Replaced []string `json:"setup_replaced,omitempty"`
}

// Latency summarises request latencies (play phase).
type Latency struct {
	Count int     `json:"count"`
	P50ms float64 `json:"p50_ms"`
	P90ms float64 `json:"p90_ms"`
	P99ms float64 `json:"p99_ms"`
	MaxMs float64 `json:"max_ms"`
}

// Check compares what should have been appended with what the server says.
type Check struct {
	// Expected is the ledger events the simulator's requests should have
	// appended: config changes accepted, every request that named a known
	// command and passed size and auth (answered below 500), every signal accepted.
	Expected         int `json:"expected_appended"`
	ExpectedCommands int `json:"expected_commands"`
	// ExpectedConfig is the configuration changes among Expected (the
	// rest are Commands and Report.SignalEvents).
	ExpectedConfig int `json:"expected_config"`
	// VerifyBefore/After are GET /v1/verify's `events`; Delta is their difference.
	VerifyBefore uint64 `json:"verify_before"`
	VerifyAfter  uint64 `json:"verify_after"`
	VerifyDelta  int64  `json:"verify_delta"`
	VerifyOK     bool   `json:"verify_ok"`
	// ServerAppended is the events in that range the server appended by
	// itself (day seals, pause timers); read from /v1/events only when the
	// delta differs from Expected.
	ServerAppended int `json:"server_appended"`
	// Metrics deltas of recledger_events_appended_total and
	// recledger_commands_total; -1 when /metrics was not available.
	MetricsAppendedDelta int64 `json:"metrics_appended_delta"`
	MetricsCommandsDelta int64 `json:"metrics_commands_delta"`
	// Match: the verify delta (and the metrics deltas, when available) equal what was expected.
	Match bool   `json:"match"`
	Note  string `json:"note,omitempty"`
	// Unchecked: the server could not be asked at the end (Note says why);
	// the other fields of the check mean nothing then.
	Unchecked bool `json:"unchecked,omitempty"`
}

func summarise(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	q := func(p float64) float64 {
		i := int(float64(len(ds))*p+0.5) - 1
		i = max(0, min(i, len(ds)-1))
		return ms(ds[i])
	}
	return Latency{Count: len(ds), P50ms: q(0.50), P90ms: q(0.90), P99ms: q(0.99), MaxMs: ms(ds[len(ds)-1])}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// WriteText prints the report for people.
func (r Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "simulated %d agents x %d calls (seed %d): %d of %d requests in %.2fs",
		r.Agents, r.CallsPerAgent, r.Seed, r.Sent, r.Planned, r.Seconds)
	if r.StoppedEarly {
		fmt.Fprint(w, " (stopped early")
		if r.StoppedWhy != "" {
			fmt.Fprint(w, ": ", r.StoppedWhy)
		}
		fmt.Fprint(w, ")")
	}
	if r.Unanswered > 0 {
		fmt.Fprintf(w, "\nunanswered: %d requests got no answer (not in the throughput or the latencies)", r.Unanswered)
	}
	fmt.Fprintf(w, "\nthroughput: %.0f answered requests/s, %.0f ledger events/s\n", r.PerSecond, r.AppendedPerSecond)
	l := r.Latency
	fmt.Fprintf(w, "latency: p50 %.2fms  p90 %.2fms  p99 %.2fms  max %.2fms  (n=%d)\n", l.P50ms, l.P90ms, l.P99ms, l.MaxMs, l.Count)
	fmt.Fprintln(w, "commands by outcome:")
	for _, c := range slices.Sorted(maps.Keys(r.Commands)) {
		var parts []string
		for _, o := range slices.Sorted(maps.Keys(r.Commands[c])) {
			parts = append(parts, fmt.Sprintf("%s=%d", o, r.Commands[c][o]))
		}
		fmt.Fprintf(w, "  %-22s %s\n", c, strings.Join(parts, " "))
	}
	fmt.Fprintf(w, "call signals accepted: %d\n", r.SignalEvents)
	if r.SignalsIgnored > 0 {
		// An operator's walk ran --day on a server an earlier run had
		// played: every call was a late signal of an ended one, no
		// contact was made, and the check said MATCH.
		fmt.Fprintf(w, "call signals ignored by the server: %d (late signals of calls already ended, or for unknown calls: the call ids are the seed's, so an earlier run of this --seed on this server makes them late; play another --seed)\n", r.SignalsIgnored)
	}
	if len(r.HTTPErrors) > 0 {
		var parts []string
		for _, s := range slices.Sorted(maps.Keys(r.HTTPErrors)) {
			parts = append(parts, fmt.Sprintf("%s=%d", s, r.HTTPErrors[s]))
		}
		fmt.Fprintf(w, "HTTP errors by status: %s\n", strings.Join(parts, " "))
	}
	if len(r.Replaced) > 0 {
		fmt.Fprintf(w, "setup replaced the server's configuration: %s\n", strings.Join(r.Replaced, "; "))
	}
	c := r.Check
	if c.Unchecked {
		fmt.Fprintf(w, "ledger check: %s (expected +%d events: %s)\n", c.Note, c.Expected, r.expectedParts())
		return
	}
	fmt.Fprintf(w, "ledger check: expected +%d events (%s); /v1/verify %d -> %d (+%d, chain ok=%v)",
		c.Expected, r.expectedParts(), c.VerifyBefore, c.VerifyAfter, c.VerifyDelta, c.VerifyOK)
	if c.ServerAppended > 0 {
		fmt.Fprintf(w, " of which %d appended by the server itself (seals, timers)", c.ServerAppended)
	}
	if c.MetricsAppendedDelta >= 0 {
		fmt.Fprintf(w, "; /metrics events +%d, commands +%d", c.MetricsAppendedDelta, c.MetricsCommandsDelta)
	}
	if c.Match {
		fmt.Fprintln(w, ": MATCH")
	} else {
		fmt.Fprintln(w, ": MISMATCH")
	}
	if c.Note != "" {
		fmt.Fprintln(w, "note:", c.Note)
	}
}

// expectedParts is what the expected events are: commands, call
// signals, configuration changes (a walk could not add the report's
// figures up to its total).
func (r Report) expectedParts() string {
	return fmt.Sprintf("%d commands, %d call signals, %d configuration changes", r.Check.ExpectedCommands, r.SignalEvents, r.Check.ExpectedConfig)
}
