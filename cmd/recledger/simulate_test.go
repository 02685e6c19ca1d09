package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/recledger/recledger/cmd/internal/simulator"
	"github.com/recledger/recledger/ledger"
)

// TestSimulateAgainstServer plays a small day against the real server
// in-process through the `simulate` command: the ledger must grow by exactly
// what was sent, and the answers must carry real outcomes.
func TestSimulateAgainstServer(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := e2eServer(t, ctx, t.TempDir())
	defer e2eStop(t, srv)

	var out, errOut bytes.Buffer
	cmd := &SimulateCommand{Stdout: &out, Stderr: &errOut}
	err := cmd.Run(ctx, []string{"--url", "http://" + srv.Addr(), "--agents", "9", "--calls-per-agent", "6", "--seed", "5", "--json", "--strict"})
	if err != nil {
		t.Fatalf("simulate: %v\n%s%s", err, out.String(), errOut.String())
	}
	var rep simulator.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, out.String())
	}
	if !rep.Check.Match || rep.Check.VerifyDelta == 0 {
		t.Fatalf("check: %+v", rep.Check)
	}
	if rep.SignalsIgnored != 0 {
		t.Errorf("a fresh server ignored %d signals", rep.SignalsIgnored)
	}
	for _, want := range []struct{ cmd, outcome string }{
		{"pause", "applied"}, {"bad:unknown_user", "rejected"}, {"bad:finesse_variable", "rejected"},
	} {
		if rep.Commands[want.cmd][want.outcome] == 0 {
			t.Errorf("no %s answered %s: %v", want.cmd, want.outcome, rep.Commands[want.cmd])
		}
	}
	for _, status := range []string{"404", "413", "400"} {
		if rep.HTTPErrors[status] == 0 {
			t.Errorf("no %s answer: %v", status, rep.HTTPErrors)
		}
	}
	if rep.HTTPErrors["transport"] > 0 || rep.HTTPErrors["500"] > 0 || rep.HTTPErrors["503"] > 0 {
		t.Errorf("failures: %v", rep.HTTPErrors)
	}

	// The same again in text form, without setup, against the same server.
	out.Reset()
	if err := cmd.Run(ctx, []string{"--url", "http://" + srv.Addr(), "--agents", "9", "--calls-per-agent", "2", "--seed", "6", "--skip-setup", "--strict"}); err != nil {
		t.Fatalf("second run: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), ": MATCH\n") {
		t.Fatalf("text report without a check line that says MATCH:\n%s", out.String())
	}
	if len(rep.Replaced) != 0 {
		t.Errorf("a fresh server's setup replaced %v", rep.Replaced)
	}

	// A site configured otherwise: the setup says what it replaced.
	req, _ := http.NewRequest(http.MethodPut, "http://"+srv.Addr()+"/v1/config/site", strings.NewReader(`{"timezone":"America/Chicago","upload_time":"18:00","max_pause_seconds":30}`))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("PUT site: %v %v", err, resp)
	}
	out.Reset()
	if err := cmd.Run(ctx, []string{"--url", "http://" + srv.Addr(), "--agents", "2", "--calls-per-agent", "1", "--seed", "7"}); err != nil {
		t.Fatalf("third run: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), `setup replaced the server's configuration: site (max_pause_seconds 30 → 0, server_host "" → "qm-base-1", timezone "America/Chicago" → "UTC", upload_time "18:00" → "23:00")`) {
		t.Errorf("the setup did not say it replaced the site:\n%s", out.String())
	}

	// The same seed again: its calls are the last run's, ended, and the
	// server ignores their signals; the report says so (a walk's run
	// made no contact and read MATCH).
	for _, run := range []string{"fourth", "fifth"} {
		out.Reset()
		if err := cmd.Run(ctx, []string{"--url", "http://" + srv.Addr(), "--agents", "2", "--calls-per-agent", "1", "--seed", "8", "--skip-setup", "--day", "2026-11-20"}); err != nil {
			t.Fatalf("%s run: %v\n%s", run, err, out.String())
		}
		if run == "fourth" && strings.Contains(out.String(), "call signals ignored") {
			t.Errorf("a new seed's signals ignored:\n%s", out.String())
		}
	}
	if !strings.Contains(out.String(), "call signals ignored by the server: ") || !strings.Contains(out.String(), "play another --seed") {
		t.Errorf("a run of the same seed again does not say its signals were ignored:\n%s", out.String())
	}
}

