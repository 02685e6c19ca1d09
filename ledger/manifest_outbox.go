package ledger

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ManifestSource is where the manifest outbox reads sealed manifests from
// (the live projections).
type ManifestSource interface {
	SealedDays() []string
	// Manifest is the canonical manifest of a sealed day.
	Manifest(ctx context.Context, day string) ([]byte, error)
}

// DefaultManifestEvery is how often the manifest outbox looks for newly
// sealed days when not woken.
const DefaultManifestEvery = 2 * time.Second

// manifestEventsPoll is how often a manifest waiting for its seal event to
// be in the events stream (AfterEvents) looks again.
const manifestEventsPoll = 20 * time.Millisecond

// Log attribute keys of the manifest outbox.
const (
	mobKeyDay        = "day"
	mobKeyErr        = "err"
	mobKeyBytes      = "bytes"
	mobKeyCompressed = "compressed" // published gzipped: larger than the server takes
)

// ManifestOutbox publishes each sealed day's manifest to RECLEDGER_MANIFESTS
// once (API.md §6), oldest day first. Run is its owner goroutine; Wake and
// Lag may be called from anywhere.
type ManifestOutbox struct {
	js    jetstream.JetStream
	site  string
	src   ManifestSource
	log   *slog.Logger
	every time.Duration
	wake  chan struct{}

	lag        atomic.Int64           // sealed days not yet confirmed in the stream, at the last look
	looked     atomic.Bool            // a round has set lag
	failing    atomic.Int64           // Unix ns of the first failed publish since the last one that went through; 0 when none
	behind     atomic.Int64           // Unix ns since when the oldest day waits for its seal event in the events stream; 0 when none
	failErr    atomic.Pointer[string] // the last failure, while failing
	shownAfter time.Duration          // how long a stall lasts before Problem tells it
	lastErr    string                 // the last retryable failure logged; owned by Run

	events  func() uint64     // the last seq the events stream holds (AfterEvents); nil: no wait
	waitFor map[string]uint64 // days waiting for their seal event: its seq; owned by Run

	tooLarge atomic.Pointer[tooLarge] // the day that does not fit the server, while it does not

	replicas int                     // > 0: create the stream with this many replicas when it is missing
	capture  string                  // the stream's capture prefix (PublishUnder)
	created  time.Time               // when the stream listed was created; owned by Run
	steady   func() (release func()) // CreateSteadily; nil: no guard
}

// PublishUnder makes the outbox publish on the subjects under capture
// (Embedded.Capture), and create a missing stream so. Call it before Run.
func (o *ManifestOutbox) PublishUnder(capture string) { o.capture = capture }

// CreateSteadily is Outbox.CreateSteadily for the manifests stream.
func (o *ManifestOutbox) CreateSteadily(steady func() (release func())) { o.steady = steady }

// AfterEvents makes the outbox publish a day's manifest only once the
// events stream holds the event that sealed it (the manifest's seal_seq,
// at or before confirmed(): the events outbox's Confirmed). So a
// manifest's chain_head can always be found in the mirror, and a ledger
// restored from the mirror holds every seal whose manifest upload workers
// have: it never seals such a day again, to another manifest. Call it
// before Run.
func (o *ManifestOutbox) AfterEvents(confirmed func() uint64) { o.events = confirmed }

// CreateStreams makes the outbox create RECLEDGER_MANIFESTS (with
// replicas) when it finds it missing, as when the JetStream store was
// lost. Call it before Run.
func (o *ManifestOutbox) CreateStreams(replicas int) { o.replicas = max(replicas, 1) }

// tooLarge is a day whose manifest, even compressed, is larger than the
// NATS server takes or the manifests stream stores.
type tooLarge struct {
	day string
	max int64 // the bound then (manifestBound): the day is tried again once it changes
	err error
}

