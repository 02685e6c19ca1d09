package ledger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
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

// errStreamDeleted is the outbox's problem for lostShown after it found
// the events stream gone.
var errStreamDeleted = errors.New("the events stream was deleted, or lost this site's events")

// lostShown is how long a lost stream stays the outbox's problem.
const lostShown = time.Minute

// noteLost counts a stream found gone.
func (o *Outbox) noteLost() {
	o.countLost("outbox: the events stream was deleted; creating it again and refilling it from the ledger (docs/clients.md)")
}

// noteRemoved counts a stream found without the site's events it had:
// made again by another site's server, purged, or cut by a limit of its
// own (the walk that found a 20 s max_age called a deleted stream).
func (o *Outbox) noteRemoved() {
	o.countLost("outbox: the events stream no longer holds this site's last events (made again by another site's server, purged, or cut by a limit of the stream); refilling it from the ledger (docs/clients.md)")
}

// countLost counts a stream found without the events it had, and says
// so with msg.
func (o *Outbox) countLost(msg string) {
	o.lost.Add(1)
	o.lostAt.Store(time.Now().UnixNano())
	o.log.Warn(msg, jsLogKeyCount, o.lost.Load())
}

// errStalled is the outbox's problem while JetStream takes no events.
var errStalled = errors.New("JetStream is not taking the events")

// stall is the outbox failing to publish without progress: since the
// first failure, and the last one.
type stall struct {
	since time.Time
	err   error
}

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
// larger than the NATS server takes, or errStalled when events wait and
// no publish has gone through for a while (JetStream out of disk
// space, a stream that cannot be created as configured, a server away).
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

