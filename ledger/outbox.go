package ledger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Outbox tuning. The fields of Outbox carry them so tests can shorten them.
const (
	outboxWindow     = 1024            // publishes in flight, awaiting their ack
	outboxAckTimeout = 5 * time.Second // one ack's patience
	outboxTick       = 1 * time.Second // safety-net wake-up when no commit was signalled
	outboxMinBackoff = 50 * time.Millisecond
	outboxMaxBackoff = 5 * time.Second
	outboxFeed       = 256 // committed batches queued for the outbox before it reads bbolt instead
	outboxStallFor   = 30 * time.Second
	outboxLook       = 10 * time.Second // while idle, how often to check that the stream is still there
)

// Outbox mirrors the committed events of a Store to the JetStream stream
// RECLEDGER_EVENTS, in seq order, each exactly once, byte for byte.
//
// The outbox keeps no position of its own beside the data: its position is
// the last event of this site in the stream. At start, and after every
// publish error, timeout or reconnect, it reads that tail (the last message
// on recledger.events.{site}.>), checks that it is the store's event at that
// seq, and resumes at the next seq. The first publish after a resume carries
// the expectation "the last message on recledger.events.{site}.> is the tail
// I read" (Nats-Expected-Last-Subject-Sequence with that wildcard as the
// subject) and is awaited alone; so if anything landed after the tail was
// read (a publish of an earlier session still in flight), the server refuses
// it and the outbox reads the tail again. Later publishes of the session go
// on the same connection after it, so they cannot overtake the stale ones.
// Thus nothing is published twice and nothing is skipped, whatever the
// deduplication window; Nats-Msg-Id (the ULID) is a second line of defence.
// Async publishes are never retried by the client (a retry would land
// behind later messages); and after an interrupted session the outbox
// checks that what landed beyond its last in-order ack has no hole (one
// refused message followed by stored ones), which it could not fill in
// order and reports as a mismatch. A duplicate ack counts only if the
// stream really holds the event (see acked).
//
// When the stream's tail is ahead of the store, or is not the store's event
// at that seq, the stream belongs to another ledger: the outbox logs an
// error, publishes nothing, reports it through Mismatch, and checks again
// later. Appends never wait for the outbox; while JetStream is away, Lag
// grows and drains when it is back.
type Outbox struct {
	store *Store
	js    jetstream.JetStream
	site  string
	log   *slog.Logger
	wake  chan struct{}

	// feed carries the committed batches from the writer's hook to Run, so
	// the outbox publishes the envelopes the writer has in memory instead of
	// reading them back from bbolt. The hook never blocks: when feed is
	// full it drops the batch, and Run, seeing the gap, reads bbolt.
	feed     chan []Envelope
	fed      atomic.Uint64 // last seq the hook saw
	firstFed atomic.Uint64 // first seq the hook saw; 0 before the first commit
	fromDB   atomic.Uint64 // events read back from bbolt to be published

	confirmed atomic.Uint64 // last seq known to be in the stream
	known     atomic.Bool   // confirmed was read from the stream (Holds, or a session's look at its tail)
	published atomic.Uint64 // events this outbox published and saw acknowledged
	mismatch  atomic.Pointer[error]
	gap       atomic.Pointer[error] // the stream lacks the site's first events (checkFirst); publishing goes on
	fewer     atomic.Pointer[error] // the streams keep fewer replicas than asked (ErrFewerReplicas); publishing goes on
	lost      atomic.Uint64         // times a stream that held events was found gone
	lostAt    atomic.Int64          // when last, Unix ns
	stall     atomic.Pointer[stall] // sessions failing without progress, since when
	waitSince atomic.Int64          // since when committed events have waited with no publish confirmed, Unix ns; 0: none wait, or not known
	stallFor  time.Duration         // how long before Mismatch reports a stall
	look      time.Duration         // outboxLook
	firstAt   time.Time             // the last checkFirst from idle; Run's
	lookedAt  time.Time             // the last check that the stream is there; Run's

	window     int
	ackTimeout time.Duration
	tick       time.Duration
	minBackoff time.Duration
	maxBackoff time.Duration

	pubOnce sync.Once
	pub     jetstream.JetStream

	// Mended ends the running session through endSession and cuts the
	// wait before the next through mended.
	sessionMu  sync.Mutex
	endSession context.CancelFunc // the running session's; nil between sessions
	mended     chan struct{}

	replicas int                     // > 0: create missing streams with this many replicas
	ensured  bool                    // the streams were checked (EnsureStreams) since the last failed session; external streams only
	capture  string                  // the streams' capture prefix (PublishUnder); "" for the public subjects
	steady   func() (release func()) // CreateSteadily; nil: no guard

	// The last event acknowledged in order, and its stream seq; only the
	// Run goroutine touches them.
	lastSeq, lastStreamSeq uint64

	// streamMax is the events stream's max_msg_size as last read (each
	// session, and by checkFirst's count every look); 0 when it has none.
	// Run's.
	streamMax int64
}

