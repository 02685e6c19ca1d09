// Package replay rebuilds the projections by folding a ledger's events, from
// bbolt or from the JetStream mirror: the whole history or up to a point in
// it (Until), with a human trace of what each event changed, optionally
// filtered to one user. It also keeps the server's restarts fast: a
// Checkpointer saves the live state now and then, and Load starts from the
// newest checkpoint of the current projections.Version and replays only the
// tail.
//
// replay imports ledger and projections only. It does no flag parsing and
// no terminal handling beyond the optional progress bar (NewProgress).
package replay
