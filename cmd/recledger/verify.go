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
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/replay"
)

// VerifyCommand is the `verify` subcommand: check the bbolt hash chain, the
// sections of the newest checkpoint and, with --nats, that the JetStream
// mirror holds the same events. It names the first difference and fails
// (exit status 1) when a check does not pass.
type VerifyCommand struct {
	Out    io.Writer // results; os.Stdout when nil
	Stderr *os.File  // flag errors; os.Stderr when nil
}

// verifyResult is what `verify --json` prints.
type verifyResult struct {
	OK    bool                `json:"ok"`
	Chain ledger.VerifyReport `json:"chain"`
	// File is the check of the stopped ledger file's pages
	// (ledger.CheckPages): damage the chain, which reads only the events,
	// cannot see, and which a write could make worse.
	File      *ledger.FileReport   `json:"file,omitempty"`
	JetStream *ledger.VerifyReport `json:"jetstream,omitempty"`
	// JetStreamSkipped says why no mirror was compared.
	JetStreamSkipped string          `json:"jetstream_skipped,omitempty"`
	Sections         *sectionsReport `json:"sections,omitempty"`
	// Checkpoint compares the newest checkpoint's state with the state
	// its events give, rebuilt from seq 1.
	Checkpoint *checkpointReport `json:"checkpoint,omitempty"`
	// RestoreUnfinished: a restore began filling the file and did not
	// finish; it holds only the first events of a history.
	RestoreUnfinished bool `json:"restore_unfinished,omitempty"`
	// ServerDamage is, beside a running server, the damaged part of the
	// file a request met (its /readyz damage_problem): the chain and the
	// mirror may be whole while a sealed day's stored history is not.
	ServerDamage string `json:"server_damage,omitempty"`
	// Rebuild says how to rebuild a damaged ledger from the mirror,
	// when the mirror holds every event whole (JetStream.Restorable).
	Rebuild string `json:"rebuild,omitempty"`
	// Remirror says how to rebuild a damaged mirror from the ledger,
	// when the ledger is whole and the mirror's own events do not chain
	// (damaged or missing in the stream's store): the ledger is the
	// durable copy, and the outbox publishes it again into a new stream.
	Remirror string `json:"remirror,omitempty"`
}

// checkpointReport is the newest checkpoint checked against its events:
// the server starts from it without folding them again, so a head that
// was edited, or encoded wrong, would be served as if it were the ledger.
type checkpointReport struct {
	OK   bool `json:"ok"`
	None bool `json:"none,omitempty"` // no usable checkpoint of this build's version: nothing to check
	// Newer is set when the checkpoint was saved by a newer build (it
	// folded events of a version this build does not read): not checked,
	// and not damaged.
	Newer   string `json:"newer,omitempty"`
	Seq     uint64 `json:"seq,omitempty"`
	Digest  string `json:"digest,omitempty"`  // of the stored state
	Rebuilt string `json:"rebuilt,omitempty"` // of the state the events up to Seq give
	// Problem is set when the stored checkpoint cannot be used: its bytes
	// do not hash to the sum stored with them (damaged).
	Problem string `json:"problem,omitempty"`
	err     error  // Problem's error
}

// sectionsReport is the check of the newest checkpoint's sections: the
// sealed history the projections read back from the file.
type sectionsReport struct {
	OK         bool   `json:"ok"`
	Checkpoint uint64 `json:"checkpoint"` // its seq
	Sections   int    `json:"sections"`   // read and good
	Bytes      int64  `json:"bytes"`
	Problem    string `json:"problem,omitempty"`
}

// verifyArgs are verify's flags, parsed.
type verifyArgs struct {
	data, natsURL, site, token string
	asJSON                     bool
	siteGiven                  bool // by --site or RECLEDGER_SITE
}

