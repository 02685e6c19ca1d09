package simulator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// runner is one simulation in progress.
type runner struct {
	cfg     Config
	base    string
	send    *sender
	limiter *rate.Limiter // nil: no cap
	sem     chan struct{}
	// halting is done once halt is called: no new requests, and no more
	// waiting between them (those in flight finish).
	halting       context.Context
	cancelHalting context.CancelFunc
	halted        sync.Once
	why           string       // why it was halted; set once, before halting is done
	heard         atomic.Int64 // when a request was last answered, Unix ns
	misses        atomic.Int64 // requests unanswered since the last answer
	answered      atomic.Bool  // a request of this run was answered
}

// The play halts when requests get no answer (the server gone) for
// unreachableAfter, or unreachableMisses of them in a row (at least
// twice the requests in flight): a walk's simulate sent 19,544 requests
// to a killed server in a second, and counted their instant failures in
// its throughput and latencies.
const (
	unreachableAfter  = 2 * time.Second
	unreachableMisses = 64
)

// interruptedCheck bounds the check after a Ctrl-C.
const interruptedCheck = 5 * time.Second

// halt stops new requests (those in flight finish), saying why.
func (r *runner) halt(why string) {
	r.halted.Do(func() {
		r.why = why
		r.cancelHalting()
	})
}

// tally is what one agent saw; merged at the end.
type tally struct {
	sent, expected, expectedCmds, signalEvents int
	unanswered                                 int // requests that got no answer (transport errors)
	expectedConfig                             int // configuration changes accepted
	signalsIgnored                             int // signals the server took and ignored (its answer's ignored)
	commands                                   map[string]map[string]int
	httpErrors                                 map[string]int
	latencies                                  []time.Duration
	refused                                    string // the first configuration request refused, and why
}

func newTally() *tally {
	return &tally{commands: map[string]map[string]int{}, httpErrors: map[string]int{}}
}

func (t *tally) merge(o *tally) {
	t.sent += o.sent
	t.unanswered += o.unanswered
	t.expectedConfig += o.expectedConfig
	t.expected += o.expected
	t.expectedCmds += o.expectedCmds
	t.signalEvents += o.signalEvents
	t.signalsIgnored += o.signalsIgnored
	if t.refused == "" {
		t.refused = o.refused
	}
	for c, m := range o.commands {
		if t.commands[c] == nil {
			t.commands[c] = map[string]int{}
		}
		for k, v := range m {
			t.commands[c][k] += v
		}
	}
	for k, v := range o.httpErrors {
		t.httpErrors[k] += v
	}
	t.latencies = append(t.latencies, o.latencies...)
}

// ErrUnchecked: the run was played, but the server could not be asked
// afterwards, so its counts were not checked; the Report holds the rest.
var ErrUnchecked = errors.New("the server's counts were not checked")

// ErrInterrupted: ctx was cancelled (Ctrl-C) during the play; the Report
// holds what was sent until then, checked against the server.
var ErrInterrupted = errors.New("interrupted: the report covers the requests sent until then")