// NewOutbox returns an outbox for store's events of site. It subscribes to
// the store's commits at once (call it before the first Append); Run does
// the publishing.
func NewOutbox(store *Store, js jetstream.JetStream, site string, log *slog.Logger) *Outbox {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	o := &Outbox{
		store:      store,
		js:         js,
		site:       site,
		log:        log.With(jsLogKeyComponent, "outbox", jsLogKeySite, site),
		wake:       make(chan struct{}, 1),
		mended:     make(chan struct{}, 1),
		feed:       make(chan []Envelope, outboxFeed),
		window:     outboxWindow,
		ackTimeout: outboxAckTimeout,
		tick:       outboxTick,
		minBackoff: outboxMinBackoff,
		maxBackoff: outboxMaxBackoff,
		stallFor:   outboxStallFor,
		look:       outboxLook,
	}
	store.Subscribe(o.notify)
	return o
}

// notify is the store's commit hook. It runs in the writer goroutine and
// must never block: it queues the batch for Run if there is room (Run reads
// bbolt for what it finds missing), and a wake-up already pending is enough.
func (o *Outbox) notify(envs []Envelope) {
	if len(envs) == 0 {
		return
	}
	select {
	case o.feed <- envs:
	default:
	}
	o.firstFed.CompareAndSwap(0, envs[0].Seq)
	o.fed.Store(envs[len(envs)-1].Seq)
	if o.waitSince.Load() == 0 {
		o.waitSince.CompareAndSwap(0, time.Now().UnixNano())
	}
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// CreateStreams makes the outbox create the streams (EnsureStreams with
// replicas) when it finds them missing, as when JetStream was not
// reachable at start or its store was lost. Call it before Run. Without
// it, the outbox waits for someone else to create them.
func (o *Outbox) CreateStreams(replicas int) { o.replicas = max(replicas, 1) }

// CreateSteadily makes the outbox look for a stream found missing again,
// and create it, only while steady holds (Embedded.Steady): not while the
// embedded server's JetStream is reading its streams back. Call it before
// Run.
func (o *Outbox) CreateSteadily(steady func() (release func())) { o.steady = steady }

// PublishUnder makes the outbox publish on the subjects under capture, the
// prefix the embedded server's streams take messages on
// (Embedded.Capture), and create missing streams so. Call it before Run.
func (o *Outbox) PublishUnder(capture string) { o.capture = capture }

// Holds tells the outbox, before Run, that the stream was seen to hold
// the site's events through seq (at the server's start), so that Lag is
// the true lag before Run's own first look at the stream, not the whole
// ledger. Run's looks replace it.
func (o *Outbox) Holds(seq uint64) {
	o.confirmed.CompareAndSwap(0, seq)
	o.known.Store(true)
}

// LagKnown reports whether Lag is exact: what the stream holds was read
// (at start, Holds, or by a session). Until then Lag counts every event
// committed, an upper bound.
func (o *Outbox) LagKnown() bool { return o.known.Load() }

// Lag is the number of committed events not yet confirmed in the stream.
func (o *Outbox) Lag() uint64 {
	head, _ := o.store.Head()
	c := o.confirmed.Load()
	if c >= head {
		return 0
	}
	return head - c
}

// Published is the number of events this outbox published and saw acknowledged.
func (o *Outbox) Published() uint64 { return o.published.Load() }

// Confirmed is the last seq known to be in the stream.
func (o *Outbox) Confirmed() uint64 { return o.confirmed.Load() }

// Mismatch is nil, or why the outbox cannot go on: an error wrapping
// ErrMismatch when the stream holds events of another ledger and the
// outbox has stopped publishing, ErrTooLarge while the next event is
// larger than the NATS server or the events stream takes, or errStalled
// when events wait and no publish has gone through for a while
// (JetStream out of disk space, a stream that cannot be created as
// configured, a server away).
func (o *Outbox) Mismatch() error {
	if p := o.mismatch.Load(); p != nil {
		return *p
	}
	if at := o.lostAt.Load(); at != 0 && time.Since(time.Unix(0, at)) < lostShown {
		return fmt.Errorf("outbox: %w: %d times since the server started, last %s ago; it is refilled from the ledger each time. "+
			"A client allowed to use JetStream's API can have JetStream delete or purge it, and a limit of the stream (max_age, max_msgs …: the start's log says) cuts it (docs/clients.md)",
			errStreamDeleted, o.lost.Load(), time.Since(time.Unix(0, at)).Round(time.Second))
	}
	if p := o.gap.Load(); p != nil {
		return *p
	}
	if p := o.fewer.Load(); p != nil {
		return *p
	}
	if st := o.stall.Load(); st != nil {
		if d := time.Since(st.since); d >= o.stallFor {
			if lag := o.Lag(); lag > 0 {
				why := fmt.Sprintf("after a failed write (a full disk, a file it may not write), the embedded NATS server's JetStream is restarted once its file system has %d MiB free; the log's jetstream-mender lines say how that goes", DefaultMendFree>>20)
				if o.steady == nil {
					// An external NATS: a full disk is one cause of several
					// (a walk served on another site's embedded NATS, which
					// refuses other servers, and read of a full disk).
					why = "an external NATS: check that it is up with JetStream, has room, and lets this server's user publish the site's events and use the JetStream API"
				}
				return fmt.Errorf("outbox: %w: the mirror has not advanced for %s and is %d events behind (%s): %v",
					errStalled, d.Round(time.Second), lag, why, st.err)
			}
		}
	}
	return nil
}

// Mended tells the outbox that JetStream was restarted (Mender): a
// session stalled on the JetStream from before is ended, where it would
// have waited out its acks' timeout, and the next begins at once, not
// after the backoff of the failed ones. It never blocks.
func (o *Outbox) Mended() {
	if o.stall.Load() != nil {
		o.sessionMu.Lock()
		if o.endSession != nil {
			o.endSession()
		}
		o.sessionMu.Unlock()
	}
	select {
	case o.mended <- struct{}{}:
	default:
	}
}

// Run publishes until ctx is done, then returns nil. It is the outbox's
// only goroutine; run it once.
func (o *Outbox) Run(ctx context.Context) error {
	if err := validSite(o.site); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	backoff := o.minBackoff
	var told time.Time // the start of the stall last told in the log
	for {
		progressed, ended, err := o.runSession(ctx)
		if ctx.Err() != nil {
			return nil
		}
		switch prev := o.stall.Load(); {
		case progressed:
			o.unstall()
		case prev == nil:
			o.stall.Store(&stall{since: o.waitingSince(), err: err})
		default:
			o.stall.Store(&stall{since: prev.since, err: err})
		}
		// A stall long enough for /readyz is told in the log once, with
		// what to check: a walk's log held only the sessions' errors.
		if st := o.stall.Load(); st != nil && !st.since.Equal(told) {
			if why := o.Mismatch(); errors.Is(why, errStalled) {
				told = st.since
				o.log.Warn("outbox stalled: events wait for the mirror; appends go on in the ledger, and the mirror catches up once JetStream takes them", jsLogKeyErr, why)
			}
		}
		if progressed {
			backoff = o.minBackoff
			if p := o.mismatch.Load(); p != nil && (errors.Is(*p, ErrTooLarge) || errors.Is(*p, ErrInvalid)) {
				o.mismatch.CompareAndSwap(p, nil)
			}
		}
		if ended {
			o.log.Info("outbox: resuming from the stream tail after a restart of JetStream")
			backoff = o.minBackoff
			continue
		}
		wait := backoff
		if errors.Is(err, ErrMismatch) || errors.Is(err, ErrCorrupt) {
			if prev := o.mismatch.Swap(&err); prev == nil || (*prev).Error() != err.Error() {
				o.log.Error("outbox stopped: the stream does not continue this ledger", jsLogKeyErr, err)
			}
			wait = o.maxBackoff
		} else if errors.Is(err, ErrTooLarge) {
			// Events go in order: none passes this one until the server
			// takes it. Shown on /readyz as the outbox's problem.
			if prev := o.mismatch.Swap(&err); prev == nil || (*prev).Error() != err.Error() {
				o.log.Error("outbox waiting: an event is larger than the NATS server or the events stream takes", jsLogKeyErr, err)
			}
			wait = o.maxBackoff
		} else if errors.Is(err, ErrInvalid) {
			// A stream the NATS server will not create as configured:
			// said once, on /readyz meanwhile, tried again now and then
			// (the server may be made a cluster).
			if prev := o.mismatch.Swap(&err); prev == nil || (*prev).Error() != err.Error() {
				o.log.Error("outbox waiting: the NATS server refuses the stream as configured; appends go on in the ledger, and are mirrored once it takes it", jsLogKeyErr, err)
			}
			wait = o.maxBackoff
		} else {
			o.log.Warn("outbox: publishing interrupted, resuming from the stream tail", jsLogKeyErr, err, jsLogKeyBackoff, wait)
			backoff = min(2*backoff, o.maxBackoff)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-o.mended:
			t.Stop()
			backoff = o.minBackoff
		case <-t.C:
		}
	}
}

// publisher is the JetStream context the outbox publishes with: its own,
// on the caller's connection, so its in-flight limit and ack timeout are
// the outbox's and no one else's pending acks count against them.
func (o *Outbox) publisher() jetstream.JetStream {
	o.pubOnce.Do(func() {
		o.pub = o.js
		nc := o.js.Conn()
		if nc == nil {
			return
		}
		base := o.js.Options()
		opts := []jetstream.JetStreamOpt{
			jetstream.WithPublishAsyncMaxPending(o.window + 1),
			jetstream.WithPublishAsyncTimeout(o.ackTimeout),
		}
		var pub jetstream.JetStream
		var err error
		switch {
		case base.Domain != "":
			pub, err = jetstream.NewWithDomain(nc, base.Domain, opts...)
		case base.APIPrefix != "":
			pub, err = jetstream.NewWithAPIPrefix(nc, base.APIPrefix, opts...)
		default:
			pub, err = jetstream.New(nc, opts...)
		}
		if err == nil {
			o.pub = pub
		}
	})
	return o.pub
}
