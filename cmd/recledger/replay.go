package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/projections"
	"github.com/recledger/recledger/replay"
)

// defaultNATSURL is where the offline commands find JetStream by default:
// the embedded server of a local `serve`.
const defaultNATSURL = "nats://" + ledger.DefaultNATSListen

// Replay sources.
const (
	sourceBolt      = "bbolt"
	sourceJetStream = "jetstream"
)

// ReplayCommand is the `replay` subcommand: rebuild the projections from the
// ledger (bbolt or the JetStream mirror), optionally up to a point, with a
// trace of what each event changed, and print a summary or the digest.
type ReplayCommand struct {
	Out    io.Writer // results; os.Stdout when nil
	Stderr *os.File  // flag errors and the progress bar (terminal only); os.Stderr when nil
	// MirrorWait bounds the wait for a running server's mirror to hold
	// the server's head; 0 means mirrorCatchUp.
	MirrorWait time.Duration
}

// replaySummary is what `replay` prints without --trace or --digest.
type replaySummary struct {
	Seq            uint64   `json:"seq"`
	LastID         string   `json:"last_id,omitempty"`
	LastTime       string   `json:"last_time,omitempty"`
	Replayed       uint64   `json:"replayed"`
	FromCheckpoint uint64   `json:"from_checkpoint"`
	Users          int      `json:"users"`
	LoggedIn       int      `json:"logged_in"`
	ActiveCalls    int      `json:"active_calls"`
	Contacts       int      `json:"contacts"`
	OpenContacts   int      `json:"open_contacts"`
	Pauses         int      `json:"pauses"`
	OpenPauses     int      `json:"open_pauses"`
	SealedDays     []string `json:"sealed_days"`
	Digest         string   `json:"digest"`
}

// digestView is GET /v1/digest's body.
type digestView struct {
	Digest string `json:"digest"` // in GET /v1/digest's order: the same bytes
	Seq    uint64 `json:"seq"`
}

// replayArgs are replay's flags, parsed.
type replayArgs struct {
	data, source, natsURL, site, untilS, user, token string
	trace, digest, asJSON, fromCheckpoint            bool
	// Given on the command line (not their defaults).
	sourceGiven, natsGiven, siteGiven bool
	until                             replay.Until
}

// natsNamed reports whether --nats or RECLEDGER_NATS names the mirror.
func (a *replayArgs) natsNamed() bool { return a.natsGiven || os.Getenv("RECLEDGER_NATS") != "" }

// siteNamed reports whether --site or RECLEDGER_SITE names the site.
func (a *replayArgs) siteNamed() bool { return a.siteGiven || os.Getenv("RECLEDGER_SITE") != "" }

// parse reads replay's flags and checks how they combine.
func (c *ReplayCommand) parse(args []string, stderr *os.File) (*replayArgs, error) {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := dataFlag(fs)
	source := fs.String("source", sourceBolt, "where to read the ledger: bbolt (DIR/"+LedgerFile+", read-only; while a server runs on DIR and --source is not given, its JetStream mirror) or jetstream")
	natsURL := fs.String("nats", os.Getenv("RECLEDGER_NATS"), "NATS URL(s) for --source jetstream (env RECLEDGER_NATS; default: the mirror of the server running on DIR, as DIR/serving.json names it, else "+defaultNATSURL+")")
	site := siteFlag(fs)
	untilS := fs.String("until", "", "stop after the last event with seq ≤ SEQ, id ≤ ULID or time ≤ RFC 3339 time")
	user := fs.String("user", "", "trace only the events that touched this user id, and end with its state (implies --trace; with --json, its state alone, as GET /v1/agents/{id} answered then)")
	trace := fs.Bool("trace", false, "print each event with the state change it caused")
	digest := fs.Bool("digest", false, "print the projections' digest, as GET /v1/digest")
	asJSON := fs.Bool("json", false, "print JSON")
	fromCheckpoint := fs.Bool("from-checkpoint", false, "start from the ledger's newest checkpoint and replay only the events after it: fast, but the state up to it is the checkpoint's, not rebuilt (bbolt only; not with --until or --trace)")
	token := tokenFlag(fs, "the NATS server it reads the mirror from, and the HTTP API of a server running on --data")
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	a := &replayArgs{data: *data, source: *source, natsURL: *natsURL, site: *site, untilS: *untilS, user: *user, token: *token,
		trace: *trace, digest: *digest, asJSON: *asJSON, fromCheckpoint: *fromCheckpoint}
	fs.Visit(func(f *flag.Flag) {
		a.sourceGiven = a.sourceGiven || f.Name == "source"
		a.natsGiven = a.natsGiven || f.Name == "nats"
		a.siteGiven = a.siteGiven || f.Name == "site"
	})
	var err error
	if a.until, err = replay.ParseUntil(a.untilS); err != nil {
		return nil, fmt.Errorf("replay: --until: %w", err)
	}
	if a.user != "" && !a.asJSON {
		a.trace = true
	}
	// What --json prints is JSON alone, one object (a trace and a digest
	// together put text before the JSON: a walk's jq failed on it).
	if a.trace && a.asJSON {
		return nil, fmt.Errorf("replay: %w: --json prints the summary, --digest or, with --user and no --trace, the agent's state as JSON; a trace is text (docs/replay.md)", ledger.ErrInvalid)
	}
	if a.user != "" && a.asJSON && a.digest {
		return nil, fmt.Errorf("replay: %w: with --json, --user prints the agent's state and --digest the digest: ask for one of them", ledger.ErrInvalid)
	}
	if a.fromCheckpoint && (!a.until.IsZero() || a.trace) {
		return nil, fmt.Errorf("replay: %w: --from-checkpoint starts at the present; a bounded replay or a trace needs the history from seq 1", ledger.ErrInvalid)
	}
	return a, nil
}