// A number given on the command line is meant: 0 is not the library's
// default, and nothing is sent.
func TestSimulateRefusesNoAgentsOrCalls(t *testing.T) {
	for _, args := range [][]string{
		{"--calls-per-agent", "0"}, {"--agents", "0"}, {"--agents", "-3"}, {"--rate", "-1"}, {"--duration", "-1s"},
	} {
		var out, errOut bytes.Buffer
		cmd := &SimulateCommand{Stdout: &out, Stderr: &errOut}
		err := cmd.Run(context.Background(), append([]string{"--url", "http://127.0.0.1:1"}, args...))
		if !errors.Is(err, ledger.ErrInvalid) {
			t.Errorf("simulate %v: %v", args, err)
		}
	}
}

// A server that goes away once the day was played still leaves the report
// of what was sent and answered, marked unchecked.
func TestSimulateReportsWhenTheServerIsGone(t *testing.T) {
	ctx := t.Context()
	srv := e2eServer(t, ctx, t.TempDir())
	var (
		n, planned atomic.Int64
		once       sync.Once
	)
	cfg := simulator.Config{URL: "http://" + srv.Addr(), Agents: 2, CallsPerAgent: 2, Seed: 3,
		OnStart: func(total int) { planned.Store(int64(total)) },
		OnRequest: func() {
			if n.Add(1) == planned.Load() { // the last answer is in: the server goes
				once.Do(func() { e2eStop(t, srv) })
			}
		}}
	rep, err := simulator.Run(ctx, cfg)
	if !errors.Is(err, simulator.ErrUnchecked) {
		t.Fatalf("err = %v, want ErrUnchecked", err)
	}
	if rep.Sent != rep.Planned || rep.Sent == 0 || !strings.HasPrefix(rep.Check.Note, "not checked") || rep.Check.Match || !rep.Check.Unchecked {
		t.Errorf("report: sent %d of %d, check %+v", rep.Sent, rep.Planned, rep.Check)
	}
	// The text says the check was not made, not that the chain failed.
	var text strings.Builder
	rep.WriteText(&text)
	if out := text.String(); !strings.Contains(out, "ledger check: not checked") || strings.Contains(out, "MISMATCH") || strings.Contains(out, "chain ok") {
		t.Errorf("report text:\n%s", out)
	}
}

// A server that goes away in the middle of the play halts it: the
// requests that got no answer are counted apart, not in the throughput
// or the latencies, and the rest of the plan is not fired at a dead
// address (a walk's killed server was credited with 16,480 requests/s).
func TestSimulateHaltsWhenTheServerStopsAnswering(t *testing.T) {
	ctx := t.Context()
	srv := e2eServer(t, ctx, t.TempDir())
	var (
		n    atomic.Int64
		once sync.Once
	)
	cfg := simulator.Config{URL: "http://" + srv.Addr(), Agents: 20, CallsPerAgent: 20, Seed: 4,
		OnRequest: func() {
			if n.Add(1) == 400 { // the setup and part of the play are answered
				once.Do(func() { e2eStop(t, srv) })
			}
		}}
	rep, err := simulator.Run(ctx, cfg)
	if !errors.Is(err, simulator.ErrUnchecked) {
		t.Fatalf("err = %v, want ErrUnchecked", err)
	}
	if !rep.StoppedEarly || !strings.Contains(rep.StoppedWhy, "the server stopped answering") {
		t.Errorf("stopped early %v (%q), want halted for the server", rep.StoppedEarly, rep.StoppedWhy)
	}
	if rep.Unanswered == 0 || rep.Sent >= rep.Planned {
		t.Errorf("sent %d of %d, %d unanswered: want the rest of the plan not sent", rep.Sent, rep.Planned, rep.Unanswered)
	}
	answered := 0
	for _, m := range rep.Commands {
		for o, k := range m {
			if o != "transport" {
				answered += k
			}
		}
	}
	if rep.Latency.Count > rep.Sent-rep.Unanswered || rep.Latency.Count < answered {
		t.Errorf("%d latencies for %d sent, %d unanswered: unanswered requests counted as latencies", rep.Latency.Count, rep.Sent, rep.Unanswered)
	}
	var text strings.Builder
	rep.WriteText(&text)
	if out := text.String(); !strings.Contains(out, "unanswered: ") || !strings.Contains(out, "the server stopped answering") {
		t.Errorf("report text:\n%s", out)
	}
}

