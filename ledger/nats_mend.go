package ledger

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"
)

// A JetStream file store whose write fails (a full disk) takes no message
// again until JetStream opens it anew: nats-server logs a "critical write
// error" and keeps the error for the life of the stream. bbolt takes
// writes again as soon as the disk has room, so the ledger went on while
// the mirror waited for a restart of serve. The Mender does that restart
// for the embedded server, of JetStream only: clients stay connected,
// and the streams and consumers are read back from their files, as at a
// start of the server. What the failed writes lost of the stream's tail,
// the outbox refills from the ledger.

// Mender defaults.
const (
	// DefaultMendAfter is how long a publisher must have been stalled.
	DefaultMendAfter = 30 * time.Second
	// DefaultMendFree is the room the store's file system must have.
	DefaultMendFree = 16 << 20
	// DefaultMendEvery is how often the Mender looks.
	DefaultMendEvery = 5 * time.Second
	// mendBackoffMax bounds the wait between restarts that did not help.
	mendBackoffMax = 30 * time.Minute
	// mendLookAfter is how often the Mender looks after a restart, until
	// the publishers advance: the log tells how long that took.
	mendLookAfter = 250 * time.Millisecond
)

// Log attribute keys of the Mender.
const (
	mendKeyStalled = "stalled"
	mendKeyFree    = "free_bytes"
	mendKeyCount   = "restarts"
	mendKeyNext    = "next_after"
	mendKeyTook    = "took"
)

// Staller is a publisher to JetStream: how long it has had work waiting
// that JetStream did not take, 0 when it has none or is not stalled; and
// Mended, called after a restart of JetStream, to try again at once.
type Staller interface {
	Stalled() time.Duration
	Mended()
}

var (
	_ Staller = (*Outbox)(nil)
	_ Staller = (*ManifestOutbox)(nil)
)

// Mender restarts the embedded server's JetStream when a publisher has
// been stalled for After while the store's file system has MinFree bytes
// free (or its room cannot be told). A restart that does not end the
// stall is tried again after a wait that doubles, from After to 30
// minutes. Run is its goroutine.
type Mender struct {
	Server     *Embedded
	Publishers []Staller
	// Dir is a directory on the JetStream store's file system.
	Dir     string
	Log     *slog.Logger // nil: no log
	After   time.Duration
	MinFree uint64
	Every   time.Duration

	restarts int // owned by Run
}

// Run looks every Every until ctx is done, then returns nil. Stop it
// before shutting the server down.
func (m *Mender) Run(ctx context.Context) error {
	after, every, minFree := m.After, m.Every, m.MinFree
	if after <= 0 {
		after = DefaultMendAfter
	}
	if every <= 0 {
		every = DefaultMendEvery
	}
	if minFree == 0 {
		minFree = DefaultMendFree
	}
	log := m.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With(jsLogKeyComponent, "jetstream-mender")
	t := time.NewTimer(every)
	defer t.Stop()
	wait := after      // how long a stall must last before the next restart
	var last time.Time // the last restart, until the publishers advance
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if last.IsZero() {
			t.Reset(every)
		} else {
			t.Reset(min(every, mendLookAfter))
		}
		stalled := m.stalled()
		if stalled == 0 {
			if !last.IsZero() {
				log.Info("the mirror advances again after the restart of JetStream", mendKeyTook, time.Since(last).Round(time.Millisecond))
				last = time.Time{}
			}
			wait = after
			continue
		}
		if stalled < wait || (!last.IsZero() && time.Since(last) < wait) {
			continue
		}
		// Where the room cannot be told, a restart is tried anyway: one
		// on a full disk fails again, and the wait doubles.
		free, ok := FreeBytes(m.Dir)
		if ok && free < minFree {
			continue
		}
		m.restarts++
		last = time.Now()
		t.Reset(min(every, mendLookAfter))
		err := m.Server.RestartJetStream()
		next := min(2*wait, mendBackoffMax)
		if err != nil {
			log.Error("JetStream restart failed", jsLogKeyErr, err, mendKeyNext, next)
		} else {
			for _, p := range m.Publishers {
				p.Mended()
			}
			// next: if the mirror still does not advance, the next try.
			log.Warn("JetStream was not taking what serve publishes though its disk has room; restarted it: its streams are read again from their files, and the outbox refills what they lost",
				mendKeyStalled, stalled.Round(time.Second), mendKeyFree, free, mendKeyCount, m.restarts, mendKeyNext, next)
		}
		wait = next
	}
}

// stalled is the longest stall among the publishers.
func (m *Mender) stalled() time.Duration {
	var d time.Duration
	for _, p := range m.Publishers {
		d = max(d, p.Stalled())
	}
	return d
}

// RestartJetStream closes JetStream of the streams' account and opens it
// again: every stream and consumer is read back from its files, as at a
// start of the server, and a store that failed a write takes messages
// again. Clients stay connected; their requests meanwhile go unanswered.
// A standalone server keeps JetStream itself enabled after a full disk,
// but turns it off after a write refused for want of permission (a file
// made read-only or immutable): then it is turned on again, with the
// configuration it started with (a walk's mirror stayed off for good
// once the file could be written again).
func (e *Embedded) RestartJetStream() error {
	e.restart.Lock()
	defer e.restart.Unlock()
	if !e.JetStreamEnabled() {
		if e.js == nil {
			return fmt.Errorf("restart jetstream: %w: JetStream is off on the server", ErrUnavailable)
		}
		// EnableJetStream puts its own directory under StoreDir again.
		cfg := *e.js
		cfg.StoreDir = filepath.Dir(cfg.StoreDir)
		if err := e.EnableJetStream(&cfg); err != nil {
			// nats-server takes JetStream for on from the start of
			// EnableJetStream, also when it then fails (its store not a
			// usable directory): off again, so that the next try turns
			// it on, rather than restarting what never started.
			if e.JetStreamEnabled() {
				_ = e.Server.ShutdownJetStream()
			}
			return fmt.Errorf("restart jetstream: %w: turning it on again: %v", ErrUnavailable, err)
		}
		if acc := e.GlobalAccount(); !acc.JetStreamEnabled() {
			if err := acc.EnableJetStream(nil, nil); err != nil {
				return fmt.Errorf("restart jetstream: %w: %v", ErrUnavailable, err)
			}
		}
		return nil
	}
	acc := e.GlobalAccount()
	if acc.JetStreamEnabled() {
		if err := acc.DisableJetStream(); err != nil {
			return fmt.Errorf("restart jetstream: %w: %v", ErrUnavailable, err)
		}
	}
	if err := acc.EnableJetStream(nil, nil); err != nil {
		return fmt.Errorf("restart jetstream: %w: %v", ErrUnavailable, err)
	}
	return nil
}
