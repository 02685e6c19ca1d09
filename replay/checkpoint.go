package replay

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/projections"
)

// Checkpointer defaults.
const (
	DefaultCheckpointEvents = 100_000
	DefaultCheckpointEvery  = time.Minute
	// checkpointPoll is how often the Checkpointer looks at the live seq
	// (a cheap read) when Every is longer.
	checkpointPoll = time.Second
	// savesRest spaces saves that take long (the head of a big unsealed
	// day: 100-200 MB, seconds to encode and store while appends wait on
	// the disk and the CPU): after a save, the next waits this many times
	// as long as it took, so that saving takes at most a tenth of the
	// time, unless a day was sealed meanwhile. The tail a restart replays
	// grows instead (some 300,000 events a second).
	savesRest = 9
	// replayRate is about how many events a second a start replays after
	// its checkpoint (docs/replay.md, "Speed"), a low figure of a loaded
	// machine.
	replayRate = 200_000
	// finalSaveTimeout bounds the save made on stop.
	finalSaveTimeout = 30 * time.Second
)

// Log attribute keys.
const (
	logKeySeq          = "seq"
	logKeyDigest       = "digest"
	logKeyBytes        = "bytes"
	logKeySections     = "sections"
	logKeySectionBytes = "section_bytes"
	logKeyTook         = "took"
	logKeyCatchUp      = "catch_up_took" // of took: folding the events since the last save
	logKeyEncode       = "encode_took"   // of took: encoding the head
	logKeyStore        = "store_took"    // of took: writing the sections and the head
	logKeyEvents       = "events"
	logKeyErr          = "err"
	logKeyVersion      = "projection_version" // as serve's start names it
)

// CheckpointSaver stores a checkpoint with the sections it names (never the
// checkpoint without them), and reads the sections back; *ledger.Store
// fits it.
type CheckpointSaver interface {
	SaveCheckpoint(ctx context.Context, version string, seq uint64, state []byte, sections []ledger.Section) error
	projections.SectionReader
}

// CheckpointLoader reads the newest checkpoint of a version, and the
// sections it names; *ledger.Store fits it. LoadCheckpoint returns an error
// wrapping ledger.ErrNotFound when there is none.
type CheckpointLoader interface {
	LoadCheckpoint(ctx context.Context, version string) (seq uint64, state []byte, err error)
	projections.SectionReader
}

// LiveProjections is what the Checkpointer needs of the server's live
// state; *projections.Live fits it. Seq must be cheap: it is read every
// poll. SectionsStored tells the state that sections are stored, so that
// it drops their bytes; ShareKept, that the sections it keeps in memory
// can share the bytes of the Checkpointer's own state's.
type LiveProjections interface {
	Seq() uint64
	SectionsStored(r projections.SectionReader, keys []string)
	ShareKept(from *projections.State) int
	// LastSeal is the last sealed day (and when): a seal is saved at
	// once, since it shrinks what the next restart reads.
	LastSeal() (day string, at ledger.Time)
}

var (
	_ CheckpointSaver  = (*ledger.Store)(nil)
	_ CheckpointLoader = (*ledger.Store)(nil)
	_ LiveProjections  = (*projections.Live)(nil)
)

// Checkpointer saves the projections now and then so that a restart
// replays only the tail. Run is its owner goroutine.
//
// It does not encode the live state: that took the live state's lock for
// as long as the encoding (about 100 ms for a busy day's 11 MiB head), and
// every append waited for it, since the store's commit hook applies each
// batch to the live state under that lock. It keeps a state of its own
// instead, brought up to the live seq by replaying Source's new events
// before each save (the fold is deterministic: the same events give the
// same state), and encodes that, holding no lock anyone else needs.
type Checkpointer struct {
	Store CheckpointSaver
	// Source holds the events the live state folded (the store itself).
	Source Source
	// Live is the server's state: its seq says when to save, and it is
	// told which sections were stored.
	Live LiveProjections
	// From is the state the Checkpointer's own copy starts from: the
	// newest usable checkpoint (FromCheckpoint), a state of its own, never
	// the live one. nil starts from seq 1.
	From *projections.State
	// FromTook is how long reading From took. Until the first save, it
	// stands for how long a save takes (encoding and storing the same
	// head): a stop soon after a start with a big head then leaves a
	// short tail to the next start rather than save it again.
	FromTook time.Duration
	// EveryEvents saves once this many events arrived since the last save
	// (default DefaultCheckpointEvents).
	EveryEvents uint64
	// Every saves when this much time passed and new events arrived
	// (default DefaultCheckpointEvery).
	Every time.Duration
	// Saved is the seq of the newest checkpoint already stored, that the
	// live state started from (for a state from Load: head - replayed).
	// 0 counts every event of the live state as new, so that a start that
	// replayed a long ledger from scratch soon leaves a checkpoint behind.
	Saved uint64
	// Logger receives a line per save; nil discards.
	Logger *slog.Logger

	savedSeq atomic.Uint64                     // the newest checkpoint's seq (SavedSeq)
	failing  atomic.Pointer[checkpointFailing] // saves failing since (Problem)
}