// NewManifestOutbox returns an outbox publishing src's sealed manifests as
// site. log may be nil.
func NewManifestOutbox(js jetstream.JetStream, site string, src ManifestSource, log *slog.Logger) *ManifestOutbox {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &ManifestOutbox{js: js, site: site, src: src, log: log, every: DefaultManifestEvery, wake: make(chan struct{}, 1), shownAfter: outboxStallFor}
}

// Wake makes Run look for sealed days now (after a seal). It never blocks.
func (o *ManifestOutbox) Wake() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// Mended tells the outbox that JetStream was restarted (Mender): it
// publishes the days waiting now, not at its next look. It never blocks.
func (o *ManifestOutbox) Mended() { o.Wake() }

// Lag is the number of sealed days not yet known to be in the stream:
// before the first look, every sealed day (a crash walk read 0 for a
// second after a start, then 5 while the refilled stream took them).
func (o *ManifestOutbox) Lag() uint64 {
	if !o.looked.Load() {
		return uint64(len(o.src.SealedDays()))
	}
	return uint64(max(o.lag.Load(), 0))
}

// Stalled is how long sealed days have waited for a publish that keeps
// failing; 0 when none waits or none has failed since the last that went
// through. A day larger than the server takes, or whose stream copy
// differs, does not count: a restart of JetStream mends neither.
func (o *ManifestOutbox) Stalled() time.Duration {
	at := o.failing.Load()
	if at == 0 || o.Lag() == 0 {
		return 0
	}
	return time.Since(time.Unix(0, at))
}

// errManifestsStalled is the manifest outbox's problem while JetStream
// takes no manifest.
var errManifestsStalled = errors.New("JetStream is not taking the manifests")

// Problem is nil, or why sealed days' manifests have not been published:
// the oldest is larger than the NATS server or the stream takes, or every publish of it
// has failed for 30 s.
func (o *ManifestOutbox) Problem() error {
	if tl := o.tooLarge.Load(); tl != nil {
		return fmt.Errorf("manifest outbox: %d sealed days wait behind %s: %w", o.Lag(), tl.day, tl.err)
	}
	if at := o.behind.Load(); at != 0 && o.Lag() > 0 {
		if d := time.Since(time.Unix(0, at)); d >= o.shownAfter {
			return fmt.Errorf("manifest outbox: %d sealed days wait, for %s, for the events mirror to hold their seal events (a manifest is published after its seal event): see outbox_problem",
				o.Lag(), d.Round(time.Second))
		}
	}
	d := o.Stalled()
	if d == 0 || d < o.shownAfter {
		return nil
	}
	last := ""
	if p := o.failErr.Load(); p != nil {
		last = *p
	}
	return fmt.Errorf("manifest outbox: %w: none published for %s, %d sealed days wait (after a failed write — a full disk, a file it may not write — the embedded NATS server's JetStream is restarted once its file system has %d MiB free; an external one needs its operator): %s",
		errManifestsStalled, d.Round(time.Second), o.Lag(), DefaultMendFree>>20, last)
}

// Run publishes until ctx is done and returns ctx's error. On start, and
// whenever the stream was created again, it lists the manifest subjects
// already in the stream; then, on every look,
// it publishes each sealed day not yet confirmed, oldest first, through
// publishManifest, which checks the stream again before publishing, so a
// restart or a crash between publish and confirmation never duplicates. A
// day whose stream copy differs (ErrConflict) is logged and skipped; any
// other failure stops the round, to be retried at the next look, so that
// days are never published out of order.
func (o *ManifestOutbox) Run(ctx context.Context) error {
	if err := validSite(o.site); err != nil {
		return fmt.Errorf("manifest outbox: %w", err)
	}
	confirmed := map[string]bool{}
	listed := false
	t := time.NewTicker(o.every)
	defer t.Stop()
	for {
		if listed && o.replaced(ctx) {
			// A new stream (the JetStream store was lost): what was
			// confirmed in the old one is not in it.
			o.log.Warn("manifest outbox: the manifests stream was created again; publishing every sealed day's manifest again")
			clear(confirmed)
			listed = false
		}
		if !listed {
			listed = o.list(ctx, confirmed) == nil
		}
		var soon *time.Timer
		var soonC <-chan time.Time
		if o.round(ctx, confirmed) {
			soon = time.NewTimer(manifestEventsPoll)
			soonC = soon.C
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-o.wake:
		case <-t.C:
		case <-soonC:
		}
		if soon != nil {
			soon.Stop()
		}
	}
}