// Stalled is how long events have waited with no publish going through;
// 0 when none wait, when one went through since, and while the outbox
// has stopped on a stream that does not continue the ledger or an event
// larger than the server takes (Mismatch; a restart of JetStream mends
// neither).
func (o *Outbox) Stalled() time.Duration {
	st := o.stall.Load()
	if st == nil || o.mismatch.Load() != nil || o.Lag() == 0 {
		return 0
	}
	return time.Since(st.since)
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

// runSession is one session, which Mended may end.
func (o *Outbox) runSession(ctx context.Context) (progressed, ended bool, err error) {
	sctx, end := context.WithCancel(ctx)
	defer end()
	o.sessionMu.Lock()
	o.endSession = end
	o.sessionMu.Unlock()
	progressed, err = o.session(sctx)
	o.sessionMu.Lock()
	o.endSession = nil
	o.sessionMu.Unlock()
	return progressed, sctx.Err() != nil && ctx.Err() == nil, err
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
				o.log.Error("outbox waiting: an event is larger than the NATS server takes", jsLogKeyErr, err)
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

// msgOverhead bounds what a published event adds to its bytes on the
// wire's payload: the Nats-Msg-Id header.
const msgOverhead = 128

// overPayload reports whether a message of n bytes is larger than the
// server nc is connected to takes, and that server's max_payload (0 when
// it is not known).
func overPayload(nc *nats.Conn, n int) (max int64, over bool) {
	max = nc.MaxPayload()
	return max, max > 0 && int64(n)+msgOverhead > max
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

// streamTail is the last event of a site in the stream.
type streamTail struct {
	seq       uint64 // the event's ledger seq; 0 when the site has none
	streamSeq uint64 // its sequence in the stream
	raw       []byte
	last      uint64   // the stream seq of the site's last message, foreign or not
	foreign   []uint64 // stream seqs of the foreign messages after the event, last first
}

// pendingAck is a publish awaiting its ack.
type pendingAck struct {
	seq uint64
	raw []byte
	f   jetstream.PubAckFuture
}

// createStreams creates the missing streams and reads the tail again.
func (o *Outbox) createStreams(ctx context.Context, pub jetstream.JetStream) (streamTail, error) {
	if o.confirmed.Load() > 0 || o.lastStreamSeq > 0 {
		o.noteLost()
	}
	o.log.Info("outbox: creating the streams")
	if err := EnsureStreamsCapturing(ctx, pub, o.site, o.replicas, o.capture); err != nil {
		return streamTail{}, err
	}
	return readTail(ctx, pub, o.site)
}

// session resumes at the stream's tail and publishes until an error or the
// end of ctx. progressed reports whether any publish was confirmed.
func (o *Outbox) session(ctx context.Context) (progressed bool, err error) {
	pub := o.publisher()
	defer func() {
		if err != nil {
			o.ensured = false
		}
	}()
	tail, progressed, err := o.resume(ctx, pub)
	if err != nil {
		return progressed, err
	}
	if err := o.publishFirst(ctx, pub, tail); err != nil {
		return progressed, err
	}
	p := &pipeline{o: o, pub: pub, next: tail.seq + 2, q: make([]pendingAck, 0, o.window)}
	defer func() {
		if len(p.q) > 0 {
			o.log.Debug("outbox: abandoning publishes in flight", jsLogKeyCount, len(p.q))
		}
	}()
	return true, p.run(ctx)
}

// ensureStreams checks, at the first session and after every failed one,
// that the streams take this site's events. An external cluster's streams
// may be shared by several sites' servers: one that made a lost stream
// again made it with its own site's subject only, and this site's
// publishes then find no stream. The embedded server's streams take this
// process's capture prefix, set at start: a start on a full disk could not
// set it, and every publish found no stream even once the disk had room (a
// full-disk walk). On the embedded server it waits until no restart of
// its JetStream is reading the streams back.
func (o *Outbox) ensureStreams(ctx context.Context, pub jetstream.JetStream) error {
	if o.replicas <= 0 || o.ensured {
		return nil
	}
	release := func() {}
	if o.steady != nil {
		release = o.steady()
	}
	err := EnsureStreamsCapturing(ctx, pub, o.site, o.replicas, o.capture)
	release()
	switch {
	case errors.Is(err, ErrInvalid):
		return err
	case errors.Is(err, ErrFewerReplicas) || errors.Is(err, ErrStreamLimits):
		if prev := o.fewer.Swap(&err); prev == nil || (*prev).Error() != err.Error() {
			o.log.Warn("outbox: the streams take this site's events, with fewer replicas than --replicas asks or limits that remove them", jsLogKeyErr, err)
		}
	case err == nil:
		if o.fewer.Swap(nil) != nil {
			o.log.Info("outbox: the streams have the replicas asked")
		}
	}
	o.ensured = true
	return nil
}

// resume reads the stream's tail (making the streams when they are
// missing, and taking out what other sites' servers left under this
// site's subjects), checks that it continues the ledger, and takes it as
// confirmed. progressed reports whether the tail is beyond what was
// confirmed before: the mirror advancing (publishes whose acks were lost,
// as in a restart of JetStream), though the session may publish nothing
// more.
func (o *Outbox) resume(ctx context.Context, pub jetstream.JetStream) (tail streamTail, progressed bool, err error) {
	tctx, cancel := context.WithTimeout(ctx, o.ackTimeout)
	defer cancel()
	if err := o.ensureStreams(tctx, pub); err != nil {
		return tail, false, err
	}
	tail, err = readTail(tctx, pub, o.site)
	if errors.Is(err, jetstream.ErrStreamNotFound) && o.replicas > 0 {
		release := func() {}
		if o.steady != nil {
			// Missing, or being read back by a restart of JetStream:
			// look again once no restart is in progress.
			release = o.steady()
			tail, err = readTail(tctx, pub, o.site)
		}
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			tail, err = o.createStreams(tctx, pub)
		}
		release()
	}
	for len(tail.foreign) > 0 && o.removeForeign(tctx, pub, tail) > 0 {
		tail, err = readTail(tctx, pub, o.site)
	}
	if err != nil {
		return tail, false, err
	}
	if err := o.checkTail(ctx, tail); err != nil {
		return tail, false, err
	}
	if err := o.checkRun(ctx, pub, tail); err != nil {
		return tail, false, err
	}
	o.checkFirst(ctx, pub, tail)
	o.lastSeq, o.lastStreamSeq = tail.seq, tail.streamSeq
	if o.mismatch.Swap(nil) != nil {
		o.log.Info("outbox: stream matches the ledger again")
	}
	if progressed = tail.seq > o.confirmed.Load(); progressed {
		o.unstall()
	}
	o.confirmed.Store(tail.seq)
	o.known.Store(true)
	return tail, progressed, nil
}

// publishFirst publishes the event after the tail alone, once committed,
// expecting the tail as the site's last message: a stream another
// publisher moved meanwhile refuses it.
func (o *Outbox) publishFirst(ctx context.Context, pub jetstream.JetStream, tail streamTail) error {
	next := tail.seq + 1
	for {
		head, _ := o.store.Head()
		if head >= next {
			break
		}
		if ok, err := o.idle(ctx); !ok {
			return ctx.Err()
		} else if err != nil {
			return err
		}
	}
	first, err := o.store.Get(ctx, next)
	if err != nil {
		return err
	}
	tctx, cancel := context.WithTimeout(ctx, o.ackTimeout)
	ack, err := pub.PublishMsg(tctx, o.message(first),
		jetstream.WithExpectLastSequenceForSubject(tail.last, siteEventsFilter(o.site)))
	cancel()
	if err != nil {
		return fmt.Errorf("publish seq %d: %w", first.Seq, err)
	}
	return o.acked(ctx, pendingAck{seq: first.Seq, raw: first.Raw}, ack)
}

// pipeline publishes the events from next on, in seq order, from the
// commit feed or, for what the feed does not hold, from bbolt: a bounded
// window in flight, acks awaited in order.
type pipeline struct {
	o    *Outbox
	pub  jetstream.JetStream
	q    []pendingAck // in flight, oldest first
	next uint64       // the seq to publish next
}

// run publishes until an error or the end of ctx.
func (p *pipeline) run(ctx context.Context) error {
	o := p.o
	for {
		select {
		case envs := <-o.feed:
			if err := p.fromFeed(ctx, envs); err != nil {
				return err
			}
			continue
		default:
		}
		if o.missing(p.next) {
			if err := p.catchUp(ctx); err != nil {
				return err
			}
			continue
		}
		for len(p.q) > 0 {
			if err := o.await(ctx, p.q[0]); err != nil {
				return err
			}
			p.q = p.q[1:]
		}
		p.q = p.q[:0]
		if len(o.feed) > 0 || o.missing(p.next) {
			continue
		}
		if ok, err := o.idle(ctx); !ok {
			return ctx.Err()
		} else if err != nil {
			return err
		}
	}
}

// fromFeed publishes a committed batch from the feed, skipping what was
// published already and reading from bbolt what a dropped batch held.
func (p *pipeline) fromFeed(ctx context.Context, envs []Envelope) error {
	for _, e := range envs {
		if e.Seq < p.next {
			continue // published already, from bbolt or an earlier session
		}
		if e.Seq > p.next { // a dropped batch lies between
			if err := p.catchUp(ctx); err != nil {
				return err
			}
			if e.Seq < p.next {
				continue
			}
			if e.Seq > p.next {
				return fmt.Errorf("outbox: seq %d: %w: committed but not in the ledger", p.next, ErrCorrupt)
			}
		}
		if err := p.publish(ctx, e); err != nil {
			return err
		}
	}
	return nil
}

// publish sends e, once the window has room, without waiting for its ack.
func (p *pipeline) publish(ctx context.Context, e Envelope) error {
	o := p.o
	for len(p.q) >= o.window {
		if err := o.await(ctx, p.q[0]); err != nil {
			return err
		}
		p.q = p.q[1:]
	}
	// No client-side retries: a retried message would land after the
	// ones sent behind it.
	if max, over := overPayload(o.js.Conn(), len(e.Raw)); over {
		return fmt.Errorf("publish seq %d: %w: the event is %d bytes, the server takes %d; raise its max_payload", e.Seq, ErrTooLarge, len(e.Raw), max)
	}
	f, err := p.pub.PublishMsgAsync(o.message(e), jetstream.WithRetryAttempts(0))
	if err != nil {
		return fmt.Errorf("publish seq %d: %w", e.Seq, err)
	}
	p.q = append(p.q, pendingAck{e.Seq, e.Raw, f})
	p.next = e.Seq + 1
	p.q, err = o.reap(ctx, p.q)
	return err
}

// catchUp publishes from bbolt what the feed does not hold: events
// committed before the outbox subscribed, and batches the hook dropped.
func (p *pipeline) catchUp(ctx context.Context) error {
	return p.o.store.ScanRaw(ctx, p.next-1, func(seq uint64, raw []byte) error {
		e, err := decodeStored(seq, raw)
		if err != nil {
			return err
		}
		p.o.fromDB.Add(1)
		return p.publish(ctx, e)
	})
}

// missing reports, when the feed is empty, whether committed events from
// next on must be read from bbolt: they were committed before the outbox
// subscribed, or the hook dropped them (it saw them, but the feed no
// longer holds them). Reading an event the feed still brings is harmless:
// Run skips what it has published.
func (o *Outbox) missing(next uint64) bool {
	if head, _ := o.store.Head(); head < next {
		return false
	}
	first := o.firstFed.Load()
	return first == 0 || next < first || o.fed.Load() >= next
}

// decodeStored decodes the event stored under seq.
func decodeStored(seq uint64, raw []byte) (Envelope, error) {
	e, err := Decode(raw)
	if err != nil {
		return Envelope{}, fmt.Errorf("outbox: seq %d: %w", seq, err)
	}
	if e.Seq != seq {
		return Envelope{}, fmt.Errorf("outbox: seq %d: %w: holds seq %d", seq, ErrCorrupt, e.Seq)
	}
	return e, nil
}

// idle waits for a commit, the safety-net tick or the end of ctx; false
// means ctx is done. Every o.look it also makes sure the stream is still
// there: one lost while nothing is appended (a JetStream store wiped)
// would otherwise show no lag, and be refilled only at the next append.
// Then it returns errStreamGone, and Run's next session creates and
// refills it.
func (o *Outbox) idle(ctx context.Context) (bool, error) {
	if now := time.Now(); now.Sub(o.firstAt) >= o.look {
		// Also under steady traffic, when the tick below never fires.
		o.firstAt = now
		o.checkFirst(ctx, o.publisher(), streamTail{seq: o.confirmed.Load()})
	}
	t := time.NewTimer(o.tick)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false, nil
	case <-o.wake:
		return true, nil
	case now := <-t.C:
		if now.Sub(o.lookedAt) < o.look {
			return true, nil
		}
		o.lookedAt = now
		tctx, cancel := context.WithTimeout(ctx, o.ackTimeout)
		defer cancel()
		_, err := o.publisher().Stream(tctx, EventsStream)
		if errors.Is(err, jetstream.ErrStreamNotFound) && o.steady != nil {
			// Or being read back by a restart of JetStream: look again
			// once none is in progress.
			release := o.steady()
			_, err = o.publisher().Stream(tctx, EventsStream)
			release()
		}
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			o.noteLost()
			o.confirmed.Store(0)
			return true, errStreamGone
		}
		if err == nil && o.capture == "" {
			// On a cluster shared by several sites, the stream may have
			// been lost and made again by another site's server: it is
			// there, without this site's events. Or they were removed
			// from it: a purge, or a limit of the stream.
			if tail, terr := readTail(tctx, o.publisher(), o.site); terr == nil && tail.seq < o.confirmed.Load() {
				o.noteRemoved()
				o.confirmed.Store(0)
				return true, errStreamGone
			}
		}
	}
	return true, nil
}