// Run parses args and verifies.
func (c *VerifyCommand) Run(ctx context.Context, args []string) error {
	out, stderr := outOr(c.Out), stderrOr(c.Stderr)
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := dataFlag(fs)
	natsURL := fs.String("nats", os.Getenv("RECLEDGER_NATS"), "NATS URL(s): also compare with the JetStream mirror (env RECLEDGER_NATS)")
	site := siteFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	token := tokenFlag(fs, "the HTTP API and the NATS server of a server running on --data, and to the NATS server --nats names")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	a := &verifyArgs{data: *data, natsURL: *natsURL, site: *site, token: *token, asJSON: *asJSON, siteGiven: os.Getenv("RECLEDGER_SITE") != ""}
	fs.Visit(func(f *flag.Flag) { a.siteGiven = a.siteGiven || f.Name == "site" })

	store, err := openLedgerReadOnly(a.data)
	if info, held := heldByServer(a.data, err, "verify", stderr); held {
		fmt.Fprintln(stderr, "verify: the chain as the server checks it, and its mirror compared; the checkpoint (its sections, its state against the events) is checked only in a stopped server's data dir")
		if a.siteGiven && info.Site != "" && info.Site != a.site {
			// The server compares its own site's mirror: a walk's --site
			// of another site printed the served site's ok, unsaid.
			return fmt.Errorf("verify: --site %s: %w: %s is served as site %s, and verify beside a server checks the server's site; give --site %s, or stop the server to compare another site's mirror with this ledger",
				a.site, ledger.ErrInvalid, a.data, info.Site, info.Site)
		}
		if a.natsURL != "" {
			// serving.json holds the URL without its credentials: an
			// external NATS that wants them is named with --nats.
			info.NATS = a.natsURL
		}
		res, err := verifyBesideServer(ctx, info, a.token, mirrorCatchUp, stderr)
		if err != nil {
			return fmt.Errorf("verify: %w", err)
		}
		return writeVerify(out, res, a.asJSON, nil)
	}
	if err != nil {
		if a.asJSON {
			// Automation reads stdout: a file that cannot be opened is a
			// failed verify there too, not an empty line (a walk).
			_ = writeJSONLine(out, struct {
				OK    bool   `json:"ok"`
				Error string `json:"error"`
			}{false, err.Error()})
		}
		return fmt.Errorf("verify: %w", err)
	}
	defer store.Close()
	res, secErr, err := checkStopped(ctx, store)
	if err != nil {
		return err
	}
	file, err := ledger.CheckPages(ctx, filepath.Join(a.data, LedgerFile))
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	res.File, res.OK = &file, res.OK && file.OK
	if err := a.compareMirror(ctx, store, &res, stderr); err != nil {
		return err
	}
	return writeVerify(out, res, a.asJSON, secErr)
}

// checkStopped checks a stopped server's ledger: its chain, its file's
// pages, an unfinished restore, and the newest checkpoint (its sections,
// and its state against the state its events give). secErr is the
// sections' finding.
func checkStopped(ctx context.Context, store *ledger.Store) (res verifyResult, secErr error, err error) {
	if res.Chain, err = store.Verify(ctx); err != nil {
		return res, nil, fmt.Errorf("verify: %w", err)
	}
	res.OK = res.Chain.OK
	if res.RestoreUnfinished, err = store.Restoring(ctx); err != nil {
		return res, nil, fmt.Errorf("verify: %w", err)
	}
	res.OK = res.OK && !res.RestoreUnfinished
	st, err := replay.CheckpointState(ctx, store)
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		res.Checkpoint = &checkpointReport{OK: true, None: true}
		return res, nil, nil
	case errors.Is(err, ledger.ErrUnknownVersion):
		// Saved by a newer build: a rollback's verify said the ledger
		// was damaged, and to serve it (which the newer events refuse).
		res.Checkpoint = &checkpointReport{OK: true, Newer: err.Error()}
		return res, nil, nil
	case errors.Is(err, ledger.ErrCorrupt):
		// Damaged, not of another build (a walk read "none of this
		// build's version" for a checkpoint page zeroed, exit 0).
		res.Checkpoint = &checkpointReport{Problem: err.Error(), err: err}
		res.OK = false
		return res, nil, nil
	case err != nil:
		return res, nil, fmt.Errorf("verify: %w", err)
	}
	n, size, err := st.CheckSections(ctx)
	res.Sections = &sectionsReport{OK: err == nil, Checkpoint: st.Seq(), Sections: n, Bytes: size}
	if err != nil {
		if !errors.Is(err, ledger.ErrCorrupt) {
			return res, nil, fmt.Errorf("verify: sections: %w", err)
		}
		res.Sections.Problem, secErr = err.Error(), err
	}
	res.OK = res.OK && res.Sections.OK
	if res.Chain.OK {
		rebuilt, _, err := replay.Run(ctx, store, replay.Options{Until: replay.UntilSeq(st.Seq()), Sections: store})
		if err != nil {
			return res, secErr, fmt.Errorf("verify: checkpoint: %w", err)
		}
		cp := &checkpointReport{Seq: st.Seq(), Digest: st.Digest(), Rebuilt: rebuilt.Digest()}
		cp.OK = cp.Digest == cp.Rebuilt && cp.Digest != ""
		res.Checkpoint = cp
		res.OK = res.OK && cp.OK
	}
	return res, secErr, nil
}

