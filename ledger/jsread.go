package ledger

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// jsReadBatch is how many messages the ordered consumer keeps buffered.
const jsReadBatch = 4096

// ScanJetStream calls fn with every event of site in the stream with
// seq > after, in order, up to the site's last message at the time of the
// call, decoded with Decode (Raw = the message bytes, fn's to keep). It
// reads with an ordered consumer filtered on recledger.events.{site}.>.
//
// The events must form the ledger: seqs from 1 without gap or repeat, each
// prev the hash of the one before; otherwise the scan stops with an error
// wrapping ErrChainBroken (or ErrCorrupt for bytes that do not decode).
// An error from fn stops the scan and is returned as is.
func ScanJetStream(ctx context.Context, js jetstream.JetStream, site string, after uint64, fn func(Envelope) error) error {
	if err := validSite(site); err != nil {
		return fmt.Errorf("scan jetstream: %w", err)
	}
	tail, err := readTail(ctx, js, site)
	if err != nil {
		return fmt.Errorf("scan jetstream: %w", err)
	}
	if tail.seq == 0 || tail.seq <= after {
		return nil
	}
	cons, err := js.OrderedConsumer(ctx, EventsStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{siteEventsFilter(site)},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("scan jetstream: consumer: %w: %v", ErrUnavailable, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(jsReadBatch))
	if err != nil {
		return fmt.Errorf("scan jetstream: messages: %w: %v", ErrUnavailable, err)
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()

	var prev Envelope
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("scan jetstream: next: %w: %v", ErrUnavailable, err)
		}
		md, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("scan jetstream: metadata: %w: %v", ErrUnavailable, err)
		}
		e, err := Decode(m.Data())
		if err != nil {
			return fmt.Errorf("scan jetstream: stream seq %d: %w", md.Sequence.Stream, err)
		}
		if e.Seq != prev.Seq+1 {
			return fmt.Errorf("scan jetstream: stream seq %d: %w: seq %d after %d", md.Sequence.Stream, ErrChainBroken, e.Seq, prev.Seq)
		}
		if e.Prev != prev.Hash {
			return fmt.Errorf("scan jetstream: seq %d: %w: prev is not the hash of seq %d", e.Seq, ErrChainBroken, prev.Seq)
		}
		if e.Seq > after {
			if err := fn(e); err != nil {
				return err
			}
		}
		if md.Sequence.Stream >= tail.streamSeq {
			return nil
		}
		prev = Envelope{Seq: e.Seq, Hash: e.Hash}
	}
}