// errStreamGone ends a session whose stream has disappeared.
var errStreamGone = errors.New("outbox: the events stream is gone, or no longer holds this site's last events; refilling it from the ledger")

// message is the stream message of e: its stored bytes, its ULID as message id.
func (o *Outbox) message(e Envelope) *nats.Msg {
	return &nats.Msg{
		Subject: captured(EventSubject(o.site, e.Type), o.capture),
		Data:    e.Raw,
		Header:  nats.Header{jetstream.MsgIDHeader: []string{e.ID.String()}},
	}
}

// await waits for p's ack.
func (o *Outbox) await(ctx context.Context, p pendingAck) error {
	t := time.NewTimer(o.ackTimeout)
	defer t.Stop()
	select {
	case ack := <-p.f.Ok():
		return o.acked(ctx, p, ack)
	case err := <-p.f.Err():
		return fmt.Errorf("publish seq %d: %w", p.seq, err)
	case <-t.C:
		return fmt.Errorf("publish seq %d: %w", p.seq, jetstream.ErrAsyncPublishTimeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// reap takes the acks that have already arrived off the front of q.
func (o *Outbox) reap(ctx context.Context, q []pendingAck) ([]pendingAck, error) {
	for len(q) > 0 {
		select {
		case ack := <-q[0].f.Ok():
			if err := o.acked(ctx, q[0], ack); err != nil {
				return q, err
			}
			q = q[1:]
		default:
			return q, nil
		}
	}
	return q, nil
}

// acked records p as confirmed. A duplicate ack (the stream already knew
// the message id) counts only if the stream really holds those bytes at the
// acknowledged place: a message deleted from the stream stays in the
// deduplication window, and counting it would skip it for good. Then the
// session ends, and the event is published again once the window lets it.
func (o *Outbox) acked(ctx context.Context, p pendingAck, ack *jetstream.PubAck) error {
	if ack == nil || ack.Stream != EventsStream {
		return fmt.Errorf("publish seq %d: %w: acknowledged by stream %v", p.seq, ErrUnavailable, ack)
	}
	if ack.Duplicate {
		if err := o.checkDuplicate(ctx, p, ack.Sequence); err != nil {
			return err
		}
		o.log.Warn("outbox: stream already held the event", jsLogKeySeq, p.seq)
	}
	o.lastSeq, o.lastStreamSeq = p.seq, ack.Sequence
	o.confirmed.Store(p.seq)
	o.published.Add(1)
	o.unstall()
	// The events still waiting wait from now; none, when it was the last.
	now := time.Now().UnixNano()
	if p.seq >= o.fed.Load() {
		o.waitSince.Store(0)
		if o.fed.Load() > p.seq { // committed meanwhile
			o.waitSince.CompareAndSwap(0, now)
		}
	} else {
		o.waitSince.Store(now)
	}
	return nil
}

// waitingSince is when the events that wait began to wait with no
// publish confirmed: a stall is counted from there, not from the first
// session that failed, which ends only after its acks' timeout and the
// server's reconnect attempts (a walk's /readyz named a 30 s stall 42 s
// into an outage). Now, when that is not known.
func (o *Outbox) waitingSince() time.Time {
	now := time.Now()
	if w := o.waitSince.Load(); w != 0 && w < now.UnixNano() {
		return time.Unix(0, w)
	}
	return now
}

// unstall ends a stall: the mirror advanced, even before this session
// ends. One long enough to have been a problem on /readyz is said to be
// over (a walk saw a stall's WARN and no word when it ended).
func (o *Outbox) unstall() {
	if prev := o.stall.Swap(nil); prev != nil {
		if d := time.Since(prev.since); d >= o.stallFor {
			o.log.Info("outbox: the mirror advances again", jsLogKeyStalled, d.Round(time.Second), jsLogKeyLag, o.Lag())
		}
	}
}