// compareMirror compares the ledger with its JetStream mirror, into res:
// the NATS server --nats names, else the data dir's own embedded mirror,
// under the site the ledger records unless another is asked for. When
// the mirror is whole and the ledger is not, res says how to rebuild it.
func (a *verifyArgs) compareMirror(ctx context.Context, store *ledger.Store, res *verifyResult, stderr io.Writer) error {
	if recorded, _ := store.Site(ctx); recorded != "" && !a.siteGiven {
		a.site = recorded
	} else if recorded != "" && recorded != a.site {
		fmt.Fprintf(stderr, "verify: %s was served as site %s; comparing the mirror of site %s, as asked\n", a.data, recorded, a.site)
	}
	var (
		nc        *nats.Conn
		js        jetstream.JetStream
		stop      func()
		connected bool
		err       error
	)
	if a.natsURL == "" {
		// A stopped server's data dir: its own embedded mirror, served
		// here on a loopback port.
		if nc, js, stop, connected, err = openOwnMirror(ctx, a.data, a.site, "recledger-verify", stderr); err != nil {
			return fmt.Errorf("verify: %w", err)
		}
		if connected && streamMissing(ctx, js) {
			// Its store holds no events stream (lost, or never made):
			// the next serve creates it and refills it from the ledger.
			defer stop()
			head, _ := store.Head()
			rep := ledger.VerifyReport{OK: head == 0, Behind: head > 0}
			if head > 0 {
				rep.FirstBad, rep.Problem = 1, "the mirror holds no events stream (the next serve creates it and refills it from the ledger)"
			}
			res.JetStream = &rep
			res.OK = res.OK && rep.OK
			return nil
		}
	} else {
		if nc, js, err = ledger.Connect(ctx, a.natsURL, "recledger-verify", nil, natsToken(a.token)...); err != nil {
			return fmt.Errorf("verify: %w", err)
		}
		stop, connected = nc.Close, true
	}
	if !connected {
		res.JetStreamSkipped = "the data dir has no mirror of its own (a server with --nats keeps it on that NATS): give --nats URL to compare it; " +
			"with the embedded server, the next serve makes the mirror again and publishes every event into it"
		return nil
	}
	defer stop()
	if recorded, _ := store.Site(ctx); recorded == "" && !a.siteGiven && a.natsURL == "" {
		// A ledger that records no site holds no event (a start refused
		// it, or its file was replaced): the dir's own mirror is the
		// dir's alone, so the site it holds is the one to compare. Under
		// the default name a lost ledger beside a full mirror passed.
		if other, n := ledger.MirrorSite(ctx, js); n > 0 && other != a.site {
			fmt.Fprintf(stderr, "verify: %s records no site; its mirror holds %d events of site %s: comparing those\n", a.data, n, other)
			a.site = other
		}
	}
	rep, err := ledger.CompareJetStream(ctx, store, js, a.site)
	if err != nil {
		return fmt.Errorf("verify: jetstream: %w", ledger.Refused(nc, err))
	}
	res.JetStream = &rep
	res.OK = res.OK && rep.OK
	nats := ""
	if a.natsURL != "" {
		nats = " --nats " + ledger.StripURLCredentials(a.natsURL)
	}
	fileDamaged := res.File != nil && !res.File.OK
	if !res.Chain.OK && !rep.Restorable && !rep.Ahead {
		// The ledger's chain breaks (an event missing, changed), and the
		// comparison stopped at the first difference: whether the mirror
		// holds a whole copy to rebuild from is read on its own (walks
		// found chain breaks with a whole mirror and no way out named).
		head, _ := store.Head()
		if last, err := mirrorWhole(ctx, js, a.site); err == nil && last >= head && head > 0 {
			rep.Restorable = true
		}
	}
	if res.Chain.OK && !fileDamaged && !rep.OK && !rep.Behind && !rep.Ahead {
		// Two copies that differ, the ledger's whole: when the mirror's
		// own events do not chain, the mirror is the damaged one (a walk
		// found this named with no way out). Two whole histories that
		// differ are left to the operator: either may be the wrong one.
		if _, err := mirrorWhole(ctx, js, a.site); errors.Is(err, ledger.ErrChainBroken) || errors.Is(err, ledger.ErrCorrupt) {
			res.Remirror = remirror(a.natsURL, a.data)
		}
	}
	switch {
	case rep.Restorable, (rep.OK || rep.Ahead) && fileDamaged, rep.Ahead && !res.Chain.OK:
		res.Rebuild = fmt.Sprintf("move %s away, then run `recledger restore --from-jetstream%s --data %s --site %s` (docs/replay.md, \"Verify and restore\")",
			filepath.Join(a.data, LedgerFile), nats, a.data, a.site)
	case rep.Ahead && res.Chain.OK:
		res.Rebuild = fmt.Sprintf("run `recledger restore --from-jetstream%s --data %s --site %s`: the ledger's %d events are the mirror's first, "+
			"and restore continues it (docs/replay.md, \"Verify and restore\")", nats, a.data, a.site, rep.Events)
	}
	return nil
}

