package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"

	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/ledger/ledgertest"
	"github.com/recledger/recledger/projections"
	"github.com/recledger/recledger/replay"
	"github.com/recledger/recledger/replay/replaytest"
)

// offlineDay is a data dir holding one realistic day, written through a
// store watched by live projections, and what those said.
type offlineDay struct {
	dir     string
	seq     uint64
	digest  string            // live digest at the head
	digests map[uint64]string // live digest after each Append
	live    *projections.Live
	natsURL string              // set when mirrored to JetStream
	js      jetstream.JetStream // the mirror's, when mirrored
}

// writeOfflineDay writes the day into a fresh data dir and closes the store
// (so the offline commands can open it), mirroring it to a fresh in-process
// JetStream when mirror is set.
func writeOfflineDay(t *testing.T, mirror bool, checkpointAt uint64) *offlineDay {
	t.Helper()
	ctx := context.Background()
	d := &offlineDay{dir: t.TempDir(), digests: map[uint64]string{}, live: projections.NewLive(projections.New())}
	clk := replaytest.NewClock(replaytest.Start, 250*time.Millisecond)
	store, err := ledger.Open(filepath.Join(d.dir, LedgerFile), ledger.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	store.Subscribe(d.live.OnCommit)
	var outbox *ledger.Outbox
	if mirror {
		d.natsURL, d.js = startJetStream(t)
		if err := ledger.EnsureStreams(ctx, d.js, replaytest.Site, 1); err != nil {
			t.Fatal(err)
		}
		outbox = ledger.NewOutbox(store, d.js, replaytest.Site, nil)
		octx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- outbox.Run(octx) }()
		defer func() { cancel(); <-done }()
	}
	_, err = replaytest.Write(ctx, store, replaytest.DayEvents(), func(envs []ledger.Envelope) {
		seq, dg := d.live.Digest()
		d.digests[seq] = dg
		if seq == checkpointAt {
			b, _, secs, err := d.live.Snapshot()
			if err == nil {
				// d.live keeps the sections' bytes: it is the reference
				// the commands are compared with, after the store closes.
				err = store.SaveCheckpoint(ctx, projections.Version, seq, b, secs)
			}
			if err != nil {
				t.Error(err)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	d.seq, d.digest = d.live.Digest()
	if outbox != nil {
		deadline := time.Now().Add(20 * time.Second)
		for outbox.Lag() != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("outbox lag %d", outbox.Lag())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return d
}

func startJetStream(t *testing.T) (string, jetstream.JetStream) {
	t.Helper()
	j := ledgertest.StartJetStream(t)
	return j.URL(), j.JS
}

// run runs a command with args and returns what it printed.
func runCmd(t *testing.T, c interface {
	Run(context.Context, []string) error
}, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	switch c := c.(type) {
	case *ReplayCommand:
		c.Out = &out
	case *VerifyCommand:
		c.Out = &out
	case *RestoreCommand:
		c.Out = &out
	case *PausesCommand:
		c.Out = &out
	case *ManifestCommand:
		c.Out = &out
	case *BackupCommand:
		c.Out = &out
	}
	err := c.Run(context.Background(), args)
	return out.String(), err
}

func TestReplayCommandDigestAndSummary(t *testing.T) {
	d := writeOfflineDay(t, false, 0)
	out, err := runCmd(t, &ReplayCommand{}, "--data", d.dir, "--digest")
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%d %s\n", d.seq, d.digest); out != want {
		t.Fatalf("--digest printed %q, want %q", out, want)
	}
	out, err = runCmd(t, &ReplayCommand{}, "--data", d.dir, "--digest", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var dv digestView
	if err := json.Unmarshal([]byte(out), &dv); err != nil || dv.Seq != d.seq || dv.Digest != d.digest || strings.Index(out, "\n") != len(out)-1 {
		t.Fatalf("--digest --json: %q (%v)", out, err)
	}

	out, err = runCmd(t, &ReplayCommand{}, "--data", d.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		fmt.Sprintf("events       %d (last ", d.seq),
		"replayed     " + fmt.Sprint(d.seq) + " (from seq 1)",
		"agents       5 configured, 2 logged in, 1 active calls",
		"sealed days  1: " + replaytest.Day,
		"digest       " + d.digest,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	out, err = runCmd(t, &ReplayCommand{}, "--data", d.dir, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var sum replaySummary
	if err := json.Unmarshal([]byte(out), &sum); err != nil || sum.Seq != d.seq || sum.Digest != d.digest || sum.OpenPauses != 1 {
		t.Fatalf("--json summary %q (%v)", out, err)
	}
	// The contacts as the live projections count them, the open ones
	// apart.
	cts, err := d.live.Contacts(t.Context(), ledger.ContactQuery{})
	if err != nil {
		t.Fatal(err)
	}
	open := 0
	for _, ct := range cts {
		if ct.Disposition == nil {
			open++
		}
	}
	if open == 0 || open == len(cts) || sum.Contacts != len(cts) || sum.OpenContacts != open {
		t.Errorf("summary counts %d contacts, %d open; the live projections %d, %d open", sum.Contacts, sum.OpenContacts, len(cts), open)
	}
	// And the pauses.
	ps, err := d.live.Pauses(t.Context(), ledger.PauseQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) < 2 || sum.Pauses != len(ps) {
		t.Errorf("summary counts %d pauses; the live projections %d", sum.Pauses, len(ps))
	}
	// Before the seal: no day sealed, said as such.
	out, err = runCmd(t, &ReplayCommand{}, "--data", d.dir, "--until", "3")
	if err != nil || !strings.Contains(out, "sealed days  0: none\n") {
		t.Errorf("summary before any seal: %v\n%s", err, out)
	}
	// A data dir that lost its ledger file but holds its mirror: the
	// error says how to rebuild it.
	lost := t.TempDir()
	if err := os.Mkdir(filepath.Join(lost, JetStreamDir), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := runCmd(t, &ReplayCommand{}, "--data", lost); !errors.Is(err, ledger.ErrNotFound) || !strings.Contains(err.Error(), "rebuild the ledger from it with recledger restore --from-jetstream") {
		t.Errorf("replay of a dir with a mirror and no ledger: %v", err)
	}
}

// --until at several seqs gives the digest the live projections had then.
func TestReplayCommandUntil(t *testing.T) {
	d := writeOfflineDay(t, false, 0)
	checked := 0
	for seq, want := range d.digests {
		if seq%5 != 0 && seq != 1 {
			continue
		}
		out, err := runCmd(t, &ReplayCommand{}, "--data", d.dir, "--until", fmt.Sprint(seq), "--digest")
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprintf("%d %s\n", seq, want); out != got {
			t.Errorf("--until %d: %q, want %q", seq, out, got)
		}
		checked++
	}
	if checked < 5 {
		t.Fatalf("only %d points checked", checked)
	}
	if _, err := runCmd(t, &ReplayCommand{}, "--data", d.dir, "--until", "yesterday"); !errors.Is(err, ledger.ErrInvalid) {
		t.Fatalf("bad --until: %v", err)
	}
	// A time before the first event: the empty state, and a word on stderr.
	notice, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer notice.Close()
	if _, err := runCmd(t, &ReplayCommand{Stderr: notice}, "--data", d.dir, "--until", "2000-01-01T00:00:00Z", "--digest"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(notice.Name()); !strings.Contains(string(b), "comes before the ledger's first event") {
		t.Errorf("no word of an --until before the ledger: %q", b)
	}
	// A seq beyond the head, even by one: the head's state, and a word on
	// stderr.
	past := strconv.FormatUint(d.seq+1, 10)
	out, err := runCmd(t, &ReplayCommand{Stderr: notice}, "--data", d.dir, "--until", past, "--digest")
	if want := fmt.Sprintf("%d %s\n", d.seq, d.digests[d.seq]); err != nil || out != want {
		t.Fatalf("--until beyond the head: %v %q, want %q", err, out, want)
	}
	if b, _ := os.ReadFile(notice.Name()); !strings.Contains(string(b), fmt.Sprintf("--until %s is beyond the ledger's head, seq %d", past, d.seq)) {
		t.Errorf("no word of an --until beyond the head: %q", b)
	}
	// A time after the last event: the same (a walk took the silence for
	// a state at that time).
	out, err = runCmd(t, &ReplayCommand{Stderr: notice}, "--data", d.dir, "--until", "2099-01-01T00:00:00Z", "--digest")
	if want := fmt.Sprintf("%d %s\n", d.seq, d.digests[d.seq]); err != nil || out != want {
		t.Fatalf("--until after the last event: %v %q, want %q", err, out, want)
	}
	if b, _ := os.ReadFile(notice.Name()); !strings.Contains(string(b), fmt.Sprintf("--until 2099-01-01T00:00:00Z is after the ledger's last event (seq %d, ", d.seq)) {
		t.Errorf("no word of an --until after the last event: %q", b)
	}
}

// replayNotes runs replay with args and returns what it printed on
// stdout and what it said on stderr.
func replayNotes(t *testing.T, args ...string) (out, notes string, err error) {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out, err = runCmd(t, &ReplayCommand{Stderr: f}, args...)
	b, rerr := os.ReadFile(f.Name())
	if rerr != nil {
		t.Fatal(rerr)
	}
	return out, string(b), err
}

// The words replay says on stderr of --until and --user are said only when
// they hold: a bound at the head, at the last event's id or between two
// events is not outside the ledger, seq 1 is not before the first event, an
// empty ledger has neither, and a user whom events name, traced or asked
// for as JSON, is neither unknown nor another's case. The empty state's
// summary names no last event.
func TestReplayNotesOnlyWhatHolds(t *testing.T) {
	d := writeOfflineDay(t, true, 0)
	store, err := openLedgerReadOnly(d.dir)
	if err != nil {
		t.Fatal(err)
	}
	last, err := store.Get(t.Context(), d.seq)
	var tenth ledger.Envelope
	if err == nil {
		tenth, err = store.Get(t.Context(), 10)
	}
	store.Close()
	if err != nil {
		t.Fatal(err)
	}
	// Just after the tenth event, before the eleventh (a quarter of a
	// second later).
	between := tenth.Time.Add(time.Millisecond).UTC().Format(time.RFC3339Nano)
	for _, args := range [][]string{
		{"--until", fmt.Sprint(d.seq), "--digest"},
		{"--until", last.ID.String(), "--digest"},
		{"--until", between, "--digest"},
		{"--until", "1", "--digest"},
		{"--user", "asmith"},
		{"--user", "asmith", "--json"},
		// The mirror read to a bound is not behind the ledger.
		{"--source", "jetstream", "--nats", d.natsURL, "--site", replaytest.Site, "--until", "3", "--digest"},
	} {
		out, notes, err := replayNotes(t, append([]string{"--data", d.dir}, args...)...)
		if err != nil || out == "" || notes != "" {
			t.Errorf("replay %v: %v, said on stderr:\n%s", args, err, notes)
		}
	}

	// A --from-checkpoint with no checkpoint to start from says so.
	if _, notes, err := replayNotes(t, "--data", d.dir, "--from-checkpoint", "--digest"); err != nil ||
		!strings.Contains(notes, "--from-checkpoint: the ledger holds no checkpoint of this build's version; replaying from seq 1") {
		t.Errorf("replay --from-checkpoint of a ledger with no checkpoint: %v, said:\n%s", err, notes)
	}
	// Nor does a mirror read to a bound before its first event hold what
	// the ledger does not.
	_, notes, err := replayNotes(t, "--data", d.dir, "--source", "jetstream", "--nats", d.natsURL, "--site", replaytest.Site, "--until", "2000-01-01T00:00:00Z", "--digest")
	if err != nil || !strings.Contains(notes, "comes before the ledger's first event") || strings.Contains(notes, "note:") {
		t.Errorf("replay of a mirror to a bound before its first event: %v, said:\n%s", err, notes)
	}

	empty := t.TempDir()
	st, err := ledger.Open(filepath.Join(empty, LedgerFile), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	for _, until := range []string{"2099-01-01T00:00:00Z", "2000-01-01T00:00:00Z"} {
		out, notes, err := replayNotes(t, "--data", empty, "--until", until, "--digest")
		if err != nil || !strings.HasPrefix(out, "0 ") || notes != "" {
			t.Errorf("replay --until %s of an empty ledger: %v %q, said on stderr:\n%s", until, err, out, notes)
		}
	}
	out, _, err := replayNotes(t, "--data", empty)
	if err != nil || !strings.Contains(out, "events       0\n") {
		t.Errorf("summary of an empty ledger: %v\n%s", err, out)
	}
}

func TestReplayCommandTraceUser(t *testing.T) {
	d := writeOfflineDay(t, false, 0)
	out, err := runCmd(t, &ReplayCommand{}, "--data", d.dir, "--user", "asmith")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		" command asmith login: asmith login 3421",
		" command asmith pause: c-2 recording→paused",
		" call_signal asmith ended c-2: c-2 pause closed (call_end)",
		" command asmith pause: no_effect (not_recording)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("trace lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "jdoe") {
		t.Errorf("trace of asmith shows jdoe:\n%s", out)
	}
	// The trace ends with where the agent was (the question "what was
	// asmith's state at 14:02?" had only the trace's lines to answer it).
	if want := "\nasmith at seq "; !strings.Contains(out, want) || !strings.HasSuffix(out, "logged in on 3421; active c-6 paused (contact "+contactOf(t, out, "c-6")+"); last call c-2 (contact "+contactOf(t, out, "c-2")+")\n") {
		t.Errorf("trace does not end with asmith's state:\n%s", out)
	}
	for _, args := range [][]string{{"--trace", "--json", "--digest"}, {"--user", "asmith", "--json", "--digest"}} {
		// --json prints one JSON object and nothing else.
		if out, err := runCmd(t, &ReplayCommand{}, append([]string{"--data", d.dir}, args...)...); !errors.Is(err, ledger.ErrInvalid) {
			t.Errorf("replay %v: %v, want it refused\n%s", args, err, out)
		}
	}
	if _, err := runCmd(t, &ReplayCommand{}, "--data", d.dir, "--user", "asmith", "--trace", "--json"); !errors.Is(err, ledger.ErrInvalid) {
		t.Errorf("a trace asked for as JSON: %v, want it refused", err)
	}
	// --json: the state alone, as GET /v1/agents/asmith answered then.
	out, err = runCmd(t, &ReplayCommand{}, "--data", d.dir, "--user", "asmith", "--json", "--until", "14")
	if err != nil {
		t.Fatal(err)
	}
	var at struct {
		Seq   uint64
		Time  string
		Agent *ledger.AgentState
	}
	if err := json.Unmarshal([]byte(out), &at); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if a := at.Agent; at.Seq != 14 || at.Time == "" || a == nil || a.UserID != "asmith" || !a.LoggedIn || a.Extension != "3421" ||
		len(a.ActiveCalls) != 1 || a.ActiveCalls[0].CallID != "c-2" || a.ActiveCalls[0].Recording != "recording" || a.ActiveCalls[0].ContactID == "" || a.LastCall != nil {
		t.Errorf("asmith at seq 14: %s", out)
	}
	out, err = runCmd(t, &ReplayCommand{}, "--data", d.dir, "--user", "nosuch", "--json")
	if err != nil || !strings.Contains(out, `"agent":null`) {
		t.Errorf("an unknown user as JSON: %v %s, want agent null", err, out)
	}
	// A user no event names: said so, though the site's configuration
	// lines, every user's, are traced (a walk's typo read as an agent
	// who did nothing).
	notice, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer notice.Close()
	if _, err := runCmd(t, &ReplayCommand{Stderr: notice}, "--data", d.dir, "--user", "nosuch"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(notice.Name()); !strings.Contains(string(b), `no event names user "nosuch"`) {
		t.Errorf("no word of a user no event names: %q", b)
	}
	if _, err := runCmd(t, &ReplayCommand{Stderr: notice}, "--data", d.dir, "--user", "ASMITH"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(notice.Name()); !strings.Contains(string(b), `agent "asmith" differs from "ASMITH" only in case`) {
		t.Errorf("no word of the agent in other case: %q", b)
	}
}

// contactOf finds the contact a trace says call opened.
func contactOf(t *testing.T, trace, call string) string {
	t.Helper()
	m := regexp.MustCompile(regexp.QuoteMeta(call) + ` not_recording→recording: contact ([0-9A-Z]{26}) opened`).FindStringSubmatch(trace)
	if m == nil {
		t.Fatalf("no contact opened for %s in:\n%s", call, trace)
	}
	return m[1]
}

// replay rebuilds from seq 1; with --from-checkpoint it replays only the
// tail after the newest checkpoint, to the same digest.
func TestReplayCommandUsesCheckpoint(t *testing.T) {
	d := writeOfflineDay(t, false, 30)
	out, err := runCmd(t, &ReplayCommand{}, "--data", d.dir)
	if want := fmt.Sprintf("replayed     %d (from seq 1)", d.seq); err != nil || !strings.Contains(out, want) || !strings.Contains(out, d.digest) {
		t.Fatalf("summary lacks %q or the digest: %v\n%s", want, err, out)
	}
	out, err = runCmd(t, &ReplayCommand{}, "--data", d.dir, "--from-checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("replayed     %d (from checkpoint at seq 30, the state up to it the checkpoint's)", d.seq-30)
	if !strings.Contains(out, want) || !strings.Contains(out, d.digest) {
		t.Fatalf("summary lacks %q or the digest:\n%s", want, out)
	}
	// A trace needs the whole history: no checkpoint.
	out, err = runCmd(t, &ReplayCommand{}, "--data", d.dir, "--trace", "--digest")
	if err != nil || !strings.HasPrefix(out, "1 ") || !strings.HasSuffix(out, d.digest+"\n") {
		t.Fatalf("trace+digest: %v\n%s", err, out)
	}
	for _, args := range [][]string{{"--trace"}, {"--until", "5"}} {
		if _, err := runCmd(t, &ReplayCommand{}, append([]string{"--data", d.dir, "--from-checkpoint"}, args...)...); !errors.Is(err, ledger.ErrInvalid) {
			t.Errorf("--from-checkpoint %v: %v, want it refused", args, err)
		}
	}

	// A checkpoint at the head leaves nothing to replay; the summary still
	// names the last event.
	head := writeOfflineDay(t, false, d.seq)
	out, err = runCmd(t, &ReplayCommand{}, "--data", head.dir, "--json", "--from-checkpoint")
	var sum replaySummary
	if err != nil || json.Unmarshal([]byte(out), &sum) != nil {
		t.Fatalf("summary from a checkpoint at the head: %v %s", err, out)
	}
	if sum.Replayed != 0 || sum.FromCheckpoint != d.seq || len(sum.LastID) != 26 || sum.LastTime == "" {
		t.Errorf("summary from a checkpoint at the head: %+v, want the last event named", sum)
	}
}

// While a server holds the ledger, replay says so and points to JetStream.
func TestReplayCommandLockedLedger(t *testing.T) {
	d := writeOfflineDay(t, false, 0)
	store, err := ledger.Open(filepath.Join(d.dir, LedgerFile), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	_, err = runCmd(t, &ReplayCommand{}, "--data", d.dir, "--digest")
	if err == nil || !strings.Contains(err.Error(), "--source jetstream") || !errors.Is(err, ledger.ErrUnavailable) {
		t.Fatalf("locked ledger: %v", err)
	}
	_, err = runCmd(t, &ReplayCommand{}, "--data", t.TempDir())
	if !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("no ledger: %v", err)
	}
}

// JetStream: replay from the mirror, verify both copies, restore a data dir
// from the mirror alone, and replay it: the same digest everywhere.
func TestReplayVerifyRestoreFromJetStream(t *testing.T) {
	d := writeOfflineDay(t, true, 0)
	js := []string{"--nats", d.natsURL, "--site", replaytest.Site}
	want := fmt.Sprintf("%d %s\n", d.seq, d.digest)

	out, err := runCmd(t, &ReplayCommand{}, append([]string{"--source", "jetstream", "--digest"}, js...)...)
	if err != nil || out != want {
		t.Fatalf("replay --source jetstream: %q, %v; want %q", out, err, want)
	}

	out, err = runCmd(t, &VerifyCommand{}, append([]string{"--data", d.dir}, js...)...)
	if err != nil || !strings.Contains(out, fmt.Sprintf("chain      ok: %d events", d.seq)) ||
		!strings.Contains(out, fmt.Sprintf("jetstream  ok: %d events", d.seq)) {
		t.Fatalf("verify: %v\n%s", err, out)
	}

	dir := t.TempDir()
	out, err = runCmd(t, &RestoreCommand{}, append([]string{"--from-jetstream", "--data", dir}, js...)...)
	if err != nil || !strings.Contains(out, fmt.Sprintf("restored %d events", d.seq)) || !strings.Contains(out, d.digest) {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	out, err = runCmd(t, &ReplayCommand{}, "--data", dir, "--digest")
	if err != nil || out != want {
		t.Fatalf("replay of the restored dir: %q, %v; want %q", out, err, want)
	}
	// A mirror read under a site that has no events there: an error, not
	// the empty state's digest with status 0 (a walk's wrong --site).
	if out, err := runCmd(t, &ReplayCommand{}, "--source", "jetstream", "--digest", "--nats", d.natsURL, "--site", "elsewhere"); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("replay of an empty site's mirror: %v %q", err, out)
	}
	// Its URL is named without the credentials it carries.
	withPassword := strings.Replace(d.natsURL, "nats://", "nats://reader:s3cret@", 1)
	if _, err := runCmd(t, &ReplayCommand{}, "--source", "jetstream", "--digest", "--nats", withPassword, "--site", "elsewhere", "--data", t.TempDir()); !errors.Is(err, ledger.ErrNotFound) || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("replay of an empty site's mirror named with a password: %v", err)
	}
	out, err = runCmd(t, &ReplayCommand{}, "--data", dir, "--from-checkpoint")
	if err != nil || !strings.Contains(out, "replayed     0 (from checkpoint at seq "+fmt.Sprint(d.seq)) {
		t.Fatalf("restore left no checkpoint: %v\n%s", err, out)
	}
	out, err = runCmd(t, &VerifyCommand{}, append([]string{"--data", dir}, js...)...)
	if err != nil {
		t.Fatalf("verify restored: %v\n%s", err, out)
	}

	// A data dir that holds the whole mirror has nothing to copy (one
	// that holds its start is continued, one that holds other events is
	// refused: TestServeRefusesALedgerBehindItsMirror).
	notice, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer notice.Close()
	out, err = runCmd(t, &RestoreCommand{Stderr: notice}, append([]string{"--from-jetstream", "--data", dir}, js...)...)
	if err != nil || !strings.Contains(out, "restored 0 events") || !strings.Contains(out, d.digest) {
		t.Fatalf("restore into a full dir: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(notice.Name()); !strings.Contains(string(b), fmt.Sprintf("holds all the mirror's %d events: nothing to copy", d.seq)) {
		t.Errorf("no word that the dir holds the whole mirror: %q", b)
	}
	// --json: the events copied, the head and the digest to compare.
	out, err = runCmd(t, &RestoreCommand{Stderr: devNull(t)}, append([]string{"--from-jetstream", "--data", dir, "--json"}, js...)...)
	var res restoreResult
	if err != nil || json.Unmarshal([]byte(out), &res) != nil || res.Events != 0 || res.Seq != d.seq || len(res.Head) != 64 || res.Digest != d.digest {
		t.Fatalf("restore --json into a full dir: %v %q, want 0 events, seq %d and digest %s", err, out, d.seq, d.digest)
	}
	_, err = runCmd(t, &RestoreCommand{}, "--data", t.TempDir(), "--nats", d.natsURL)
	if !errors.Is(err, ledger.ErrInvalid) {
		t.Fatalf("restore without --from-jetstream: %v", err)
	}

	// The mirror of another site holds nothing.
	_, err = runCmd(t, &RestoreCommand{}, "--from-jetstream", "--data", t.TempDir(), "--nats", d.natsURL, "--site", "elsewhere")
	if !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("restore of an empty site: %v", err)
	}
}

var _ replay.Source = (*ledger.Store)(nil)

// TestRestoreIntoAnotherSitesDir: a data dir restored as one site is not
// continued with another site's mirror, nor is one whose ledger of
// another site holds no event; the refusal names the sites.
func TestRestoreIntoAnotherSitesDir(t *testing.T) {
	ctx := context.Background()
	d := writeOfflineDay(t, true, 0)
	dir := t.TempDir()
	if _, err := runCmd(t, &RestoreCommand{}, "--from-jetstream", "--data", dir, "--nats", d.natsURL, "--site", replaytest.Site); err != nil {
		t.Fatal(err)
	}
	// Another site's events in the same stream.
	nc, js, err := ledger.Connect(ctx, d.natsURL, "test-other", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := ledger.EnsureStreams(ctx, js, "other", 1); err != nil {
		t.Fatal(err)
	}
	other, err := ledger.Open(filepath.Join(t.TempDir(), "ledger.db"), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.Append(ctx, ledger.Event{Type: ledger.TypeCallSignal, Data: ledger.CallSignal{CallID: "c-1", Extension: "3420", Type: ledger.SignalRinging}}); err != nil {
		t.Fatal(err)
	}
	ob := ledger.NewOutbox(other, js, "other", nil)
	octx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- ob.Run(octx) }()
	for deadline := time.Now().Add(30 * time.Second); ob.Confirmed() < 1; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the other site's event was not mirrored")
		}
	}
	cancel()
	<-done

	_, err = runCmd(t, &RestoreCommand{}, "--from-jetstream", "--data", dir, "--nats", d.natsURL, "--site", "other")
	if !errors.Is(err, ledger.ErrConflict) || !strings.Contains(err.Error(), "the data dir is site "+replaytest.Site+", not other") {
		t.Fatalf("restore of another site into a dir: %v", err)
	}

	// A ledger of another site that holds no event yet (a server started
	// and stopped) is not taken over either.
	empty := t.TempDir()
	st, err := ledger.Open(filepath.Join(empty, LedgerFile), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = st.ClaimSite(ctx, replaytest.Site)
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	_, err = runCmd(t, &RestoreCommand{}, "--from-jetstream", "--data", empty, "--nats", d.natsURL, "--site", "other")
	if !errors.Is(err, ledger.ErrConflict) || !strings.Contains(err.Error(), "ledger of site") {
		t.Fatalf("restore of another site into a dir with no event: %v", err)
	}
}

// A restore killed part way, from a mirror on another NATS (the data dir
// has no mirror of its own to show the dir is short): serve refused
// nothing, and its next event took a seq the mirror already gave
// another (a crash walk). The dir is marked until the restore finishes:

// TestRestoreStopsAtANewerBuildsEvents: a mirror holding events of a
// newer build's version is restored up to them, and restore says to
// finish with that build, not to run it again (a walk's operator went
// round restore, verify and serve, each naming the next).
func TestRestoreStopsAtANewerBuildsEvents(t *testing.T) {
	d := writeOfflineDay(t, true, 0)
	mirrorNext(t, d, func(newer *ledger.Envelope) {
		newer.Version = ledger.CurrentVersion + 1
		newer.ID = ulid.MustNew(newer.ID.Time()+1, bytes.NewReader(make([]byte, 16)))
	})
	dir := t.TempDir()
	for range 2 {
		_, err := runCmd(t, &RestoreCommand{}, "--from-jetstream", "--data", dir, "--nats", d.natsURL, "--site", replaytest.Site)
		if !errors.Is(err, ledger.ErrUnknownVersion) || !strings.Contains(err.Error(), "restore with that build") || strings.Contains(err.Error(), "run it again") {
			t.Fatalf("restore of a mirror with a newer build's event: %v", err)
		}
	}
	// The events before it are kept, for that build's restore to continue.
	if head, err := ledgerHead(filepath.Join(dir, LedgerFile)); err != nil || head != d.seq {
		t.Errorf("restored up to seq %d (%v), want the %d events before the newer one", head, err, d.seq)
	}
	// And marked unfinished: serve refuses the dir until a restore
	// completes it.
	st, err := ledger.Open(filepath.Join(dir, LedgerFile), ledger.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if unfinished, err := st.Restoring(t.Context()); err != nil || !unfinished {
		t.Errorf("a restore stopped at a newer build's event: marked unfinished %v (%v)", unfinished, err)
	}
}

// A mirror holding an event of a newer build is replayed up to the event
// before it, and the error says so: this build's failure, not damage.
func TestReplayStopsAtANewerBuildsEvent(t *testing.T) {
	d := writeOfflineDay(t, true, 0)
	mirrorNext(t, d, func(newer *ledger.Envelope) {
		newer.Version = ledger.CurrentVersion + 1
		newer.ID = ulid.MustNew(newer.ID.Time()+1, bytes.NewReader(make([]byte, 16)))
	})
	_, err := runCmd(t, &ReplayCommand{}, "--source", "jetstream", "--digest", "--nats", d.natsURL, "--site", replaytest.Site)
	if !errors.Is(err, ledger.ErrUnknownVersion) || !strings.Contains(err.Error(), fmt.Sprintf("replay: after seq %d: ", d.seq)) || strings.Contains(err.Error(), "damaged") {
		t.Fatalf("replay of a mirror with a newer build's event: %v", err)
	}
}

// Every replay lets go of the ledger file when it is done, whether it read
// the ledger, read a mirror beside it, or refused it (its last event
// unreadable, or one before it: pauses then fails as replay does): a serve
// started next takes the file at once.
func TestReplayLetsGoOfTheLedger(t *testing.T) {
	d := writeOfflineDay(t, true, 0)
	lastGarbled := writeOfflineDay(t, false, 0)
	garbleEvent(t, lastGarbled.dir, lastGarbled.seq)
	changed := writeOfflineDay(t, false, 0)
	tamperPause(t, changed.dir, 7)
	for _, c := range []struct {
		cmd interface {
			Run(context.Context, []string) error
		}
		dir     string
		args    []string
		damaged bool
	}{
		{&ReplayCommand{Stderr: devNull(t)}, d.dir, []string{"--digest"}, false},
		{&ReplayCommand{Stderr: devNull(t)}, d.dir, []string{"--source", "jetstream", "--nats", d.natsURL, "--site", replaytest.Site, "--digest"}, false},
		{&ReplayCommand{Stderr: devNull(t)}, lastGarbled.dir, []string{"--digest"}, true},
		{&PausesCommand{Stderr: devNull(t)}, changed.dir, nil, true},
	} {
		_, err := runCmd(t, c.cmd, append([]string{"--data", c.dir}, c.args...)...)
		if c.damaged != errors.Is(err, ledger.ErrCorrupt) || (!c.damaged && err != nil) {
			t.Errorf("%T %v of %s: %v", c.cmd, c.args, c.dir, err)
		}
		st, err := ledger.Open(filepath.Join(c.dir, LedgerFile), ledger.Options{})
		if err != nil {
			t.Fatalf("after %T %v, the ledger cannot be opened for writing: %v", c.cmd, c.args, err)
		}
		st.Close()
	}
}

// A replay refused after it connected to the mirror (one that holds no
// events of the site) closes its connection before it returns: a script
// that retries it would pile up connections on the NATS server.
func TestARefusedReplayClosesItsMirrorConnection(t *testing.T) {
	js := ledgertest.StartJetStream(t, replaytest.Site)
	d := writeOfflineDay(t, false, 0)
	before := js.Server.NumClients() // the helper's own
	_, err := runCmd(t, &ReplayCommand{Stderr: devNull(t)}, "--data", d.dir, "--source", "jetstream", "--nats", js.URL(), "--site", replaytest.Site, "--digest")
	if !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("replay of an empty mirror: %v", err)
	}
	for deadline := time.Now().Add(30 * time.Second); js.Server.NumClients() > before; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the refused replay left %d connections open", js.Server.NumClients()-before)
		}
	}
}

// serve refuses it, verify says so, and restore run again completes it.
func TestUnfinishedRestoreIsNotServed(t *testing.T) {
	d := writeOfflineDay(t, true, 0)
	src, err := openLedgerReadOnly(d.dir)
	if err != nil {
		t.Fatal(err)
	}
	var first []ledger.Envelope
	err = src.Scan(t.Context(), 0, func(e ledger.Envelope) error {
		if e.Seq <= 10 {
			first = append(first, e)
		}
		return nil
	})
	src.Close()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	dst, err := ledger.Open(filepath.Join(dir, LedgerFile), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := dst.ClaimSite(t.Context(), replaytest.Site); err != nil {
		t.Fatal(err)
	}
	if err := dst.SetRestoring(t.Context(), true); err != nil { // as restore marks it before copying
		t.Fatal(err)
	}
	if err := dst.Import(t.Context(), first); err != nil {
		t.Fatal(err)
	}
	dst.Close()

	cfg := testServeConfig(dir)
	cfg.Site = replaytest.Site
	if srv, err := StartServer(t.Context(), cfg); err == nil {
		srv.Stop()
		_ = srv.Wait()
		t.Fatal("served the dir of an unfinished restore")
	} else if !errors.Is(err, ledger.ErrConflict) || !strings.Contains(err.Error(), "a restore into it did not finish") {
		t.Fatalf("serve: %v", err)
	}
	out, err := runCmd(t, &VerifyCommand{}, "--data", dir, "--nats", d.natsURL, "--site", replaytest.Site)
	if !errors.Is(err, ledger.ErrConflict) || !strings.Contains(out, "restore    UNFINISHED") {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	out, err = runCmd(t, &RestoreCommand{}, "--from-jetstream", "--data", dir, "--nats", d.natsURL, "--site", replaytest.Site)
	if err != nil || !strings.Contains(out, d.digest) {
		t.Fatalf("restore again: %v\n%s", err, out)
	}
	if out, err := runCmd(t, &VerifyCommand{}, "--data", dir, "--nats", d.natsURL, "--site", replaytest.Site); err != nil {
		t.Fatalf("verify after: %v\n%s", err, out)
	}
	srv, err := StartServer(t.Context(), cfg)
	if err != nil {
		t.Fatalf("serve after the restore finished: %v", err)
	}
	srv.Stop()
	_ = srv.Wait()
}

// A mirror with an event missing is replayed up to the gap and the error
// says the mirror is damaged, not the ledger, and what to do; a mirror
// replayed beside another ledger's data dir says they differ.
func TestReplayOfADamagedMirrorSaysSo(t *testing.T) {
	d := writeOfflineDay(t, true, 0)
	other := writeOfflineDay(t, false, 0) // the same day, its own ids and hashes
	notice, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer notice.Close()
	if _, err := runCmd(t, &ReplayCommand{Stderr: notice}, "--source", "jetstream", "--digest", "--nats", d.natsURL, "--site", replaytest.Site, "--data", other.dir); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(notice.Name()); !strings.Contains(string(b), "is not the ledger in "+other.dir+": their events differ at or before seq "+fmt.Sprint(d.seq)) {
		t.Errorf("no word that the mirror is another ledger's: %q", b)
	}
	// Another ledger longer than the mirror: still another ledger's, not
	// the same one with the mirror behind it.
	st, err := ledger.Open(filepath.Join(other.dir, LedgerFile), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.Append(t.Context(), ledger.Event{Type: ledger.TypeCommand, Data: ledger.Command{Command: "tag", SenderID: "someone"}})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	_, notes, err := replayNotes(t, "--source", "jetstream", "--digest", "--nats", d.natsURL, "--site", replaytest.Site, "--data", other.dir)
	if err != nil || !strings.Contains(notes, "is not the ledger in "+other.dir) || strings.Contains(notes, "the mirror is behind") {
		t.Errorf("replay of another ledger's mirror, shorter than the dir's: %v\n%s", err, notes)
	}

	stream, err := d.js.Stream(t.Context(), ledger.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.DeleteMsg(t.Context(), 5); err != nil {
		t.Fatal(err)
	}
	_, err = runCmd(t, &ReplayCommand{}, "--source", "jetstream", "--digest", "--nats", d.natsURL, "--site", replaytest.Site)
	if !errors.Is(err, ledger.ErrChainBroken) || !strings.Contains(err.Error(), "after seq 4") || !strings.Contains(err.Error(), "the mirror's events are damaged or missing") {
		t.Fatalf("replay of a mirror with a gap: %v", err)
	}
}

// A mirror replayed for a data dir is read under the site its ledger
// records, unless --site names another, which is said; the mirror holds
// no checkpoint, which --from-checkpoint is told; an unknown --source is
// refused.
func TestReplayOfAMirrorTakesTheDataDirsSite(t *testing.T) {
	t.Setenv("RECLEDGER_SITE", "")
	d := writeOfflineDay(t, true, 0)
	want := fmt.Sprintf("%d %s\n", d.seq, d.digest)
	store, err := ledger.Open(filepath.Join(d.dir, LedgerFile), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = store.ClaimSite(t.Context(), replaytest.Site) // as serve does
	store.Close()
	if err != nil {
		t.Fatal(err)
	}
	notice, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer notice.Close()
	out, err := runCmd(t, &ReplayCommand{Stderr: notice}, "--source", "jetstream", "--nats", d.natsURL, "--data", d.dir, "--digest", "--from-checkpoint")
	if err != nil || out != want {
		t.Fatalf("replay of the mirror of %s, its site unnamed: %v %q, want %q", d.dir, err, out, want)
	}
	if b, _ := os.ReadFile(notice.Name()); !strings.Contains(string(b), "--from-checkpoint: the mirror holds no checkpoint; replaying from seq 1") {
		t.Errorf("no word that the mirror holds no checkpoint: %q", b)
	}
	_, err = runCmd(t, &ReplayCommand{Stderr: notice}, "--source", "jetstream", "--nats", d.natsURL, "--data", d.dir, "--site", "elsewhere", "--digest")
	if !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("replay of another site's mirror: %v", err)
	}
	if b, _ := os.ReadFile(notice.Name()); !strings.Contains(string(b), d.dir+" was served as site "+replaytest.Site+"; replaying the mirror of site elsewhere, as asked") {
		t.Errorf("no word that the site asked for is not the dir's: %q", b)
	}
	if _, err := runCmd(t, &ReplayCommand{}, "--data", d.dir, "--source", "nats"); !errors.Is(err, ledger.ErrInvalid) {
		t.Errorf("--source nats: %v", err)
	}
}

// mirrorNext publishes to d's mirror an event after its last: a copy of
// the last, seq+1, changed by change (which sees the last's id), and
// sealed on the last's hash, as a ledger would have.
func mirrorNext(t *testing.T, d *offlineDay, change func(next *ledger.Envelope)) {
	t.Helper()
	src, err := openLedgerReadOnly(d.dir)
	if err != nil {
		t.Fatal(err)
	}
	last, err := src.Get(t.Context(), d.seq)
	src.Close()
	if err != nil {
		t.Fatal(err)
	}
	next := last
	next.Seq, next.Raw = last.Seq+1, nil
	change(&next)
	raw, err := next.Seal(last.Hash)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(d.natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := js.PublishMsg(t.Context(), &nats.Msg{Subject: ledger.EventSubject(replaytest.Site, next.Type), Data: raw,
		Header: nats.Header{"Nats-Msg-Id": []string{next.ID.String()}}}); err != nil {
		t.Fatal(err)
	}
}