// checkpointFailing is a run of failed saves.
type checkpointFailing struct {
	since time.Time
	tries int
	err   error
}

// SavedSeq is the seq of the newest checkpoint stored: Saved until Run
// saves one. A restart folds the events after it.
func (c *Checkpointer) SavedSeq() uint64 { return max(c.savedSeq.Load(), c.Saved) }

// Problem is nil while saves succeed; after a failed save, until one
// succeeds, it says since when they fail, how often, and why. The server
// keeps serving (its ledger holds every event), but each failed save
// leaves a longer tail for the next start to fold; a full disk was seen
// only in a log line a minute (a full-disk walk).
func (c *Checkpointer) Problem() error {
	f := c.failing.Load()
	if f == nil {
		return nil
	}
	return fmt.Errorf("checkpoint saves fail since %s (%d tries; the next start folds every event after seq %d): %w",
		f.since.UTC().Format(time.RFC3339), f.tries, c.savedSeq.Load(), f.err)
}

// Run saves checkpoints until ctx is done, then makes a final save if
// events arrived since the last one (unless the last save took a second
// or more, and longer than replaying those events will: the next start
// replays them), and returns. The caller must keep the
// store open until Run has returned. A failed save is logged and retried
// at the next occasion; Run returns nil on a normal stop, or the error of
// the final save.
func (c *Checkpointer) Run(ctx context.Context) error {
	if c.Store == nil || c.Source == nil || c.Live == nil {
		return fmt.Errorf("checkpointer: %w: Store, Source and Live are required", ledger.ErrInvalid)
	}
	everyEvents := c.EveryEvents
	if everyEvents == 0 {
		everyEvents = DefaultCheckpointEvents
	}
	every := c.Every
	if every <= 0 {
		every = DefaultCheckpointEvery
	}
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	poll := min(every, checkpointPoll)
	tick := time.NewTicker(poll)
	defer tick.Stop()

	saved := c.Saved
	c.savedSeq.Store(saved)
	lastSave := time.Now()
	var rest time.Time // no save before: nine times the last one's duration after it
	savedSeal, _ := c.Live.LastSeal()
	failed := false
	took := c.FromTook // the last save's; until one, reading From's
	own := c.From
	if own == nil {
		own = projections.New()
	}
	save := func(ctx context.Context) error {
		start := time.Now()
		target := c.Live.Seq()
		if target <= saved {
			return nil
		}
		if own.Seq() < target {
			st, _, err := Run(ctx, c.Source, Options{From: own, Until: UntilSeq(target)})
			if err != nil {
				return fmt.Errorf("checkpoint: catch up to seq %d: %w", target, err)
			}
			own = st
		}
		caughtUp := time.Since(start)
		if own.Seq() <= saved {
			return nil
		}
		sv, err := Save(ctx, c.Store, own)
		if err != nil {
			return err
		}
		saved = sv.Seq
		c.savedSeq.Store(saved)
		c.failing.Store(nil)
		c.Live.SectionsStored(c.Store, sv.Sections)
		c.Live.ShareKept(own)
		log.Info("checkpoint saved", logKeySeq, sv.Seq, logKeyDigest, sv.Digest, logKeyBytes, sv.HeadBytes, logKeySections, len(sv.Sections),
			logKeySectionBytes, sv.SectionBytes, logKeyVersion, projections.Version, logKeyTook, time.Since(start).Round(time.Millisecond),
			logKeyCatchUp, caughtUp.Round(time.Millisecond), logKeyEncode, sv.Encode.Round(time.Millisecond), logKeyStore, sv.Store.Round(time.Millisecond))
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			seq := c.Live.Seq()
			if seq <= saved {
				return nil
			}
			if tail := replayTime(seq - saved); took >= time.Second && tail < took {
				// A big head (a busy unsealed day): stopping would wait
				// seconds for a save that the next start does without.
				log.Info("final checkpoint skipped: the next start replays the events since the last one, quicker than a save",
					logKeySeq, saved, logKeyEvents, seq-saved, logKeyTook, took.Round(time.Millisecond))
				return nil
			}
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalSaveTimeout)
			defer cancel()
			return save(fctx)
		case now := <-tick.C:
			seq := c.Live.Seq()
			if seq <= saved {
				continue
			}
			// A seal moves the day's closed contacts into sections:
			// saved now, the next restart reads a small head, and the
			// live state drops the sections' bytes.
			seal, _ := c.Live.LastSeal()
			sealed := seal != savedSeal && !failed
			if !sealed && (seq-saved < everyEvents && now.Sub(lastSave) < every || now.Before(rest)) {
				continue
			}
			lastSave = now
			err := save(ctx)
			took = time.Since(now)
			rest = time.Now().Add(savesRest * took)
			failed = err != nil
			if failed {
				// Tried again after Every, not as soon as EveryEvents more
				// came: on a full disk each try wrote megabytes, every few
				// seconds (a full-disk walk).
				if retry := time.Now().Add(every); retry.After(rest) {
					rest = retry
				}
			}
			if !failed {
				savedSeal = seal
			}
			if err != nil {
				if ctx.Err() != nil {
					continue // stopping: the final save follows
				}
				if errors.Is(err, ledger.ErrCorrupt) {
					// Retrying will not mend the file: say what will.
					log.Error("checkpoint failed: the ledger file is damaged where checkpoints are kept; the events are served and appended, "+
						"but every restart folds them all. Stop the server, run `recledger verify`, and rebuild the file from the mirror "+
						"with `recledger restore --from-jetstream` as it says (docs/replay.md, \"Verify and restore\")", logKeyErr, err)
				} else {
					log.Warn("checkpoint failed; will retry", logKeyErr, err)
				}
				f := &checkpointFailing{since: now, tries: 1, err: err}
				if prev := c.failing.Load(); prev != nil {
					f.since, f.tries = prev.since, prev.tries+1
				}
				c.failing.Store(f)
			}
		}
	}
}