// remirror is how to rebuild the mirror from a whole ledger: a stream
// that lost or changed events in its middle cannot be mended in place
// (the outbox resumes after the site's last message), so it is made anew
// and the outbox publishes every event again, from seq 1.
func remirror(natsURL, dir string) string {
	if natsURL == "" {
		return fmt.Sprintf("stop the server, move %s away, then start serve: the outbox publishes every event again into a new stream (docs/replay.md, \"Verify and restore\")",
			filepath.Join(dir, JetStreamDir))
	}
	return fmt.Sprintf("delete the stream (`nats stream rm %s`, with the credentials of docs/clients.md): the server of each site sharing it makes it again "+
		"and publishes its events again from its ledger; then run verify again (docs/replay.md, \"Verify and restore\")", ledger.EventsStream)
}

// mirrorWhole reads the site's events in the mirror to its end, checking
// their chain, and returns the last seq; an error when they do not chain.
func mirrorWhole(ctx context.Context, js jetstream.JetStream, site string) (last uint64, err error) {
	err = ledger.ScanJetStream(ctx, js, site, 0, func(e ledger.Envelope) error {
		last = e.Seq
		return nil
	})
	return last, err
}

// streamMissing reports whether js has no events stream.
func streamMissing(ctx context.Context, js jetstream.JetStream) bool {
	_, err := js.Stream(ctx, ledger.EventsStream)
	return errors.Is(err, jetstream.ErrStreamNotFound)
}