// Run parses args and replays.
func (c *ReplayCommand) Run(ctx context.Context, args []string) error {
	out, stderr := outOr(c.Out), stderrOr(c.Stderr)
	a, err := c.parse(args, stderr)
	if err != nil {
		return err
	}
	opts := replay.Options{Until: a.until, User: a.user}
	if a.trace {
		opts.Trace = out
	}
	rs, err := c.openSource(ctx, a, &opts, stderr)
	if err != nil {
		return err
	}
	defer rs.close()

	var from uint64
	if opts.From != nil {
		from = opts.From.Seq()
	}
	p := replay.NewProgress(nil, 0, 0)
	if !a.trace {
		p = replay.NewProgress(stderr, from, rs.head)
		opts.Progress = p.Update
	}
	st, stats, err := replay.Run(ctx, rs.src, opts)
	p.Finish() // cleared before anything is written
	if err != nil {
		return replayFailed(err, stats, a.source)
	}
	if stats.Events == 0 && st.Seq() > 0 {
		// Started from a checkpoint at the head: the last event is the
		// checkpoint's, read from the ledger for the summary.
		if g, ok := rs.src.(interface {
			Get(context.Context, uint64) (ledger.Envelope, error)
		}); ok {
			if last, err := g.Get(ctx, st.Seq()); err == nil {
				stats.Last = last
			}
		}
	}
	if rs.beside != nil && stats.Last.Seq > 0 {
		if err := checkBeside(ctx, a, *rs.beside, stats.Last, stderr); err != nil {
			return err
		}
		if p := serverChainProblem(ctx, *rs.beside); p != "" {
			// The mirror read checked out; the server's own file did not
			// (a walk's replay beside such a server said nothing of it).
			fmt.Fprintf(stderr, "replay: note: the server's ledger reports a broken chain (its /readyz chain_problem: %s); the mirror replayed holds the events as they were published (docs/replay.md, \"Verify and restore\")\n", p)
		}
	}
	if a.source == sourceJetStream && rs.beside == nil && stats.Last.Seq > 0 {
		noteOtherLedger(ctx, a, rs.head, stats.Last, stderr)
	}
	noteUntil(a, rs.head, st, stats, stderr)
	return a.print(ctx, st, stats, from, out)
}