// replaced reports whether the stream listed is gone (then created again
// when the outbox may) or is not the one listed.
func (o *ManifestOutbox) replaced(ctx context.Context) bool {
	s, err := o.js.Stream(ctx, ManifestsStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) && o.steady != nil {
		// Missing, or being read back by a restart of JetStream.
		release := o.steady()
		defer release()
		s, err = o.js.Stream(ctx, ManifestsStream)
	}
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		if o.replicas > 0 {
			_ = ensureStream(ctx, o.js, ManifestsStream, siteManifestsFilter(o.site), o.replicas, o.capture)
		}
		return true
	}
	if err != nil || s.CachedInfo().Created.Equal(o.created) {
		return false
	}
	if o.replicas > 0 && o.capture == "" {
		// Made again by another site's server on a shared cluster, with
		// its own subject only: this site's is added back.
		_ = ensureStream(ctx, o.js, ManifestsStream, siteManifestsFilter(o.site), o.replicas, o.capture)
	}
	return true
}

// ensureSubject makes the manifests stream take this site's subject as
// this outbox publishes it (under its capture prefix), when the outbox
// may create streams; on the embedded server once no restart of its
// JetStream is reading the streams back.
func (o *ManifestOutbox) ensureSubject(ctx context.Context) {
	if o.replicas == 0 {
		return
	}
	if o.steady != nil {
		defer o.steady()()
	}
	if err := ensureStream(ctx, o.js, ManifestsStream, siteManifestsFilter(o.site), o.replicas, o.capture); err != nil {
		o.log.Debug("manifest outbox: setting the stream's subject", mobKeyErr, err)
	}
}

// list marks the days whose manifest subject already holds their
// manifest: a message with its message id (foreignManifest).
func (o *ManifestOutbox) list(ctx context.Context, confirmed map[string]bool) error {
	s, err := o.js.Stream(ctx, ManifestsStream)
	if err != nil {
		return fmt.Errorf("manifest outbox: %w: %v", ErrUnavailable, err)
	}
	o.created = s.CachedInfo().Created
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(ManifestSubject(o.site, "*")))
	if err != nil {
		return fmt.Errorf("manifest outbox: %w: %v", ErrUnavailable, err)
	}
	prefix := ManifestSubject(o.site, "")
	for subj, n := range info.State.Subjects {
		if n == 0 || len(subj) <= len(prefix) {
			continue
		}
		day := subj[len(prefix):]
		m, err := s.GetLastMsgForSubject(ctx, subj)
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
		case err != nil:
			return fmt.Errorf("manifest outbox: %w: %v", ErrUnavailable, err)
		case foreignManifest(m, o.site, day):
			// Its manifest may be before it: publishManifest looks.
			o.log.Warn("manifest outbox: a day's subject holds a message that is not its manifest; a client had JetStream store it (docs/clients.md); it is removed when the day is sealed",
				mobKeyDay, day)
		default:
			confirmed[day] = true
		}
	}
	return nil
}