// writeVerify prints res, as JSON or a line per check, and fails (naming
// the first problem) when a check did not pass; secErr is the sections'
// finding.
func writeVerify(out io.Writer, res verifyResult, asJSON bool, secErr error) error {
	// ok is false whenever the exit status is: a finding that fails the
	// command fails the JSON too, whichever part found it.
	failed := verifyFailure(res, secErr)
	res.OK = res.OK && failed == nil
	if asJSON {
		if err := writeJSONLine(out, res); err != nil {
			return err
		}
	} else {
		writeVerifyLine(out, "chain", res.Chain)
		if c := res.Chain; c.Newer > 0 {
			fmt.Fprintf(out, "%-10s note: from seq %d the events are of version %d, a newer build's (this build reads up to %d): serve this ledger with that build or a later one\n", "chain", c.Newer, c.NewerVersion, ledger.CurrentVersion)
		}
		if f := res.File; f != nil && f.OK {
			fmt.Fprintf(out, "%-10s ok: %d pages, each reached once from the root or free\n", "file", f.Pages)
		} else if f != nil {
			fmt.Fprintf(out, "%-10s FAILED: %s; a write on it could hand out pages in use: do not serve it\n", "file", f.Problem())
		}
		if res.RestoreUnfinished {
			fmt.Fprintf(out, "%-10s UNFINISHED: a restore into this dir did not finish: it holds the mirror's first %d events; run restore again to complete it (with the newer build that wrote them, if this build's restore stopped at a newer build's events; serve refuses the dir until then)\n", "restore", res.Chain.Events)
		}
		if r := res.Sections; r != nil && r.OK {
			fmt.Fprintf(out, "%-10s ok: %d of the checkpoint at seq %d, %d bytes\n", "sections", r.Sections, r.Checkpoint, r.Bytes)
		} else if r != nil {
			fmt.Fprintf(out, "%-10s FAILED: %s (%d good before it)%s\n", "sections", r.Problem, r.Sections, sectionsMend(res))
		}
		if c := res.Checkpoint; c != nil && c.Problem != "" && res.Chain.OK {
			fmt.Fprintf(out, "%-10s FAILED: %s; the next serve folds every event instead and replaces it\n", "checkpoint", c.Problem)
		} else if c != nil && c.Problem != "" {
			fmt.Fprintf(out, "%-10s FAILED: %s\n", "checkpoint", c.Problem)
		} else if c != nil && c.Newer != "" {
			fmt.Fprintf(out, "%-10s not checked: saved by a newer build (%s); serve and verify this dir with that build, or with this one if the ledger holds no events of the newer build (its serve then folds every event and saves its own)\n", "checkpoint", c.Newer)
		} else if c != nil && c.None {
			fmt.Fprintf(out, "%-10s none of this build's version (the next serve folds the events and saves one)\n", "checkpoint")
		} else if c != nil && c.OK {
			fmt.Fprintf(out, "%-10s ok: the state at seq %d, rebuilt from the events, has the stored digest %s\n", "checkpoint", c.Seq, c.Digest)
		} else if c != nil {
			fmt.Fprintf(out, "%-10s FAILED: the state stored at seq %d is not what its events give (stored digest %s, rebuilt %s); "+
				"start serve once with --rebuild to replace it\n", "checkpoint", c.Seq, c.Digest, c.Rebuilt)
		}
		if res.JetStreamSkipped != "" {
			fmt.Fprintf(out, "%-10s not checked: %s\n", "jetstream", res.JetStreamSkipped)
		}
		if res.JetStream != nil {
			writeVerifyLine(out, "jetstream", *res.JetStream)
		}
		if res.ServerDamage != "" {
			fmt.Fprintf(out, "%-10s FAILED: a request met a damaged part of the file: %s\n", "server", res.ServerDamage)
		}
		if res.Rebuild != "" {
			fmt.Fprintf(out, "%-10s the ledger can be rebuilt from the mirror: %s\n", "rebuild", res.Rebuild)
		}
		if res.Remirror != "" {
			fmt.Fprintf(out, "%-10s the ledger is whole and the mirror's events do not chain: %s\n", "remirror", res.Remirror)
		}
	}
	return failed
}