// noteOtherLedger says on stderr when the mirror read is not the ledger
// of the data dir: its last event is not the ledger's at that seq. A
// mirror named by --nats beside another dir's --data was replayed with
// no word of it (a walk). It says too when the mirror, whose head is
// mirrored, ends before the ledger and the replay read to its end: the
// state is older than the ledger's (a walk's replay of a stale mirror
// said nothing, where verify said BEHIND). Nothing is said when the dir
// holds no ledger.
func noteOtherLedger(ctx context.Context, a *replayArgs, mirrored uint64, last ledger.Envelope, stderr io.Writer) {
	store, err := openLedgerReadOnly(a.data)
	if err != nil {
		return
	}
	defer store.Close()
	mine, err := store.Get(ctx, last.Seq)
	head, _ := store.Head()
	switch {
	case err == nil && mine.Hash == last.Hash && last.Seq == mirrored && head > mirrored:
		fmt.Fprintf(stderr, "replay: note: the mirror read (%s, site %s) ends at seq %d, and the ledger in %s holds seq %d: the state is seq %d's, older than the ledger's (the mirror is behind; `recledger replay --source bbolt` reads the ledger, and the next serve refills the mirror)\n",
			ledger.StripURLCredentials(a.natsURL), a.site, last.Seq, a.data, head, last.Seq)
	case errors.Is(err, ledger.ErrNotFound):
		fmt.Fprintf(stderr, "replay: note: the mirror read (%s, site %s) holds seq %d, which the ledger in %s does not: it is another ledger's, or this one lost its tail (`recledger verify` compares them)\n",
			ledger.StripURLCredentials(a.natsURL), a.site, last.Seq, a.data)
	case err != nil:
	case mine.Hash != last.Hash:
		fmt.Fprintf(stderr, "replay: note: the mirror read (%s, site %s) is not the ledger in %s: their events differ at or before seq %d (`recledger verify` names the first)\n",
			ledger.StripURLCredentials(a.natsURL), a.site, a.data, last.Seq)
	}
}

// replayFailed is the error of a replay that stopped at an event, saying
// what to do when the events read were damaged.
func replayFailed(err error, stats replay.Stats, source string) error {
	damaged := errors.Is(err, ledger.ErrCorrupt) || errors.Is(err, ledger.ErrChainBroken)
	switch {
	case damaged && source == sourceJetStream:
		// The mirror read is damaged, not necessarily the ledger (a
		// crash walk's mirror lost a block; its ledger was whole).
		return fmt.Errorf("replay: after seq %d: %w (the mirror's events are damaged or missing: `recledger verify` "+
			"compares it with the ledger; a mirror is refilled from the ledger by deleting the stream, or the embedded "+
			"server's jetstream/ dir while the server is stopped: docs/replay.md, \"Verify and restore\")", stats.Last.Seq, err)
	case damaged:
		return fmt.Errorf("replay: after seq %d: %w (the ledger's stored events were changed or damaged: "+
			"`recledger verify` names the first; docs/replay.md, \"Verify and restore\", says what to do)", stats.Last.Seq, err)
	}
	return fmt.Errorf("replay: after seq %d: %w", stats.Last.Seq, err)
}

// checkBeside checks that the mirror read is the ledger of the server
// running beside: equal hashes at an equal seq mean equal histories.
// --nats or RECLEDGER_NATS may name another node's.
func checkBeside(ctx context.Context, a *replayArgs, beside servingInfo, last ledger.Envelope, stderr io.Writer) error {
	switch h, err := serverHash(ctx, beside, a.token, last.Seq); {
	case errors.Is(err, ledger.ErrNotFound):
		return fmt.Errorf("replay: %w: the mirror read (%s, site %s) holds seq %d, which the server on %s does not: it is another ledger's",
			ledger.ErrMismatch, ledger.StripURLCredentials(a.natsURL), a.site, last.Seq, a.data)
	case err != nil:
		fmt.Fprintf(stderr, "replay: could not check the mirror against the server's ledger: %v\n", err)
	case h != last.Hash:
		return fmt.Errorf("replay: %w: the mirror read (%s, site %s) is not the ledger of the server on %s: %s",
			ledger.ErrMismatch, ledger.StripURLCredentials(a.natsURL), a.site, a.data, copiesDiffer(last.Seq, last.Hash, h))
	}
	return nil
}