// round publishes the sealed days not yet confirmed, oldest first. It
// reports whether it stopped at a day whose seal event the events stream
// does not hold yet (AfterEvents).
func (o *ManifestOutbox) round(ctx context.Context, confirmed map[string]bool) (waiting bool) {
	days := o.src.SealedDays()
	slices.Sort(days)
	todo := make([]string, 0, 1)
	for _, d := range days {
		if !confirmed[d] {
			todo = append(todo, d)
		}
	}
	o.lag.Store(int64(len(todo)))
	o.looked.Store(true)
	if len(todo) == 0 {
		o.failing.Store(0)
	}
	for _, day := range todo {
		if ctx.Err() != nil {
			return
		}
		if tl := o.tooLarge.Load(); tl != nil && tl.day == day && manifestBound(ctx, o.js) == tl.max {
			// Not read, compressed and refused again every few
			// seconds: tried again once the server or stream takes more.
			return false
		}
		if seal, ok := o.waitFor[day]; ok && seal > o.events() {
			// Known from an earlier round: the manifest (megabytes on a
			// busy day) is not read again while the poll waits.
			o.behind.CompareAndSwap(0, time.Now().UnixNano())
			return true
		}
		o.behind.Store(0)
		body, err := o.src.Manifest(ctx, day)
		if err == nil && o.events != nil {
			if seal := sealSeqOf(body); seal > o.events() {
				if o.waitFor == nil {
					o.waitFor = map[string]uint64{}
				}
				o.waitFor[day] = seal
				o.behind.CompareAndSwap(0, time.Now().UnixNano())
				return true // days go in order: none passes this one
			}
		}
		var sent manifestSent
		if err == nil {
			sent, err = sendManifest(ctx, o.js, o.site, day, body, o.capture)
		}
		switch {
		case err == nil:
			o.failing.Store(0)
			o.log.Info("manifest published", mobKeyDay, day, mobKeyBytes, len(body), mobKeyCompressed, sent.compressed)
		case errors.Is(err, ErrConflict):
			// Another ledger's manifest for that day is in the stream:
			// retrying cannot help; an operator must look.
			o.log.Error("manifest not published: the stream holds a different one", mobKeyDay, day, mobKeyErr, err)
		case errors.Is(err, ErrTooLarge):
			// Days go in order: none is published until this one fits.
			// Shown on /readyz as the manifests' problem.
			o.failing.Store(0)
			o.tooLarge.Store(&tooLarge{day: day, max: sent.bound, err: err})
			if ctx.Err() == nil && err.Error() != o.lastErr {
				o.log.Error("manifest not published: larger than the NATS server or the manifests stream takes; later days wait for it", mobKeyDay, day, mobKeyErr, err)
				o.lastErr = err.Error()
			}
			return false
		default:
			// Logged once per distinct failure: the stream may be down for
			// a while, and the outbox looks every few seconds.
			o.failing.CompareAndSwap(0, time.Now().UnixNano())
			if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
				// No stream takes the subject: on the embedded server, one
				// left on another start's capture prefix (a start on a
				// full disk could not set it; a full-disk walk).
				o.ensureSubject(ctx)
			}
			msg := err.Error()
			o.failErr.Store(&msg)
			if ctx.Err() == nil && err.Error() != o.lastErr {
				o.log.Warn("manifest not published yet; will retry", mobKeyDay, day, mobKeyErr, err)
				o.lastErr = err.Error()
			}
			return false
		}
		o.lastErr = ""
		o.tooLarge.Store(nil)
		delete(o.waitFor, day)
		confirmed[day] = true
		o.lag.Add(-1)
	}
	return false
}

// sealSeqOf is a manifest's seal_seq: the seq of the event that sealed its
// day; 0 when it names none. It reads the top-level members up to
// seal_seq only, which comes before the contacts (megabytes on a busy
// day).
func sealSeqOf(body []byte) uint64 {
	d := json.NewDecoder(bytes.NewReader(body))
	if t, err := d.Token(); err != nil || t != json.Delim('{') {
		return 0
	}
	for d.More() {
		k, err := d.Token()
		if err != nil {
			return 0
		}
		if k == "seal_seq" {
			var seq uint64
			if d.Decode(&seq) != nil {
				return 0
			}
			return seq
		}
		var skip json.RawMessage
		if d.Decode(&skip) != nil {
			return 0
		}
	}
	return 0
}
