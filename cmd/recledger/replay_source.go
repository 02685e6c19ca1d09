package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/replay"
)

// replaySource is where a replay reads, once chosen.
type replaySource struct {
	src    replay.Source
	head   uint64       // the source's last seq when opened
	beside *servingInfo // the running server whose mirror is read instead of its ledger
	closes []func()
}

// close releases what openSource opened.
func (r *replaySource) close() {
	for _, f := range r.closes {
		f()
	}
}

// openSource opens the source a asks for: the data dir's ledger
// read-only, or a JetStream mirror. A ledger held by a server running on
// it is replayed from that server's mirror, unless --source was given.
// It sets opts.Sections and opts.From where the ledger gives them, and
// a.source, a.natsURL and a.site to what is read.
func (c *ReplayCommand) openSource(ctx context.Context, a *replayArgs, opts *replay.Options, stderr *os.File) (rs *replaySource, err error) {
	rs = &replaySource{}
	defer func() {
		if err != nil {
			rs.close()
		}
	}()
	if a.source == sourceJetStream {
		// The mirror of the server running on the data dir, where it is;
		// one named by --nats is checked against that server's ledger
		// (checkBeside) as it is without --source: an engineer's walk
		// replayed another server's mirror beside d1's with no word.
		if info, live := readServing(a.data); live {
			if !a.natsNamed() {
				a.natsURL = info.NATS
			}
			if !a.siteNamed() {
				a.site = info.Site
			}
			rs.beside = &info
		}
	}
	if a.source == sourceBolt {
		if err := rs.openBolt(ctx, a, opts, stderr); err != nil {
			return rs, err
		}
	}
	if a.source == sourceJetStream && rs.beside == nil {
		// A data dir's mirror: under the site its ledger records (or, while
		// a server holds it, the site it serves), unless another is asked
		// for.
		recorded := ""
		if store, err := openLedgerReadOnly(a.data); err == nil {
			recorded, _ = store.Site(ctx)
			store.Close()
		} else if info, live := readServing(a.data); live {
			// Served, with its mirror named by --nats: the site it serves.
			recorded = info.Site
		}
		switch {
		case recorded == "":
		case !a.siteNamed():
			a.site = recorded
		case recorded != a.site:
			fmt.Fprintf(stderr, "replay: %s was served as site %s; replaying the mirror of site %s, as asked\n", a.data, recorded, a.site)
		}
	}
	switch a.source {
	case sourceBolt: // opened above
	case sourceJetStream:
		if err := c.openJetStream(ctx, a, opts, rs, stderr); err != nil {
			return rs, err
		}
	default:
		return rs, fmt.Errorf("replay: --source %q: %w: want bbolt or jetstream", a.source, ledger.ErrInvalid)
	}
	return rs, nil
}

// openBolt opens the data dir's ledger read-only; when a server holds it,
// and --source was not given, it turns a to that server's mirror.
func (rs *replaySource) openBolt(ctx context.Context, a *replayArgs, opts *replay.Options, stderr *os.File) error {
	store, err := openLedgerToRead(a.data)
	switch info, live := readServing(a.data); {
	case err == nil:
		rs.closes = append(rs.closes, func() { store.Close() })
		rs.src = store
		rs.head, _ = store.Head()
		// Rebuilt from seq 1, the sealed history that the server's
		// checkpoints stored in the file is read back from there
		// rather than held. A checkpoint is only a shortcut to the
		// present, taken when asked for.
		opts.Sections = store
		if a.fromCheckpoint {
			st, err := replay.CheckpointState(ctx, store)
			opts.From = st
			if st == nil {
				// Said, as from the mirror: a walk's replay went from seq
				// 1 without a word.
				fmt.Fprintf(stderr, "replay: --from-checkpoint: %s; replaying from seq 1\n", noCheckpoint(err))
			}
		}
	case errors.Is(err, ledger.ErrLocked) && live && !a.sourceGiven:
		// The same events, byte for byte and hash-chained, are in the
		// running server's mirror: replay beside it from there.
		a.source = sourceJetStream
		if !a.natsNamed() {
			// serving.json holds the URL without its credentials: an
			// external NATS that wants them is named with --nats.
			a.natsURL = info.NATS
		}
		if !a.siteNamed() {
			a.site = info.Site
		}
		whose := "its JetStream mirror"
		if a.natsNamed() {
			whose = "the JetStream mirror named by --nats or RECLEDGER_NATS, checked against its head"
		}
		fmt.Fprintf(stderr, "replay: %s is held by the server running on it (pid %d); "+
			"replaying %s (%s, site %s)\n",
			filepath.Join(a.data, LedgerFile), info.PID, whose, ledger.StripURLCredentials(a.natsURL), a.site)
		rs.beside = &info
	default:
		return fmt.Errorf("replay: %w", err)
	}
	return nil
}