// noteUntil says on stderr when --until lies outside the ledger, or the
// user traced is named by no event.
func noteUntil(a *replayArgs, head uint64, st *projections.State, stats replay.Stats, stderr io.Writer) {
	until := a.until
	if n, ok := until.Seq(); ok && n > head {
		fmt.Fprintf(stderr, "replay: --until %d is beyond the ledger's head, seq %d: the state is the head's\n", n, head)
	} else if !ok && !until.IsZero() && head > 0 && stats.Last.Seq == head && until.Beyond(&stats.Last) {
		fmt.Fprintf(stderr, "replay: --until %s is after the ledger's last event (seq %d, %s): the state is the head's\n", a.untilS, head, stats.Last.Time)
	}
	if !until.IsZero() && st.Seq() == 0 && head > 0 {
		fmt.Fprintf(stderr, "replay: --until %s comes before the ledger's first event: the state is empty\n", a.untilS)
	}
	if a.user != "" {
		if _, err := st.Agent(a.user); errors.Is(err, ledger.ErrNotFound) {
			for _, ag := range st.Agents() {
				if strings.EqualFold(ag.UserID, a.user) {
					// As GET /v1/agents/{id} says it (an engineer's
					// walk traced ALICE for alice).
					fmt.Fprintf(stderr, "replay: user ids are case-sensitive: agent %q differs from %q only in case\n", ag.UserID, a.user)
					break
				}
			}
		}
	}
	if a.user != "" && a.trace && stats.TracedUser == 0 {
		// (Counted while tracing: with --json alone the state says it.)
		fmt.Fprintf(stderr, "replay: no event names user %q (lines above, if any, change what every user's rules read)\n", a.user)
	}
}

// print writes what was asked for after the replay: the user's state,
// the digest, or the summary (a trace was written as it went).
func (a *replayArgs) print(ctx context.Context, st *projections.State, stats replay.Stats, from uint64, out io.Writer) error {
	if a.user != "" {
		// The question a trace of a user ends on: where was the agent
		// then (docs/replay.md, "Agent state at 14:02").
		at, err := replay.Agent(st, a.user, stats.Last)
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		if !a.trace {
			return writeJSONLine(out, at)
		}
		if _, err := fmt.Fprintln(out, replay.AgentLine(a.user, at)); err != nil {
			return err
		}
	}
	switch {
	case a.digest:
		if a.asJSON {
			return writeJSONLine(out, digestView{Digest: st.Digest(), Seq: st.Seq()})
		}
		_, err := fmt.Fprintf(out, "%d %s\n", st.Seq(), st.Digest())
		return err
	case a.trace:
		return nil
	}
	sum, err := summarize(ctx, st, stats, from)
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	if a.asJSON {
		return writeJSONLine(out, sum)
	}
	return writeSummary(out, sum)
}

// summarize counts what the state holds (reading its sealed history).
func summarize(ctx context.Context, st *projections.State, stats replay.Stats, from uint64) (replaySummary, error) {
	s := replaySummary{Seq: st.Seq(), Replayed: stats.Events, FromCheckpoint: from, SealedDays: st.SealedDays(), Digest: st.Digest()}
	if stats.Last.Seq > 0 {
		s.LastID, s.LastTime = stats.Last.ID.String(), stats.Last.Time.String()
	}
	cfg := st.Config()
	s.Users = len(cfg.Users)
	for id := range cfg.Users {
		if a, err := st.Agent(id); err == nil {
			if a.LoggedIn {
				s.LoggedIn++
			}
			s.ActiveCalls += len(a.ActiveCalls)
		}
	}
	cts, err := st.Contacts(ctx, ledger.ContactQuery{})
	if err != nil {
		return s, err
	}
	for _, ct := range cts {
		s.Contacts++
		if ct.Disposition == nil {
			s.OpenContacts++
		}
	}
	ps, err := st.Pauses(ctx, ledger.PauseQuery{})
	if err != nil {
		return s, err
	}
	for _, p := range ps {
		s.Pauses++
		if p.End.IsZero() {
			s.OpenPauses++
		}
	}
	return s, nil
}

func writeSummary(w io.Writer, s replaySummary) error {
	last := ""
	if s.LastID != "" {
		last = fmt.Sprintf(" (last %s at %s)", s.LastID, s.LastTime)
	}
	cp := "from seq 1"
	if s.FromCheckpoint > 0 {
		cp = fmt.Sprintf("from checkpoint at seq %d, the state up to it the checkpoint's", s.FromCheckpoint)
	}
	days := strings.Join(s.SealedDays, " ")
	if days == "" {
		days = "none"
	}
	_, err := fmt.Fprintf(w, "events       %d%s\n"+
		"replayed     %d (%s)\n"+
		"agents       %d configured, %d logged in, %d active calls\n"+
		"contacts     %d (%d open)\n"+
		"pauses       %d (%d open)\n"+
		"sealed days  %d: %s\n"+
		"digest       %s\n",
		s.Seq, last, s.Replayed, cp, s.Users, s.LoggedIn, s.ActiveCalls,
		s.Contacts, s.OpenContacts, s.Pauses, s.OpenPauses, len(s.SealedDays), days, s.Digest)
	return err
}

