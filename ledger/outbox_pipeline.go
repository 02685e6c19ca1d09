package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The pipeline publishes committed events in seq order, async with at
// most window acks in flight, from the commit feed when it follows and
// from bbolt when it does not, and confirms each ack in order.

// messageBound is the largest message the server nc is connected to takes
// (max_payload) and a stream of max_msg_size streamMax (0: none) stores;
// byStream when the stream's is the smaller. 0 when neither is known.
func messageBound(nc *nats.Conn, streamMax int64) (max int64, byStream bool) {
	max = nc.MaxPayload()
	if streamMax > 0 && (max <= 0 || streamMax < max) {
		return streamMax, true
	}
	return max, false
}

// raiseBound says what bound max of messageBound is, on stream, and what
// raises it.
func raiseBound(stream string, max int64, byStream bool) string {
	if byStream {
		return fmt.Sprintf("stream %s stores messages of at most %d; raise its max_msg_size (nats stream edit %s --max-msg-size)", stream, max, stream)
	}
	return fmt.Sprintf("the server takes %d; raise its max_payload", max)
}

// fits reports whether m, its headers and data as the client sends them,
// is within bound max (0: none known).
func fits(m *nats.Msg, max int64) bool {
	return max <= 0 || int64(m.Size()-len(m.Subject)-len(m.Reply)) <= max
}

// tooLarge is ErrTooLarge, naming the bound and what raises it, when m, the
// message of e, is larger than the server it is connected to takes
// (max_payload) or the events stream stores (max_msg_size, an external
// cluster's setting); else nil. Both are checked before the event is sent:
// a message refused by the stream while the ones behind it are stored
// leaves a hole in the mirror that cannot be filled in order.
func (o *Outbox) tooLarge(e Envelope, m *nats.Msg) error {
	if max, byStream := messageBound(o.js.Conn(), o.streamMax); !fits(m, max) {
		return fmt.Errorf("publish seq %d: %w: the event is %d bytes, %s", e.Seq, ErrTooLarge, len(e.Raw), raiseBound(EventsStream, max, byStream))
	}
	return nil
}

// noteStream keeps what of the events stream's configuration publishing
// obeys: its max_msg_size.
func (o *Outbox) noteStream(info *jetstream.StreamInfo) {
	if info != nil {
		o.streamMax = max(int64(info.Config.MaxMsgSize), 0)
	}
}

// pendingAck is a publish awaiting its ack.
type pendingAck struct {
	seq uint64
	raw []byte
	f   jetstream.PubAckFuture
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
		if err := p.drain(ctx); err != nil {
			return err
		}
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
	m := o.message(e)
	if err := o.tooLarge(e, m); err != nil {
		// What was sent before it is confirmed first, so that the lag
		// counts the events held back, and the sessions after this one
		// find no progress to report.
		if derr := p.drain(ctx); derr != nil {
			return derr
		}
		return err
	}
	// No client-side retries: a retried message would land after the
	// ones sent behind it.
	f, err := p.pub.PublishMsgAsync(m, jetstream.WithRetryAttempts(0))
	if err != nil {
		return fmt.Errorf("publish seq %d: %w", e.Seq, err)
	}
	p.q = append(p.q, pendingAck{e.Seq, e.Raw, f})
	p.next = e.Seq + 1
	p.q, err = o.reap(ctx, p.q)
	return err
}

// drain awaits every ack in flight, in order.
func (p *pipeline) drain(ctx context.Context) error {
	for len(p.q) > 0 {
		if err := p.o.await(ctx, p.q[0]); err != nil {
			return err
		}
		p.q = p.q[1:]
	}
	p.q = p.q[:0]
	return nil
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