// verifyFailure is the error verify exits with for res, nil when every
// part checked is whole.
func verifyFailure(res verifyResult, secErr error) error {
	switch {
	case !res.Chain.OK:
		return fmt.Errorf("verify: %w at seq %d: %s", ledger.ErrChainBroken, res.Chain.FirstBad, res.Chain.Problem)
	case res.File != nil && !res.File.OK:
		return fmt.Errorf("verify: %w: its pages: %s (move it away and rebuild it from the mirror with recledger restore: docs/replay.md, \"Verify and restore\")", ledger.ErrCorrupt, res.File.Problem())
	case res.RestoreUnfinished:
		return fmt.Errorf("verify: %w: a restore into this dir did not finish (run it again to complete it)", ledger.ErrConflict)
	case res.Sections != nil && !res.Sections.OK:
		return fmt.Errorf("verify: checkpoint at seq %d: %w%s", res.Sections.Checkpoint, secErr, sectionsMend(res))
	case res.Checkpoint != nil && res.Checkpoint.Problem != "":
		return fmt.Errorf("verify: checkpoint: %w (the next serve folds every event instead and replaces it)", res.Checkpoint.err)
	case res.Checkpoint != nil && !res.Checkpoint.OK:
		return fmt.Errorf("verify: checkpoint at seq %d: %w: its state is not what its events give (start serve once with --rebuild)", res.Checkpoint.Seq, ledger.ErrCorrupt)
	case res.ServerDamage != "":
		return fmt.Errorf("verify: %w: the server met a damaged part of the file: stop it, then run recledger verify on its data dir", ledger.ErrCorrupt)
	case res.JetStream != nil && res.JetStream.Behind:
		return fmt.Errorf("verify: jetstream: %w, nothing it holds differs: %s", errMirrorBehind, res.JetStream.Problem)
	case res.JetStream != nil && !res.JetStream.OK:
		return fmt.Errorf("verify: jetstream: %w at seq %d: %s", ledger.ErrMismatch, res.JetStream.FirstBad, res.JetStream.Problem)
	}
	return nil
}

// sectionsMend is what to do about damaged sections: they follow from the
// events, so with a whole chain a rebuild writes them again; with a broken
// one the events must be mended first (the chain line says how).
func sectionsMend(res verifyResult) string {
	if !res.Chain.OK {
		return ""
	}
	return "; the events are whole and the sections follow from them: start serve once with --rebuild, which writes them again"
}

// errMirrorBehind: the mirror holds a beginning of the ledger, equal to
// it, and not the rest yet (an exit status 1 all the same: --json tells
// it from a difference).
var errMirrorBehind = errors.New("the mirror is behind")

func writeVerifyLine(w io.Writer, what string, r ledger.VerifyReport) {
	if r.OK {
		fmt.Fprintf(w, "%-10s ok: %d events, head %s\n", what, r.Events, r.Head)
	} else if r.Behind && r.Events == 0 {
		fmt.Fprintf(w, "%-10s BEHIND: %s: the mirror holds no event of the site (a --site other than the server's, a mirror lost, or one never published to)\n", what, r.Problem)
	} else if r.Behind {
		fmt.Fprintf(w, "%-10s BEHIND: %s; the %d events it holds are the ledger's (not published yet: a running server's outbox publishes the rest, its /readyz shows the lag; a stopped server's next start publishes it)\n", what, r.Problem, r.Events)
	} else if r.Events == 0 && r.FirstBad > 1 {
		// Only the heads were compared (beside a server): which event
		// differs first is not known, and none is claimed good (a walk
		// read "0 events good" where 2,263 were).
		fmt.Fprintf(w, "%-10s FAILED: %s\n", what, r.Problem)
	} else {
		fmt.Fprintf(w, "%-10s FAILED at seq %d: %s (%d events good before it)\n", what, r.FirstBad, r.Problem, r.Events)
	}
	if r.Foreign > 0 {
		fmt.Fprintf(w, "%-10s note: the stream also holds %d messages that are not events; a client had JetStream store them (docs/clients.md)\n", what, r.Foreign)
	}
}

// copiesDiffer is the problem of a mirror whose hash at seq is not the
// server's: some event at or before seq differs.
func copiesDiffer(seq uint64, stream, server string) string {
	return fmt.Sprintf("at seq %d the stream's hash is %s, the server's %s: the copies differ at or "+
		"before it (verify the stopped server's file to name the first difference)", seq, stream, server)
}