func outOr(w io.Writer) io.Writer {
	if w == nil {
		return os.Stdout
	}
	return w
}

func stderrOr(f *os.File) *os.File {
	if f == nil {
		return os.Stderr
	}
	return f
}

// openLedgerReadOnly opens DIR/ledger.db without taking the writer's lock.
// bbolt's writer holds an exclusive lock, so this fails while `serve` runs
// on DIR: the error says so and points to the JetStream mirror.
func openLedgerReadOnly(dir string) (*ledger.Store, error) {
	path := filepath.Join(dir, LedgerFile)
	fi, err := os.Stat(path)
	// A dir with its own mirror and no ledger in it lost its ledger file:
	// say how to rebuild it (a walk read "not found" alone).
	rebuild := ""
	if isDir(filepath.Join(dir, JetStreamDir)) {
		rebuild = fmt.Sprintf("; its mirror is in %s: rebuild the ledger from it with recledger restore --from-jetstream --data %s --site NAME (docs/replay.md)",
			filepath.Join(dir, JetStreamDir), dir)
	}
	if err != nil {
		return nil, fmt.Errorf("no ledger at %s: %w%s", path, ledger.ErrNotFound, rebuild)
	}
	if fi.Size() == 0 {
		if rebuild == "" {
			rebuild = "; rebuild it with recledger restore --from-jetstream (docs/replay.md)"
		}
		return nil, fmt.Errorf("%w: %s is empty (0 bytes): its ledger was lost%s", ledger.ErrNotFound, path, rebuild)
	}
	st, err := ledger.Open(path, ledger.Options{ReadOnly: true})
	if errors.Is(err, ledger.ErrLocked) {
		if info, ok := readServing(dir); ok {
			return nil, fmt.Errorf("%s is held by the server running on it (pid %d): ask it over HTTP (%s), "+
				"replay its JetStream mirror (recledger replay --source jetstream --nats %s --site %s) or stop it: %w",
				path, info.PID, info.HTTP, info.NATS, info.Site, err)
		}
		return nil, fmt.Errorf("%s is locked, probably by a running `recledger serve`: "+
			"stop it, or replay the JetStream mirror (recledger replay --source jetstream): %w", path, err)
	}
	return st, err
}

// openLedgerToRead is openLedgerReadOnly for a command that answers from
// the events (replay, pauses, manifest): a ledger found damaged as it was
// opened (its last event unreadable, or events lost before a checkpoint's
// seq) is refused, since it would answer for the events it can read as if
// they were all (a walk: replay --digest of 1,842 events of 2,182, exit 0).
func openLedgerToRead(dir string) (*ledger.Store, error) {
	store, err := openLedgerReadOnly(dir)
	if err != nil {
		return nil, err
	}
	if err := store.Damaged(); err != nil {
		store.Close()
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, LedgerFile), err)
	}
	return store, nil
}

// loadLedgerState opens DIR's ledger read-only and rebuilds the projections
// from the newest checkpoint and the tail (from scratch when there is
// none), with a progress bar on a terminal.
//
// The state reads its sealed history from the store: the caller closes the
// store when done with the state.
func loadLedgerState(ctx context.Context, dir string, stderr *os.File) (*projections.State, *ledger.Store, error) {
	store, err := openLedgerToRead(dir)
	if err != nil {
		return nil, nil, err
	}
	from := replay.FromCheckpoint(ctx, store)
	var after uint64
	if from != nil {
		after = from.Seq()
	}
	head, _ := store.Head()
	p := replay.NewProgress(stderr, after, head)
	defer p.Finish()
	st, stats, err := replay.Run(ctx, store, replay.Options{From: from, Progress: p.Update})
	if err != nil {
		store.Close()
		return nil, nil, fmt.Errorf("replay after seq %d: %w", stats.Last.Seq, err)
	}
	return st, store, nil
}

// writeJSONLine writes v as one line of JSON.
func writeJSONLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// errOtherSite is replay's refusal of a mirror that holds no events of
// site beside a server of the data dir data that serves the site served.
func errOtherSite(natsURL, site, data, served string) error {
	return fmt.Errorf("replay: %w: the mirror at %s holds no events of site %s, and the server on %s serves site %s (is --site the server's?)",
		ledger.ErrNotFound, ledger.StripURLCredentials(natsURL), site, data, served)
}
