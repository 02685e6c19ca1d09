package ledger

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"runtime/debug"
	"slices"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"golang.org/x/time/rate"
)

// Request states: a caller may abandon a request only while it is pending;
// once the writer has taken it, the caller gets the true result.
const (
	reqPending int32 = iota
	reqTaken
	reqAbandoned
)

// request is one Append or Import call handed to the writer goroutine.
type request struct {
	evs     []prepared // Append: events encoded by the caller
	imports []imported // Import: sealed envelopes checked by the caller
	state   atomic.Int32
	res     chan result // buffered 1; the writer sends exactly once

	// set by the writer while building a batch
	err        error
	start, end int // the request's envelopes in the batch
}

// result is what the writer sends back to a caller.
type result struct {
	envs []Envelope
	err  error
}

// prepared is an event whose type and data were encoded in the caller's
// goroutine, so a bad event fails only its own caller and the writer does
// no reflection.
type prepared struct {
	typ   Type
	qtype string // the type as a JSON string
	data  json.RawMessage
	buf   *[]byte // data's buffer when it came from Store.encPool: the writer puts it back once sealed
}

// size is the number of events a request adds.
func (r *request) size() int { return len(r.evs) + len(r.imports) }

// Append appends events to the ledger, in order and contiguous, and returns
// their envelopes once they are committed (fsynced) and every Subscribe
// hook has seen them. Concurrent calls are grouped into one transaction by
// the writer goroutine; a batch that cannot be committed fails every call
// in it with an error wrapping ErrUnavailable and leaves the ledger as it
// was. An event whose data cannot be encoded fails only its own call, with
// ErrInvalid, before reaching the writer.
//
// ctx is honoured only while the request waits to be taken by the writer:
// then Append returns ctx.Err() and nothing is appended. Once the writer has
// taken the request, Append waits for and returns the true outcome, so a
// caller never sees an error for an event that was in fact stored.
//
// Append is not idempotent: each call appends new events, so a client that
// retries a request whose answer it never got has it appended twice.
func (s *Store) Append(ctx context.Context, events ...Event) ([]Envelope, error) {
	if len(events) == 0 {
		return nil, nil
	}
	if err := s.writable("append"); err != nil {
		return nil, err
	}
	r := s.newRequest()
	for i, ev := range events {
		p, err := s.prepare(ev)
		if err != nil {
			s.recycle(r)
			return nil, fmt.Errorf("append event %d: %w", i, err)
		}
		r.evs = append(r.evs, p)
	}
	res, err := s.submit(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("append: %w", err)
	}
	return res, nil
}

// prepare is prepare, with commands and call signals encoded into a buffer
// of the Store's pool, which the writer takes back once it has copied the
// data into the envelope: that was a fifth of an append's garbage.
func (s *Store) prepare(ev Event) (prepared, error) {
	qt, err := quoteType(ev.Type)
	if err != nil || ev.Type == "" || !utf8.ValidString(string(ev.Type)) {
		return prepare(ev) // for its error
	}
	buf, _ := s.encPool.Get().(*[]byte)
	if buf == nil {
		buf = new([]byte)
	}
	b, ok := appendData((*buf)[:0], ev.Data)
	if !ok {
		s.encPool.Put(buf)
		return prepare(ev)
	}
	*buf = b
	return prepared{typ: ev.Type, qtype: qt, data: b, buf: buf}, nil
}