// replayTime is about how long a start takes to replay n events.
func replayTime(n uint64) time.Duration {
	return time.Duration(float64(n) / replayRate * float64(time.Second))
}

// SavedCheckpoint describes a checkpoint Save stored.
type SavedCheckpoint struct {
	Seq          uint64
	HeadBytes    int      // the encoded state's head
	Digest       string   // the state's digest at Seq, as GET /v1/digest gives it
	Sections     []string // keys of the sections stored with it
	SectionBytes int
	Encode       time.Duration // encoding the head
	Store        time.Duration // SaveCheckpoint: the sections and the head
}

// Save stores st as the checkpoint of projections.Version at its seq, with
// the sections whose bytes it still holds, and then tells st they are
// stored, so that it drops those bytes.
func Save(ctx context.Context, store CheckpointSaver, st *projections.State) (SavedCheckpoint, error) {
	sv := SavedCheckpoint{Seq: st.Seq()}
	start := time.Now()
	b, err := st.MarshalCheckpoint()
	if err != nil {
		return sv, fmt.Errorf("checkpoint seq %d: %w", sv.Seq, err)
	}
	sv.Encode = time.Since(start)
	secs := st.PendingSections()
	if err := store.SaveCheckpoint(ctx, projections.Version, sv.Seq, b, secs); err != nil {
		return sv, fmt.Errorf("checkpoint seq %d: %w", sv.Seq, err)
	}
	sv.Store = time.Since(start) - sv.Encode
	sv.HeadBytes = len(b)
	sum := sha256.Sum256(b) // what State.Digest is, from the bytes at hand
	sv.Digest = hex.EncodeToString(sum[:])
	sv.Sections = make([]string, len(secs))
	for i, sec := range secs {
		sv.Sections[i] = sec.Key
		sv.SectionBytes += len(sec.Data)
	}
	st.SectionsStored(store, sv.Sections)
	return sv, nil
}