// Run configures the site, plays every agent's script and reports. It
// reads GET /v1/verify and /metrics before and after, and checks that the
// ledger grew by exactly what the requests should have appended. A Duration
// that runs out stops new requests (those in flight finish), and so does
// a server that stops answering, or ctx cancelled during the play (then
// with ErrInterrupted): the report covers what was sent. Cancelling ctx
// during the setup aborts it after the requests in flight.
func Run(ctx context.Context, cfg Config) (Report, error) {
	cfg = cfg.withDefaults()
	r := &runner{cfg: cfg, base: strings.TrimRight(cfg.URL, "/"), sem: make(chan struct{}, cfg.Concurrency)}
	if r.base == "" {
		return Report{}, errors.New("simulate: no server URL")
	}
	r.send = newSender(cfg.Concurrency, cfg.Token)
	defer r.send.close()
	r.halting, r.cancelHalting = context.WithCancel(context.Background())
	defer r.cancelHalting()
	// A Ctrl-C (ctx cancelled) halts as --duration does: the requests in
	// flight finish, and the report and its check cover what was sent (a
	// walk's interrupted run printed nothing; another's, interrupted
	// during the setup, still sent a request of the play).
	interrupted := context.AfterFunc(ctx, func() { r.halt("interrupted") })
	defer interrupted()
	if cfg.Rate > 0 {
		r.limiter = rate.NewLimiter(rate.Limit(cfg.Rate), max(1, int(cfg.Rate/20)))
	}
	agents := Agents(cfg.Agents)
	scripts := make([][]Request, len(agents))
	planned := 0
	for i, a := range agents {
		scripts[i] = Script(cfg.Seed, a, cfg.CallsPerAgent, cfg.Day)
		planned += len(scripts[i])
	}
	var setup []Request
	if !cfg.SkipSetup {
		setup = configRequests(agents)
	}
	rep := Report{Seed: cfg.Seed, Agents: cfg.Agents, CallsPerAgent: cfg.CallsPerAgent, Planned: planned + len(setup)}
	if cfg.OnStart != nil {
		cfg.OnStart(rep.Planned)
	}

	before, _, err := r.verify(ctx)
	if err != nil {
		return rep, fmt.Errorf("simulate: %w", err)
	}
	if len(setup) > 0 {
		cur := r.config(ctx)
		if err := keysFit(cur, setup); err != nil {
			return rep, fmt.Errorf("simulate: configuring the site: %w", err)
		}
		rep.Replaced = replaced(cur, setup)
	}
	metA0, metC0, metOK := r.counters(ctx)

	if cfg.Duration > 0 {
		t := time.AfterFunc(cfg.Duration, func() { r.halt("--duration " + cfg.Duration.String() + " is up") })
		defer t.Stop()
	}

	total := newTally()
	// Setup: the site, keys and teams first (users refer to teams), then users in parallel.
	nFixed := len(setup) - len(agents)
	if len(setup) > 0 {
		st := newTally()
		// One at a time, stopping at the first refused: no teams or
		// users for a site that was not set up.
		for i := 0; i < nFixed && setupFailures(st) == ""; i++ {
			r.play(ctx, setup[i:i+1], st)
		}
		if setupFailures(st) == "" {
			r.parallel(ctx, setup[nFixed:], st)
		}
		if failed := setupFailures(st); failed != "" {
			return rep, fmt.Errorf("simulate: configuring the site: %s (the setup's changes before it were made)", failed)
		}
		total.merge(st)
	}

	outer := ctx
	ctx = context.WithoutCancel(ctx)

	start := time.Now()
	r.heard.Store(start.UnixNano())
	tallies := make([]*tally, len(agents))
	var wg sync.WaitGroup
	for i := range agents {
		tallies[i] = newTally()
		wg.Go(func() { r.play(ctx, scripts[i], tallies[i]) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	play := newTally()
	for _, t := range tallies {
		play.merge(t)
	}
	total.merge(play)
	if r.halting.Err() != nil {
		rep.StoppedEarly, rep.StoppedWhy = true, r.why
	}

	rep.Sent = total.sent
	rep.Unanswered = total.unanswered
	rep.Seconds = elapsed.Seconds()
	if rep.Seconds > 0 {
		rep.PerSecond = float64(play.sent-play.unanswered) / rep.Seconds
		rep.AppendedPerSecond = float64(play.expected) / rep.Seconds
	}
	rep.Commands = total.commands
	rep.SignalEvents = total.signalEvents
	rep.SignalsIgnored = total.signalsIgnored
	rep.HTTPErrors = total.httpErrors
	rep.Latency = summarise(play.latencies) // the play's alone: not the setup's

	if outer.Err() != nil {
		// Interrupted: the check waits a few seconds, not the client's
		// 30 s a request (a walk's Ctrl-C against a frozen server took a
		// minute to give its report).
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, interruptedCheck)
		defer cancel()
	}
	c := &rep.Check
	c.Expected, c.ExpectedCommands, c.ExpectedConfig = total.expected, total.expectedCmds, total.expectedConfig
	c.VerifyBefore = before
	c.VerifyAfter, c.VerifyOK, err = r.verify(ctx)
	if err != nil {
		// The server went away at the end: what was sent and answered is
		// still the report, without the check.
		c.Note, c.Unchecked = "not checked, the server did not answer at the end: "+err.Error(), true
		return rep, fmt.Errorf("simulate: %w: %w", ErrUnchecked, err)
	}

	c.VerifyDelta = int64(c.VerifyAfter) - int64(c.VerifyBefore)
	if c.VerifyDelta != int64(c.Expected) && c.VerifyAfter > c.VerifyBefore {
		if c.ServerAppended, err = r.serverAppended(ctx, c.VerifyBefore, c.VerifyAfter); err != nil {
			c.Note = "could not read /v1/events: " + err.Error()
		}
	}
	c.MetricsAppendedDelta, c.MetricsCommandsDelta = -1, -1
	c.Match = c.VerifyOK && c.VerifyDelta-int64(c.ServerAppended) == int64(c.Expected)
	restarted := false
	if a1, c1, ok := r.counters(ctx); ok && metOK && (a1 < metA0 || c1 < metC0) {
		// Counters that went back: the server restarted during the run
		// (a walk's report said MISMATCH, and blamed other clients, for a
		// ledger that grew by exactly what was sent).
		restarted = true
	} else if ok && metOK {
		c.MetricsAppendedDelta, c.MetricsCommandsDelta = a1-metA0, c1-metC0
		c.Match = c.Match && c.MetricsAppendedDelta == int64(c.Expected) && c.MetricsCommandsDelta == int64(c.ExpectedCommands)
	}
	if n := total.httpErrors["401"] + total.httpErrors["403"]; n > 0 {
		c.Note = strings.TrimSuffix(fmt.Sprintf("%d requests were refused at auth (401/403) and appended nothing: "+
			"give --token a token with the command and admin roles; %s", n, c.Note), "; ")
	} else if restarted && c.Note == "" {
		c.Note = "the server restarted during the run (its /metrics counters began again): only the ledger's count was checked"
	} else if !c.VerifyOK && c.Note == "" {
		// Not a count that differs: the server's own check failed.
		c.Note = "the server's ledger does not verify (/v1/verify ok=false): recledger verify --data DIR names the first bad event"
	} else if !c.Match && c.Note == "" {
		c.Note = "the server's counts differ from what was sent; other clients writing at the same time also count"
	}
	if outer.Err() != nil {
		return rep, fmt.Errorf("simulate: %w", ErrInterrupted)
	}
	return rep, nil
}

// refusedAtAuth reports a status the server answers before it appends.
func refusedAtAuth(status int) bool {
	return status == http.StatusUnauthorized || status == http.StatusForbidden
}

// setupFailures describes config requests that were refused, or "".
func setupFailures(t *tally) string {
	var parts []string
	for _, status := range slices.Sorted(maps.Keys(t.httpErrors)) {
		parts = append(parts, fmt.Sprintf("%d answered %s", t.httpErrors[status], status))
	}
	if len(parts) == 0 {
		return ""
	}
	s := strings.Join(parts, ", ")
	if t.refused != "" {
		s += "; the first: " + t.refused
	}
	return s
}

// parallel sends independent requests with up to Concurrency in flight.
func (r *runner) parallel(ctx context.Context, reqs []Request, t *tally) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, req := range reqs {
		wg.Go(func() {
			one := newTally()
			r.play(ctx, []Request{req}, one)
			mu.Lock()
			t.merge(one)
			mu.Unlock()
		})
	}
	wg.Wait()
}

// play sends reqs in order, one at a time (an agent's script).
func (r *runner) play(ctx context.Context, reqs []Request, t *tally) {
	for _, req := range reqs {
		if r.halting.Err() != nil || ctx.Err() != nil {
			return
		}
		// A halt (--duration, Ctrl-C, a server gone) ends the wait of
		// --rate too: at --rate 0.2 a walk's 2 s run took 10 s.
		if r.limiter != nil && (r.limiter.Wait(r.halting) != nil || r.halting.Err() != nil) {
			return
		}
		select {
		case r.sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		r.do(req, t)
		<-r.sem
		if r.cfg.OnRequest != nil {
			r.cfg.OnRequest()
		}
	}
}

// answer is the part of a command or signal response the report uses.
type answer struct {
	Outcome  string            `json:"outcome"`
	Accepted int               `json:"accepted"`
	Message  string            `json:"message"`
	Ignored  []json.RawMessage `json:"ignored"`
}

// do sends one request and tallies the answer.
func (r *runner) do(req Request, t *tally) {
	start := time.Now()
	var status int
	var ans answer
	err := r.send.send(r.base, req, func(code int, body []byte) {
		status = code
		_ = json.Unmarshal(body, &ans)
	})
	t.sent++
	if err != nil {
		// No answer: not a latency, nor part of the throughput.
		t.unanswered++
		t.httpErrors["transport"]++
		r.count(req, "transport", t)
		if req.Kind == KindConfig && t.refused == "" {
			// Said with the setup's failure: "1 answered transport" alone
			// hid why (a walk).
			t.refused = fmt.Sprintf("%s %s: no answer: %v", req.Method, req.Path, err)
		}
		misses := r.misses.Add(1)
		since := time.Since(time.Unix(0, r.heard.Load()))
		if since > unreachableAfter || misses >= max(unreachableMisses, 2*int64(r.cfg.Concurrency)) {
			what := "stopped answering"
			if !r.answered.Load() {
				what = "does not answer"
			}
			r.halt(fmt.Sprintf("the server %s: %d requests in a row, %s, without an answer (%v)", what, misses, since.Round(100*time.Millisecond), err))
		}
		return
	}
	r.heard.Store(time.Now().UnixNano())
	r.misses.Store(0)
	r.answered.Store(true)
	t.latencies = append(t.latencies, time.Since(start))
	if status >= 400 {
		t.httpErrors[strconv.Itoa(status)]++
	}
	if req.Kind == KindConfig && status >= 400 && t.refused == "" {
		t.refused = fmt.Sprintf("%s %s: %d %s", req.Method, req.Path, status, ans.Message)
	}
	switch req.Kind {
	case KindCommand:
		outcome := ans.Outcome
		if outcome == "" {
			outcome = "http_" + strconv.Itoa(status)
		}
		r.count(req, outcome, t)
		// A refusal at auth appends nothing; any other answer below 500
		// follows the append (refused commands are audit evidence).
		if status < 500 && !refusedAtAuth(status) && req.Appends > 0 {
			t.expected += req.Appends
			t.expectedCmds += req.Appends
		}
	case KindSignal:
		if status/100 == 2 {
			t.expected += req.Appends
			t.signalEvents += req.Appends
			t.signalsIgnored += len(ans.Ignored)
		}
	case KindConfig:
		if status/100 == 2 {
			t.expected += req.Appends
			t.expectedConfig += req.Appends
		}
	}
}

func (r *runner) count(req Request, outcome string, t *tally) {
	if req.Kind != KindCommand {
		return
	}
	m := t.commands[req.Label]
	if m == nil {
		m = map[string]int{}
		t.commands[req.Label] = m
	}
	m[outcome]++
}