// prepare checks and encodes one event.
func prepare(ev Event) (prepared, error) {
	if ev.Type == "" || !utf8.ValidString(string(ev.Type)) {
		return prepared{}, fmt.Errorf("%w: event type %q", ErrInvalid, ev.Type)
	}
	qt, err := quoteType(ev.Type)
	if err != nil {
		return prepared{}, fmt.Errorf("%w: type: %v", ErrInvalid, err)
	}
	data, err := EncodeData(ev.Data)
	if err != nil {
		return prepared{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return prepared{typ: ev.Type, qtype: qt, data: data}, nil
}

// quoteType returns t as a JSON string, as json.Marshal writes it.
func quoteType(t Type) (string, error) {
	switch t {
	case TypeCommand:
		return `"command"`, nil
	case TypeCallSignal:
		return `"call_signal"`, nil
	case TypeConfig:
		return `"config"`, nil
	case TypeDayClosed:
		return `"day_closed"`, nil
	case TypeTimer:
		return `"timer"`, nil
	}
	b, err := json.Marshal(string(t))
	return string(b), err
}

// writable reports why the store cannot take writes, if it cannot.
func (s *Store) writable(op string) error {
	if s.ro {
		return fmt.Errorf("%s: %w: opened read-only", op, ErrUnavailable)
	}
	if err := s.broken.Load(); err != nil {
		return fmt.Errorf("%s: %w", op, *err)
	}
	return nil
}

// newRequest returns an empty request, reused when one is free: a request
// and its channel per Append were a good part of an append's garbage.
func (s *Store) newRequest() *request {
	if r, ok := s.reqPool.Get().(*request); ok {
		return r
	}
	return &request{res: make(chan result, 1)}
}

// recycle makes r, whose result has been received (or which never reached
// the writer), free for another call. An abandoned request is never
// recycled: it may still sit in the writer's queue.
func (s *Store) recycle(r *request) {
	clear(r.evs)
	r.evs, r.imports, r.err, r.start, r.end = r.evs[:0], nil, nil, 0, 0
	r.state.Store(reqPending)
	s.reqPool.Put(r)
}

// submit hands r to the writer and waits for its result. r is recycled
// unless it was abandoned: the caller must not use it afterwards.
func (s *Store) submit(ctx context.Context, r *request) ([]Envelope, error) {
	if err := ctx.Err(); err != nil {
		s.recycle(r)
		return nil, err
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		s.recycle(r)
		return nil, ErrClosed
	}
	// The queue is rarely full: try it without a select first (a select
	// on two channels costs more than the rest of the hand-over).
	select {
	case s.reqs <- r:
	default:
		select {
		case s.reqs <- r:
		case <-ctx.Done():
			s.mu.RUnlock()
			s.recycle(r)
			return nil, ctx.Err()
		}
	}
	s.mu.RUnlock()
	var res result
	if done := ctx.Done(); done == nil {
		res = <-r.res // a context that cannot end: nothing to wait for but the writer
	} else {
		select {
		case res = <-r.res:
		case <-done:
			if r.state.CompareAndSwap(reqPending, reqAbandoned) {
				return nil, ctx.Err()
			}
			res = <-r.res
		}
	}
	s.recycle(r)
	return res.envs, res.err
}

// writer is the one goroutine that writes events. Its fields are the
// committed tail; a batch works on copies and publishes them only after
// its transaction committed.
type writer struct {
	s       *Store
	ids     idGen
	seq     uint64
	prev    [32]byte // binary hash of the event at seq
	hasPrev bool     // false while the ledger is empty
	failLog rate.Sometimes

	// batch filling, see gather
	expect      int           // requests expected in the next batch
	lingerUntil time.Time     // gather waits for them until then
	lingerGap   time.Duration // …but not longer than this after the last arrival
	timer       *time.Timer

	release chan released // to the releaser goroutine, which run owns
}

// maxPooledData is the largest encoding buffer put back in the pool.
const maxPooledData = 4 << 10

// slabSize is the size of the byte slabs the writer encodes envelopes into.
const slabSize = 32 << 10

// maxLinger caps how long the writer waits for a batch to fill, and
// minLingerGap is the shortest silence that ends the wait (see gather).
const (
	maxLinger    = 4 * time.Millisecond
	minLingerGap = 50 * time.Microsecond
)

// run takes requests until Close, then commits what was already handed
// over and returns.
func (w *writer) run() {
	defer close(w.s.done)
	w.release = make(chan released, 1)
	releaserDone := make(chan struct{})
	go w.releaser(releaserDone)
	defer func() { close(w.release); <-releaserDone }()
	w.timer = time.NewTimer(time.Hour)
	w.timer.Stop()
	batch := make([]*request, 0, 64)
	for {
		select {
		case r := <-w.s.reqs:
			batch = w.gather(batch[:0], r, true)
			w.commit(batch)
		case <-w.s.stop:
			for {
				select {
				case r := <-w.s.reqs:
					batch = w.gather(batch[:0], r, false)
					w.commit(batch)
				default:
					return
				}
			}
		}
	}
}

// gather takes first and whatever else is waiting, up to MaxBatch events.
//
// Group commit alone settles into alternating half-full batches: while one
// batch is being fsynced the callers of the previous one are still
// returning, so the next batch starts with only part of them. So, shortly
// after a commit, gather expects the callers it just released to come
// back, plus those who arrived during the commit, and lingers for them:
// at most as long as the last commit took (at most maxLinger), and no
// longer than a quarter of that (at least minLingerGap) after the last
// caller arrived. The callers of a busy server come back one by one, as
// their HTTP answers are written and their next requests read; each one
// waited for is a share of an fsync saved. Callers that come back in a
// burst are all there at once, and a straggler behind a silence is left
// to the next batch, whose fsync it would otherwise delay. A lone
// appender never waits: it is the only one expected.
func (w *writer) gather(batch []*request, first *request, linger bool) []*request {
	n := 0
	take := func(r *request) {
		if r.state.CompareAndSwap(reqPending, reqTaken) {
			batch = append(batch, r)
			n += r.size()
		}
	}
	expect := w.expect
	take(first)
	for n < w.s.max {
		select {
		case r := <-w.s.reqs:
			take(r)
			continue
		default:
		}
		break
	}
	wait := time.Until(w.lingerUntil)
	if !linger || n >= w.s.max || len(batch) >= expect || wait <= 0 {
		return batch
	}
	gap := w.lingerGap
	w.timer.Reset(min(wait, gap))
	defer w.timer.Stop()
	for n < w.s.max && len(batch) < expect {
		select {
		case r := <-w.s.reqs:
			take(r)
			if !w.timer.Stop() {
				return batch
			}
			wait = time.Until(w.lingerUntil)
			if wait <= 0 {
				return batch
			}
			w.timer.Reset(min(wait, gap))
		case <-w.timer.C:
			return batch
		case <-w.s.stop:
			return batch
		}
	}
	return batch
}

// tail is the chain state a batch advances.
type tail struct {
	ids     idGen
	seq     uint64
	prev    [32]byte
	hasPrev bool
}

// commit writes batch in one read-write transaction, fsyncs it, calls the
// hooks and releases the callers.
func (w *writer) commit(batch []*request) {
	if len(batch) == 0 {
		return
	}
	start := time.Now()
	envs, t, err := w.write(batch)
	took := time.Since(start)
	// Those who arrived during the commit, and those about to be released.
	w.expect = len(w.s.reqs) + len(batch)
	w.lingerUntil = time.Now().Add(min(took, maxLinger))
	w.lingerGap = max(took/4, minLingerGap)
	if err != nil {
		// Every batch fails alike while the disk refuses writes: logged
		// every few seconds, not once a batch.
		w.failLog.Do(func() {
			w.s.log.Error("ledger write failed: nothing of it was stored, and its requests were answered 503; each new request tries again, "+
				"and writes go on once the file can be written (free space on its file system, or mend what refuses the write) (repeats are logged every 10 s)",
				logKeyRequests, len(batch), logKeyHead, w.seq, logKeyErr, err)
		})
		w.s.writeFail.Store(&err)
		w.reconcile()
		w.handOver(batch, nil, err)
		return
	}
	w.s.writeFail.Store(nil)
	w.ids, w.seq, w.prev, w.hasPrev = t.ids, t.seq, t.prev, t.hasPrev
	if len(envs) > 0 {
		w.s.commits.Add(1)
		w.s.committed.Add(uint64(len(envs)))
		last := envs[len(envs)-1]
		w.s.head.Store(&head{seq: last.Seq, hash: last.Hash, id: last.ID})
		w.s.hooksMu.Lock()
		hooks := w.s.hooks
		w.s.hooksMu.Unlock()
		for _, fn := range hooks {
			fn(envs)
		}
	}
	w.handOver(batch, envs, nil)
}

// released is a committed (or failed) batch whose callers the releaser
// answers.
type released struct {
	batch []*request
	envs  []Envelope
	err   error // the whole batch failed
}

// handOver gives the batch's callers to the releaser goroutine: waking
// hundreds of callers is a good part of a batch's work, and the writer
// can gather the next batch meanwhile. batch is copied: the writer reuses
// its slice.
func (w *writer) handOver(batch []*request, envs []Envelope, err error) {
	w.release <- released{batch: slices.Clone(batch), envs: envs, err: err}
}

// releaser answers the callers of each batch the writer hands over, until
// the writer closes the channel.
func (w *writer) releaser(done chan<- struct{}) {
	defer close(done)
	for rb := range w.release {
		for _, r := range rb.batch {
			switch {
			case rb.err != nil:
				r.res <- result{err: rb.err}
			case r.err != nil:
				r.res <- result{err: r.err}
			default:
				r.res <- result{envs: rb.envs[r.start:r.end:r.end]}
			}
		}
	}
}

// reconcile checks, after a failed batch, that the file's head is still
// the writer's. A commit can fail after bbolt made it visible (its last
// fsync failed): then the outcome is unknown, and appending on would
// overwrite or fork the chain, so appends stop until a restart reads the
// file again.
func (w *writer) reconcile() {
	h, err := w.s.readHead()
	if err == nil && h.seq == w.seq && h.id == w.ids.last {
		return
	}
	if err == nil {
		err = fmt.Errorf("file head is seq %d, writer's is %d", h.seq, w.seq)
	}
	err = fmt.Errorf("%w: a failed commit left the ledger head unknown; reopen the store: %v", ErrUnavailable, err)
	w.s.setBroken(err)
	w.s.log.Error("ledger appends stopped", logKeyErr, err)
}

// write builds and commits the batch's transaction. It returns the
// committed envelopes in seq order and the new tail; on error nothing was
// committed and the writer's state is untouched.
func (w *writer) write(batch []*request) (_ []Envelope, _ tail, err error) {
	t := tail{ids: w.ids, seq: w.seq, prev: w.prev, hasPrev: w.hasPrev}
	n, size := 0, 0 // events, and an upper bound of their encoded bytes
	for _, r := range batch {
		n += r.size()
		for _, p := range r.evs {
			size += len(p.data) + len(p.qtype) + envelopeOverhead
		}
	}
	now := w.s.now()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	tx, err := w.s.db.Begin(true)
	if err != nil {
		return nil, t, fmt.Errorf("%w: begin: %v", ErrUnavailable, err)
	}
	defer func() {
		// A damaged page that bbolt panics on (or a fault reading the
		// mapped file) fails the batch, as guarded does for the other
		// transactions, instead of ending the process.
		if r := recover(); r != nil {
			_ = tx.Rollback()
			err = fmt.Errorf("%w: %w: %v", ErrCorrupt, errDamaged, r)
		}
	}()
	b := tx.Bucket(bucketEvents)
	b.FillPercent = 1.0 // keys only ever grow: pack pages full
	envs := make([]Envelope, 0, n)
	keys := make([]byte, 8*n)
	var slab []byte
	enc := sealer{}
	for _, r := range batch {
		r.start = len(envs)
		if r.imports != nil {
			if r.err = t.checkImport(r.imports); r.err != nil {
				r.end = r.start
				continue
			}
		}
		for _, p := range r.evs {
			id, err := t.ids.next(now)
			if err != nil {
				tx.Rollback()
				return nil, t, fmt.Errorf("%w: %v", ErrUnavailable, err)
			}
			t.seq++
			need := len(p.data) + len(p.qtype) + envelopeOverhead
			if cap(slab)-len(slab) < need {
				// Envelopes go into shared slabs of at most slabSize (or
				// what the rest of the batch needs): they are handed out,
				// so slabs are never reused, and small ones avoid the
				// churn of large heap objects.
				slab = make([]byte, 0, max(need, min(size, slabSize)))
			}
			size -= need
			var e Envelope
			slab, e = enc.seal(slab, t.seq, id, p, &t.prev, t.hasPrev)
			if p.buf != nil && cap(*p.buf) <= maxPooledData {
				w.s.encPool.Put(p.buf)
			}
			t.hasPrev = true
			envs = append(envs, e)
		}
		for _, im := range r.imports {
			t.seq, t.prev, t.hasPrev, t.ids.last = im.env.Seq, im.hash, true, im.env.ID
			envs = append(envs, im.env)
		}
		r.end = len(envs)
	}
	if len(envs) == 0 { // only refused imports: nothing to write
		tx.Rollback()
		return nil, t, nil
	}
	for i := range envs {
		k := keys[8*i : 8*i+8 : 8*i+8]
		binary.BigEndian.PutUint64(k, envs[i].Seq)
		if err := b.Put(k, envs[i].Raw); err != nil {
			tx.Rollback()
			return nil, t, fmt.Errorf("%w: put seq %d: %v", ErrUnavailable, envs[i].Seq, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, t, fmt.Errorf("%w: commit: %v", ErrUnavailable, err)
	}
	return envs, t, nil
}