// Load rebuilds the projections from the newest checkpoint of
// projections.Version in store and the tail of src after it, and returns
// the state and how many events were replayed. With no checkpoint, or one
// that does not decode, or one beyond src's events, it replays src from
// the start. Checkpoints of other versions are never read, so a rules
// change rebuilds from scratch.
func Load(ctx context.Context, store CheckpointLoader, src Source) (*projections.State, uint64, error) {
	return LoadWith(ctx, store, src, Options{})
}

// LoadWith is Load with replay options (Progress, Trace; Until must be zero
// and From nil, since Load chooses the start).
func LoadWith(ctx context.Context, store CheckpointLoader, src Source, opts Options) (*projections.State, uint64, error) {
	if !opts.Until.IsZero() || opts.From != nil {
		return nil, 0, fmt.Errorf("load: %w: Until and From are chosen by Load", ledger.ErrInvalid)
	}
	opts.From = FromCheckpoint(ctx, store)
	st, stats, err := Run(ctx, src, opts)
	if err != nil {
		return nil, stats.Events, fmt.Errorf("load: %w", err)
	}
	return st, stats.Events, nil
}

// header is what FromCheckpoint uses, when the store has it, to refuse a
// checkpoint ahead of the ledger (e.g. a data dir restored from an older copy).
type header interface {
	Head() (seq uint64, hash string)
}

// FromCheckpoint returns the state of the newest usable checkpoint of
// projections.Version, or nil when there is none usable: missing,
// unreadable, ahead of the store's head (when the store has Head), not
// decodable, naming a section the store lacks (or holds at another
// length), or holding a state of another seq than it is filed under.
// Every such case only costs time: the caller replays from seq 1. Only
// the checkpoint's head is read; the state's queries read the sections
// from store when they need them.
func FromCheckpoint(ctx context.Context, store CheckpointLoader) *projections.State {
	st, _ := CheckpointState(ctx, store)
	return st
}

// CheckpointState is FromCheckpoint saying why there is no state: an
// error wrapping ledger.ErrNotFound when no checkpoint of this version is
// stored, ledger.ErrUnknownVersion when a newer build saved it (it folded
// events of a version this build does not read), ledger.ErrCorrupt when
// the stored one cannot be used (its bytes
// damaged, not decodable, naming a section the store lacks, of another
// seq than it is filed under, or after the ledger's head), else the
// store's error.
func CheckpointState(ctx context.Context, store CheckpointLoader) (*projections.State, error) {
	seq, b, err := store.LoadCheckpoint(ctx, projections.Version)
	if err != nil {
		return nil, err
	}
	if h, ok := store.(header); ok {
		if head, _ := h.Head(); seq > head {
			return nil, fmt.Errorf("checkpoint at seq %d: %w: after the ledger's head, seq %d", seq, ledger.ErrCorrupt, head)
		}
	}
	st, err := projections.UnmarshalCheckpoint(ctx, b, store)
	switch {
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case errors.Is(err, ledger.ErrUnknownVersion):
		// Saved by a newer build: not damaged.
		return nil, fmt.Errorf("checkpoint at seq %d: %w", seq, err)
	case err != nil && !errors.Is(err, ledger.ErrCorrupt) && !errors.Is(err, ledger.ErrUnavailable):
		return nil, fmt.Errorf("checkpoint at seq %d: %w: %v", seq, ledger.ErrCorrupt, err)
	case err != nil:
		return nil, fmt.Errorf("checkpoint at seq %d: %w", seq, err)
	case st.Seq() != seq:
		return nil, fmt.Errorf("checkpoint at seq %d: %w: it holds the state at seq %d", seq, ledger.ErrCorrupt, st.Seq())
	}
	return st, nil
}