// Ctrl-C during the play (ctx cancelled) stops it as --duration does:
// the report covers what was sent, checked against the server, and
// the run ends with ErrInterrupted (a walk's interrupted run printed
// only "context canceled").
func TestSimulateInterruptedReports(t *testing.T) {
	ctx := t.Context()
	srv := e2eServer(t, ctx, t.TempDir())
	defer e2eStop(t, srv)
	runCtx, interrupt := context.WithCancel(ctx)
	defer interrupt()
	var n atomic.Int64
	cfg := simulator.Config{URL: "http://" + srv.Addr(), Agents: 20, CallsPerAgent: 20, Seed: 9,
		OnRequest: func() {
			if n.Add(1) == 300 {
				interrupt()
			}
		}}
	rep, err := simulator.Run(runCtx, cfg)
	if !errors.Is(err, simulator.ErrInterrupted) {
		t.Fatalf("err = %v, want ErrInterrupted", err)
	}
	if !rep.StoppedEarly || rep.StoppedWhy != "interrupted" || rep.Sent == 0 || rep.Sent >= rep.Planned {
		t.Errorf("stopped early %v (%q), sent %d of %d", rep.StoppedEarly, rep.StoppedWhy, rep.Sent, rep.Planned)
	}
	if !rep.Check.Match || rep.Check.Unchecked {
		t.Errorf("the interrupted run's check: %+v", rep.Check)
	}
	if c := rep.Check; c.Expected != c.ExpectedCommands+rep.SignalEvents+c.ExpectedConfig {
		t.Errorf("expected %d events is not %d commands + %d signals + %d configuration changes", c.Expected, c.ExpectedCommands, rep.SignalEvents, c.ExpectedConfig)
	}
}

// A setup whose metadata keys and the server's own would be more than a
// site may define is refused before it changes anything: the site
// settings, teams and users are as they were, and the error names the
// keys and the ways out.
func TestSimulateRefusesKeysThatDoNotFit(t *testing.T) {
	ctx := t.Context()
	srv := e2eServer(t, ctx, t.TempDir())
	defer e2eStop(t, srv)
	base := "http://" + srv.Addr()
	put := func(path, body string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPut, base+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("PUT %s: %s", path, resp.Status)
		}
	}
	put("/v1/config/site", `{"timezone":"Europe/Paris","upload_time":"03:00"}`)
	for i := range 6 { // with the setup's keys, more than 10
		put("/v1/config/metadata/own"+strconv.Itoa(i), `{"type":"text"}`)
	}
	before := getConfig(t, base)
	var out, errOut bytes.Buffer
	cmd := &SimulateCommand{Stdout: &out, Stderr: &errOut}
	err := cmd.Run(ctx, []string{"--url", base, "--agents", "3", "--calls-per-agent", "1"})
	if err == nil || !strings.Contains(err.Error(), "6 metadata keys of its own (own0, own1, own2, own3, own4, own5)") ||
		!strings.Contains(err.Error(), "at most 10") || !strings.Contains(err.Error(), "--skip-setup") {
		t.Fatalf("simulate: %v", err)
	}
	if after := getConfig(t, base); after != before {
		t.Errorf("the configuration changed:\nbefore %s\nafter  %s", before, after)
	}
}

