package ledger

import "errors"

// Sentinel errors. Callers wrap them with the operation
// (fmt.Errorf("append: %w", ErrClosed)); the HTTP layer maps them to status
// codes in one function (ingest.statusOf).
var (
	// ErrClosed: the store was closed; nothing more can be appended.
	ErrClosed = errors.New("ledger closed")
	// ErrUnavailable: the ledger cannot take writes now (disk, I/O error,
	// its file locked), or a NATS server or stream cannot be reached. The
	// wrapping error names which.
	ErrUnavailable = errors.New("unavailable")
	// ErrFewerReplicas: a stream takes the site's messages, with fewer
	// replicas than asked (a cluster that cannot place that many).
	ErrFewerReplicas = errors.New("the stream keeps fewer replicas than asked")
	// ErrStreamLimits: a stream takes the site's messages, but a limit
	// of its configuration (an age, a count, a size, work-queue
	// retention, memory storage) removes them by itself: the mirror
	// cannot hold the ledger.
	ErrStreamLimits = errors.New("the stream removes messages by itself")
	// ErrCorrupt: stored bytes do not decode or do not match their hash.
	ErrCorrupt = errors.New("ledger corrupt")
	// ErrChainBroken: an event's prev is not the previous event's hash, or seqs have a gap.
	ErrChainBroken = errors.New("hash chain broken")
	// ErrUnknownVersion: an event was written by newer code than this.
	ErrUnknownVersion = errors.New("unknown event version (written by a newer build of recledger: serve and read this ledger with that build or a later one)")
	// ErrNotFound: the thing asked for does not exist (user, contact, day, seq).
	ErrNotFound = errors.New("not found")
	// ErrInvalid: input that does not satisfy the contract; wrap with the field at fault.
	ErrInvalid = errors.New("invalid input")
	// ErrConflict: the request is valid but cannot be done in the current state
	// (e.g. a day already sealed).
	ErrConflict = errors.New("conflict")
	// ErrMismatch: two copies of the ledger (bbolt, JetStream) differ.
	ErrMismatch = errors.New("copies differ")
	// ErrUnordered: a read that hands rows over in the order of their
	// events' times met one out of that order (a ledger whose times go
	// back, which Store never writes); the sorted, whole answer still
	// exists (projections.State.EachPause, Pauses).
	ErrUnordered = errors.New("out of time order")
	// ErrRefused: a NATS server refused this program's connection for its
	// credentials (a token missing, unknown, or of a role without access).
	ErrRefused = errors.New("refused")
	// ErrTooLarge: a message is larger than the NATS server takes
	// (max_payload) or its stream stores (max_msg_size); publishing
	// waits until they are raised.
	ErrTooLarge = errors.New("larger than the NATS server or stream takes")
	// ErrLocked: another process holds the ledger file's lock (a running
	// serve); Open wraps it with ErrUnavailable.
	ErrLocked = errors.New("the file is locked by another process")
)