// openJetStream connects to the mirror a names and reads its head; beside
// a running server, it waits for the mirror to catch up with the
// server's ledger.
func (c *ReplayCommand) openJetStream(ctx context.Context, a *replayArgs, opts *replay.Options, rs *replaySource, stderr *os.File) error {
	if a.fromCheckpoint {
		fmt.Fprintf(stderr, "replay: --from-checkpoint: the mirror holds no checkpoint; replaying from seq 1\n")
	}
	var (
		nc  *nats.Conn
		js  jetstream.JetStream
		err error
	)
	own := false
	if a.natsURL == "" && rs.beside == nil {
		// A stopped server's data dir: its own embedded mirror, served
		// here on a loopback port, as verify and restore read it (a walk
		// found replay trying nats://127.0.0.1:4222 beside it).
		var stop func()
		if nc, js, stop, own, err = openOwnMirror(ctx, a.data, a.site, "recledger-replay", stderr); err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		if own {
			rs.closes = append(rs.closes, stop)
			a.natsURL = ledger.RedactURLs(nc.ConnectedUrl())
		}
	}
	if !own {
		if a.natsURL == "" {
			a.natsURL = defaultNATSURL
		}
		if nc, js, err = ledger.Connect(ctx, a.natsURL, "recledger-replay", nil, natsToken(a.token)...); err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		rs.closes = append(rs.closes, nc.Close)
	}
	jsrc := replay.JetStreamSource{JS: js, Site: a.site}
	rs.src = jsrc
	if rs.head, err = jsrc.Head(ctx); err != nil {
		err = ledger.Refused(nc, err)
		if errors.Is(err, ledger.ErrRefused) && a.token == "" {
			// As verify, pauses and manifest say it (askServer).
			return fmt.Errorf("replay: %w (give a token with the auditor role: --token or RECLEDGER_TOKEN)", err)
		}
		return fmt.Errorf("replay: %w", err)
	}
	beside := rs.beside
	if rs.head == 0 && beside == nil {
		// An empty state printed with status 0 read as the answer (a
		// walk's wrong --site).
		return fmt.Errorf("replay: %w: the mirror at %s holds no events of site %s (is --site the server's?)", ledger.ErrNotFound, ledger.StripURLCredentials(a.natsURL), a.site)
	}
	if rs.head == 0 && beside != nil && beside.Site != "" && beside.Site != a.site {
		// Not worth waiting for: the server serves another site (a
		// walk's --site nosuch waited the whole catch-up first).
		return errOtherSite(a.natsURL, a.site, a.data, beside.Site)
	}
	if n, ok := opts.Until.Seq(); beside != nil && !(ok && rs.head >= n) {
		// Waits for the mirror to hold the server's head, unless it
		// holds the seq asked for already.
		wait := c.MirrorWait
		if wait <= 0 {
			wait = mirrorCatchUp
		}
		rs.head = catchUp(ctx, *beside, jsrc, rs.head, wait, stderr)
	}
	if rs.head == 0 && beside != nil {
		// Empty beside a server: right only if its ledger is.
		if want, ok := serverHead(ctx, *beside); !ok || want > 0 {
			return errOtherSite(a.natsURL, a.site, a.data, beside.Site)
		}
	}
	return nil
}

// noCheckpoint says why replay.CheckpointState gave no state.
func noCheckpoint(err error) string {
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		return "the ledger holds no checkpoint of this build's version"
	case errors.Is(err, ledger.ErrUnknownVersion):
		return "the checkpoint was saved by a newer build (" + err.Error() + ")"
	default:
		return "the checkpoint cannot be used (" + err.Error() + ")"
	}
}