// A setup the server refuses (here: the token has no admin role) stops at
// the first refusal, before the teams and users, and the error names it
// and why.
func TestSimulateNamesTheSetupRefused(t *testing.T) {
	const desk = "desk-token-0123456789"
	srv := startWithTokens(t, t.TempDir(), `{"tokens":[{"name":"desk","token":"`+desk+`","roles":["command","auditor"]},`+
		`{"name":"admin","token":"admin-token-0123456789","roles":["admin"]}]}`)
	base := "http://" + srv.Addr()
	var out, errOut bytes.Buffer
	cmd := &SimulateCommand{Stdout: &out, Stderr: &errOut}
	err := cmd.Run(t.Context(), []string{"--url", base, "--token", desk, "--agents", "3", "--calls-per-agent", "1"})
	if err == nil || !strings.Contains(err.Error(), "the first: PUT /v1/config/site") || !strings.Contains(err.Error(), "403") {
		t.Fatalf("simulate: %v", err)
	}
	var c struct {
		Users map[string]any `json:"users"`
		Teams map[string]any `json:"teams"`
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/v1/config", nil)
	req.Header.Set("Authorization", "Bearer admin-token-0123456789")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		t.Fatal(err)
	}
	if len(c.Users) != 0 || len(c.Teams) != 0 {
		t.Errorf("%d users and %d teams configured for a site whose setup failed", len(c.Users), len(c.Teams))
	}
}

// getConfig is GET /v1/config of an open server, as text.
func getConfig(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/v1/config")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /v1/config: %v %s", err, resp.Status)
	}
	return string(b)
}

// A token without the command role (here, RECLEDGER_TOKEN with admin
// only): the commands refused at auth append nothing and are not counted
// as appended, so the ledger check still matches, and the note says why
// the run did little.
func TestSimulateCountsRefusalsAtAuth(t *testing.T) {
	const ops = "ops-token-0123456789"
	srv := startWithTokens(t, t.TempDir(), `{"tokens":[{"name":"ops","token":"`+ops+`","roles":["admin","auditor"]}]}`)
	t.Setenv("RECLEDGER_TOKEN", ops)
	var out, errOut bytes.Buffer
	cmd := &SimulateCommand{Stdout: &out, Stderr: &errOut}
	// --strict fails it: nothing was appended, so the counts match
	// trivially.
	if err := cmd.Run(t.Context(), []string{"--url", "http://" + srv.Addr(), "--agents", "3", "--calls-per-agent", "2", "--no-progress", "--strict"}); err == nil || !strings.Contains(err.Error(), "refused at auth") {
		t.Fatalf("simulate --strict with refusals at auth: %v\n%s", err, out.String())
	}
	for _, want := range []string{"403=", ": MATCH", "refused at auth (401/403) and appended nothing"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

// A halt ends the waits of --rate too: at --rate 0.2 a walk's run of
// --duration 2s took 10 s, each agent waiting out its next request.
func TestSimulateDurationEndsTheRateWaits(t *testing.T) {
	ctx := t.Context()
	srv := e2eServer(t, ctx, t.TempDir())
	defer e2eStop(t, srv)
	start := time.Now()
	rep, err := simulator.Run(ctx, simulator.Config{URL: "http://" + srv.Addr(), Agents: 4, CallsPerAgent: 5, Seed: 3,
		SkipSetup: true, Rate: 0.2, Duration: 500 * time.Millisecond})
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.StoppedEarly || took > 8*time.Second {
		t.Errorf("--rate 0.2 --duration 500ms took %s (stopped early: %v, sent %d)", took.Round(time.Millisecond), rep.StoppedEarly, rep.Sent)
	}
}
