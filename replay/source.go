package replay

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/recledger/recledger/ledger"
)

// Source is a ledger to replay: it calls fn with every event whose seq is
// greater than after, in seq order, and stops at the first error fn
// returns (returning it).
type Source interface {
	Scan(ctx context.Context, after uint64, fn func(ledger.Envelope) error) error
}

var _ Source = (*ledger.Store)(nil)

// JetStreamSource reads a site's events from the RECLEDGER_EVENTS stream,
// the same bytes as the bbolt copy.
type JetStreamSource struct {
	JS   jetstream.JetStream
	Site string
}

var _ Source = JetStreamSource{}

// Scan reads the site's events after the given seq from the stream
// (ledger.ScanJetStream: batched direct gets, or an ordered consumer).
func (s JetStreamSource) Scan(ctx context.Context, after uint64, fn func(ledger.Envelope) error) error {
	return ledger.ScanJetStream(ctx, s.JS, s.Site, after, fn)
}

// Head returns the ledger seq of the site's last event in the stream (0
// when it holds none), e.g. for a progress bar's total.
func (s JetStreamSource) Head(ctx context.Context) (uint64, error) {
	return ledger.JetStreamHead(ctx, s.JS, s.Site)
}