// serverHash is the hash of the server's event at seq (GET /v1/events).
func serverHash(ctx context.Context, info servingInfo, token string, seq uint64) (string, error) {
	body, err := askServer(ctx, info, token, fmt.Sprintf("/v1/events?after_seq=%d&limit=1", seq-1))
	if errors.Is(err, ledger.ErrInvalid) {
		// after_seq beyond the server's head
		return "", fmt.Errorf("the server's events: %w: no event at seq %d (%v)", ledger.ErrNotFound, seq, err)
	}
	if err != nil {
		return "", err
	}
	defer body.Close()
	var page struct {
		Events []struct {
			Seq  uint64 `json:"seq"`
			Hash string `json:"hash"`
		} `json:"events"`
	}
	if err := json.NewDecoder(body).Decode(&page); err != nil {
		return "", fmt.Errorf("the server's events: %w", err)
	}
	if len(page.Events) != 1 || page.Events[0].Seq != seq {
		return "", fmt.Errorf("the server's events: %w: no event at seq %d", ledger.ErrNotFound, seq)
	}
	return page.Events[0].Hash, nil
}

// verifyBesideServer checks a ledger that a running server holds: the
// server checks its chain (GET /v1/verify), and the mirror is read here,
// its chain recomputed, up to the server's head (waiting for the outbox
// as replay does, at most wait), where its hash must be the server's. Equal hashes at
// equal seqs mean equal histories, the chain being a chain; a mirror that
// differs is named at that seq, and the first differing event is left to
// a verify of the stopped server's file.
func verifyBesideServer(ctx context.Context, info servingInfo, token string, wait time.Duration, stderr io.Writer) (verifyResult, error) {
	var res verifyResult
	body, err := askServer(ctx, info, token, "/v1/verify")
	if err != nil {
		return res, err
	}
	err = json.NewDecoder(body).Decode(&res.Chain)
	body.Close()
	if err != nil {
		return res, fmt.Errorf("the server's verify: %w", err)
	}
	res.OK = res.Chain.OK
	if r, ok := serverReady(ctx, info); ok && r.DamageProblem != "" {
		res.ServerDamage, res.OK = r.DamageProblem, false
	}
	if !res.Chain.OK {
		return res, nil
	}
	nc, js, err := ledger.Connect(ctx, info.NATS, "recledger-verify", nil, natsToken(token)...)
	if err != nil {
		return res, err
	}
	defer nc.Close()
	src := replay.JetStreamSource{JS: js, Site: info.Site}
	head, err := src.Head(ctx)
	if err != nil {
		return res, fmt.Errorf("jetstream: %w", ledger.Refused(nc, err))
	}
	want := res.Chain.Events
	if head < want {
		catchUp(ctx, info, src, head, wait, stderr)
	}
	rep := ledger.VerifyReport{}
	var last ledger.Envelope
	errEnough := errors.New("at the server's head")
	err = ledger.ScanJetStreamNoting(ctx, js, info.Site, 0, func(e ledger.Envelope) error {
		last = e
		rep.Events, rep.Head = e.Seq, e.Hash
		if e.Seq >= want {
			return errEnough
		}
		return nil
	}, func(uint64) { rep.Foreign++ })
	switch {
	case errors.Is(err, errEnough) || err == nil:
	case errors.Is(err, ledger.ErrChainBroken) || errors.Is(err, ledger.ErrCorrupt):
		rep.FirstBad, rep.Problem = last.Seq+1, "stream: "+err.Error()
	default:
		return res, fmt.Errorf("jetstream: %w", ledger.Refused(nc, err))
	}
	switch {
	case rep.Problem != "":
		rep.Events = last.Seq
	case last.Seq < want:
		rep.FirstBad, rep.Problem = last.Seq+1, fmt.Sprintf("the stream ends at seq %d; the server's ledger goes on to seq %d", last.Seq, want)
		// What it holds is a chain: equal to the ledger's if its last
		// hash is the server's at that seq.
		if last.Seq == 0 {
			rep.Behind = true
		} else if h, err := serverHash(ctx, info, token, last.Seq); err == nil {
			rep.Behind = h == last.Hash
			if !rep.Behind {
				rep.Events, rep.FirstBad = 0, last.Seq
				rep.Problem = copiesDiffer(last.Seq, last.Hash, h)
			}
		}
	case last.Hash != res.Chain.Head:
		// Which event differs first is not known here: none is claimed good.
		rep.Events, rep.FirstBad = 0, want
		rep.Problem = copiesDiffer(want, last.Hash, res.Chain.Head)
	}
	rep.OK = rep.Problem == ""
	res.JetStream = &rep
	res.OK = res.OK && rep.OK
	return res, nil
}
