package ledger

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// A session of the outbox: from one connection's view of the stream to
// the first failure. It makes sure the streams exist, reads the stream's
// tail for this site, checks it against the ledger, resumes after it, and
// idles while nothing is committed, watching that the stream is still there.

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

// streamTail is the last event of a site in the stream.
type streamTail struct {
	seq       uint64 // the event's ledger seq; 0 when the site has none
	streamSeq uint64 // its sequence in the stream
	raw       []byte
	last      uint64   // the stream seq of the site's last message, foreign or not
	foreign   []uint64 // stream seqs of the foreign messages after the event, last first
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
	created := false
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
			created = true
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
	// The largest message the stream stores: an operator's stream may
	// have a max_msg_size. Not known, the last one read stands.
	if st, err := pub.Stream(tctx, EventsStream); err == nil {
		o.noteStream(st.CachedInfo())
	}
	if tail.seq < o.confirmed.Load() && !created {
		// The stream lost events it had taken: deleted while events were
		// being published, and made again by ensureStreams; purged; or its
		// last writes lost in a crash. (A stream found missing here was
		// counted as it was made again.)
		o.noteRemoved()
	}
	o.lastSeq, o.lastStreamSeq = tail.seq, tail.streamSeq
	// An event too large stays the problem until it is in the stream
	// (publishFirst, or Run when a session finds it there): every session
	// until then begins with it, and it is told once.
	if p := o.mismatch.Load(); p != nil && !errors.Is(*p, ErrTooLarge) && o.mismatch.CompareAndSwap(p, nil) {
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
	// The expectation as headers (WithExpectLastSequenceForSubject's), so
	// that the size checked is the size sent.
	m := o.message(first)
	m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(tail.last, 10))
	m.Header.Set(jetstream.ExpectedLastSubjSeqSubjHeader, siteEventsFilter(o.site))
	// As the pipeline does: the client would refuse it as a passing
	// error, and the event's case would never be the outbox's problem.
	if err := o.tooLarge(first, m); err != nil {
		return err
	}
	tctx, cancel := context.WithTimeout(ctx, o.ackTimeout)
	ack, err := pub.PublishMsg(tctx, m)
	cancel()
	if err != nil {
		return fmt.Errorf("publish seq %d: %w", first.Seq, err)
	}
	if err := o.acked(ctx, pendingAck{seq: first.Seq, raw: first.Raw}, ack); err != nil {
		return err
	}
	// An event found too large begins every session until it is taken:
	// this is where it is.
	if p := o.mismatch.Load(); p != nil && errors.Is(*p, ErrTooLarge) && o.mismatch.CompareAndSwap(p, nil) {
		o.log.Info("outbox: the event held back as too large is published", jsLogKeySeq, first.Seq)
	}
	return nil
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
