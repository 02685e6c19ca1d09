package ledger

import (
	"bytes"
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// The outbox's checks that the stream holds what the ledger does: its
// tail (checkTail), its beginning and count (checkFirst), the run after
// an interrupted session (checkRun) and a duplicate's bytes
// (checkDuplicate). A difference that cannot be refilled in order is the
// outbox's problem (Mismatch), never papered over.

// checkTail makes sure the stream's tail is the store's event at that seq.
func (o *Outbox) checkTail(ctx context.Context, tail streamTail) error {
	if tail.seq == 0 {
		return nil
	}
	head, _ := o.store.Head()
	if tail.seq > head {
		return fmt.Errorf("outbox: %w: stream holds seq %d, ledger head is %d", ErrMismatch, tail.seq, head)
	}
	e, err := o.store.Get(ctx, tail.seq)
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	if !bytes.Equal(e.Raw, tail.raw) {
		return fmt.Errorf("outbox: %w: stream's seq %d differs from the ledger's", ErrMismatch, tail.seq)
	}
	return nil
}

// checkFirst looks at the site's first message in the stream: it must be
// the ledger's seq 1 when the stream holds any. A stream purged, or cut by
// a limit its operator set, keeps its tail, and the outbox would go on
// publishing after it while the mirror silently lacks the beginning
// (restore and replay from it stop at the hole). That cannot be refilled
// in order; it is shown as the outbox's problem, logged once, and
// publishing goes on.
func (o *Outbox) checkFirst(ctx context.Context, pub jetstream.JetStream, tail streamTail) {
	if tail.seq == 0 {
		o.gap.Store(nil)
		return
	}
	tctx, cancel := context.WithTimeout(ctx, o.ackTimeout)
	defer cancel()
	m, err := getDirect(tctx, pub, directOne{Seq: 1, NextFor: siteEventsFilter(o.site)})
	if err != nil || m == nil {
		return // cannot tell now; looked at again at the next session
	}
	e, err := Decode(m.Data)
	if err == nil && e.Seq == 1 {
		// The beginning is there; the middle may not be: a damaged block
		// of the stream's store loses the messages in it silently (a crash
		// walk's mirror lacked 7,763 events, and nothing said so). The
		// stream holds at least every event confirmed, when whole.
		if n, ok := o.countSite(tctx, pub); ok && n < tail.seq {
			gap := fmt.Errorf("outbox: %w: the stream holds %d of this site's events where the ledger's first %d were confirmed in it: events between its first and last are missing "+
				"(a damaged store, or messages removed), and cannot be put back in order; recledger verify names the first; to refill the mirror, delete the stream %s "+
				"(every site's server sharing it refills its own; for the embedded server, stop it and delete DIR/jetstream)", ErrMismatch, n, tail.seq, EventsStream)
			if prev := o.gap.Swap(&gap); prev == nil || (*prev).Error() != gap.Error() {
				o.log.Error("outbox: the mirror lacks events of the site", jsLogKeyErr, gap)
			}
			return
		}
	}
	if err != nil || e.Seq == 1 {
		if o.gap.Swap(nil) != nil {
			o.log.Info("outbox: the stream holds the site's events from seq 1 again")
		}
		return
	}
	gap := fmt.Errorf("outbox: %w: the stream's first event of this site is seq %d: the events before it were removed (a purge, or a limit set on the stream), and cannot be put back in order; "+
		"to refill the mirror, delete the stream %s (every site's server sharing it refills its own), then check with recledger verify", ErrMismatch, e.Seq, EventsStream)
	if prev := o.gap.Swap(&gap); prev == nil || (*prev).Error() != gap.Error() {
		o.log.Error("outbox: the mirror lacks the site's first events", jsLogKeyErr, gap)
	}
}

// countSite is how many messages the events stream holds under the
// site's subjects; false when it cannot tell now.
func (o *Outbox) countSite(ctx context.Context, pub jetstream.JetStream) (uint64, bool) {
	st, err := pub.Stream(ctx, EventsStream)
	if err != nil {
		return 0, false
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(siteEventsFilter(o.site)))
	if err != nil {
		return 0, false
	}
	o.noteStream(info) // every look, under traffic too
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n, true
}

// checkRun makes sure that what landed in the stream after the last
// in-order ack of an interrupted session has no hole: publishes are
// pipelined, so one refused message could be followed by stored ones.
// A hole cannot be filled in order; it is reported as a mismatch.
func (o *Outbox) checkRun(ctx context.Context, js jetstream.JetStream, tail streamTail) error {
	if o.lastStreamSeq == 0 || tail.seq <= o.lastSeq || tail.streamSeq <= o.lastStreamSeq {
		return nil
	}
	tctx, cancel := context.WithTimeout(ctx, o.ackTimeout)
	defer cancel()
	want := o.lastSeq + 1
	return readSite(tctx, js, o.site, o.lastStreamSeq+1, tail.streamSeq, nil, func(_ uint64, e Envelope) error {
		if want > tail.seq {
			return errStopRead // published after the tail was read
		}
		if e.Seq != want {
			return fmt.Errorf("outbox: %w: stream lacks seq %d, holds seq %d after it", ErrMismatch, want, e.Seq)
		}
		want++
		return nil
	})
}

// checkDuplicate makes sure the stream holds p's bytes at streamSeq.
func (o *Outbox) checkDuplicate(ctx context.Context, p pendingAck, streamSeq uint64) error {
	tctx, cancel := context.WithTimeout(ctx, o.ackTimeout)
	defer cancel()
	s, err := o.publisher().Stream(tctx, EventsStream)
	if err != nil {
		return fmt.Errorf("publish seq %d: duplicate check: %w: %v", p.seq, ErrUnavailable, err)
	}
	m, err := s.GetMsg(tctx, streamSeq)
	if err != nil || !bytes.Equal(m.Data, p.raw) {
		return fmt.Errorf("publish seq %d: %w: stream remembers its id but does not hold it at %d; waiting for the deduplication window", p.seq, ErrUnavailable, streamSeq)
	}
	return nil
}
