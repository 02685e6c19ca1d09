package ledger

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/oklog/ulid/v2"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Bucket names of the bbolt file.
var (
	bucketEvents      = []byte("events")           // 8-byte big-endian seq → canonical envelope
	bucketCheckpoints = []byte("checkpoints")      // version → 8-byte seq, the state's SHA-256 (headSumMarker), the state or its parts
	bucketSections    = []byte("sections")         // section key → the section's bytes (see SaveCheckpoint)
	bucketHeadParts   = []byte("checkpoint_parts") // "version/seq/i" → part i of a large checkpoint's state
)

// DefaultMaxBatch is the most events the writer puts in one transaction
// when Options.MaxBatch is zero.
const DefaultMaxBatch = 4096

// DefaultSectionTxBytes is how many bytes of checkpoint sections, or of a
// large state's parts, one SaveCheckpoint transaction writes at most, but
// the last. Each transaction holds bbolt's write lock, and so every
// append, for its write and fsync (BenchmarkAppendDuringCheckpoint: 28 ms
// at worst while a 95 MB state is saved in 1 MiB parts, 1.5 s as one
// value; 16 MiB transactions gave about 0.4 s).
const DefaultSectionTxBytes = 1 << 20

// pageSize is the bbolt page size of a new ledger file (an existing file
// keeps its own). Events are about 0.5 KB and only ever appended: 16 KiB
// pages cut the writes per commit (bbolt writes page by page) fourfold.
const pageSize = 16 << 10

// initialMmap is the address space the writing store maps ahead of its
// file. bbolt grows its map by remapping, which waits for every read
// transaction to end: with this headroom a long one (a backup, Tx.WriteTo)
// holds up no append until the file passes 8 GiB, and then only at 1 GiB
// steps. It is address space, not memory: the pages beyond the file are
// never touched.
const initialMmap = 8 << 30

// readOnlyTimeout bounds how long a read-only Open waits for the file lock.
const readOnlyTimeout = 500 * time.Millisecond

// Log attribute keys.
const (
	logKeyPath     = "path"
	logKeyRequests = "requests" // the append calls of a failed write
	logKeyHead     = "head_seq" // the last event committed
	logKeyErr      = "err"
)

// Options configures Open. The zero value is usable.
type Options struct {
	// Logger receives the store's few log lines; nil discards them.
	Logger *slog.Logger
	// Now is the clock for event IDs and times; nil means time.Now.
	Now func() time.Time
	// MaxBatch caps the events committed in one transaction; 0 means
	// DefaultMaxBatch. A single Append larger than MaxBatch is still
	// committed whole, in its own transaction.
	MaxBatch int
	// ReadOnly opens the file with a shared lock and refuses every write.
	// bbolt's writer holds an exclusive lock, so a read-only Open fails
	// (after a short timeout, with ErrUnavailable) while a live server has
	// the file open, and a server cannot open it while a read-only Store
	// holds it: to read beside a live server use its API or JetStream.
	ReadOnly bool
}

// head is the ledger's committed tail: its seq, hash and last ID.
type head struct {
	seq  uint64
	hash string
	id   ulid.ULID
}

// Store is the durable ledger on bbolt. Its methods are safe for concurrent
// use. See the package documentation.
type Store struct {
	db   *bolt.DB
	log  *slog.Logger
	now  func() time.Time
	max  int
	ro   bool
	path string

	head atomic.Pointer[head]
	// broken is set when appending must stop: at Open when the last stored
	// event does not decode (appending would extend a chain from a bad
	// hash), or when a failed commit left the file's head unknown.
	broken atomic.Pointer[error]
	// closedFlag mirrors closed for readers, which do not take mu.
	closedFlag atomic.Bool
	// writeFail is the error of the last batch that failed to commit,
	// whoever appended it, until a batch or ProbeWrite commits.
	writeFail atomic.Pointer[error]

	hooksMu sync.Mutex
	hooks   []func([]Envelope)

	// mu guards closed; Append holds it shared while handing a request to
	// the writer so that Close knows every request is in reqs.
	mu     sync.RWMutex
	closed bool
	reqs   chan *request
	stop   chan struct{}
	done   chan struct{}

	// sectionTxBytes bounds the section bytes of one SaveCheckpoint
	// transaction but the last (DefaultSectionTxBytes; tests shrink it).
	sectionTxBytes int

	reqPool sync.Pool // free *request, see newRequest
	encPool sync.Pool // free *[]byte for event data, see Store.prepare

	closeOnce sync.Once
	closeErr  error

	// written counts the writer's committed transactions and their events.
	commits, committed atomic.Uint64
}

// WriterStats counts the writer's committed transactions.
type WriterStats struct {
	Commits uint64 // read-write transactions committed
	Events  uint64 // events they held
}

// WriterStats returns the commits so far: Events/Commits is the mean group
// size, which says how well concurrent appenders are grouped.
func (s *Store) WriterStats() WriterStats {
	return WriterStats{Commits: s.commits.Load(), Events: s.committed.Load()}
}

// Open opens (creating if needed, unless read-only) the ledger at path and,
// unless read-only, starts its writer goroutine. Close stops it. It is
// OpenContext with a context that is never done.
func Open(path string, opts Options) (*Store, error) {
	return OpenContext(context.Background(), path, opts)
}

// OpenContext is Open whose check of an existing file's pages before the
// first write (it reads every page but the events' leaves: seconds for a
// large ledger) ends when ctx is done, with ctx's error.
func OpenContext(ctx context.Context, path string, opts Options) (*Store, error) {
	s := &Store{
		sectionTxBytes: DefaultSectionTxBytes,
		log:            opts.Logger,
		now:            opts.Now,
		max:            opts.MaxBatch,
		ro:             opts.ReadOnly,
		path:           path,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.max <= 0 {
		s.max = DefaultMaxBatch
	}
	bo := &bolt.Options{Timeout: time.Second, PageSize: pageSize, InitialMmapSize: initialMmap}
	if s.ro {
		bo = &bolt.Options{ReadOnly: true, Timeout: readOnlyTimeout}
	}
	fi, statErr := os.Stat(path)
	if statErr == nil && fi.IsDir() {
		// Read-only, bbolt took it for a file of no valid header, and the
		// way out said to rebuild it.
		return nil, fmt.Errorf("open %s: %w: it is a directory, not a ledger file: move it away", path, ErrUnavailable)
	}
	existed := statErr == nil && fi.Size() > 0
	db, err := openBolt(path, bo)
	if errors.Is(err, syscall.ENOMEM) && bo.InitialMmapSize > 0 {
		// Address space refused (ulimit -v): map what the file needs, and
		// let a long read (a backup) hold up a write that grows the map.
		s.log.Warn("the ledger file is mapped at its size, not "+strconv.Itoa(initialMmap>>30)+" GiB ahead: a write that grows it waits for a backup running then", jsLogKeyErr, err)
		bo.InitialMmapSize = 0
		db, err = openBolt(path, bo)
	}
	// A file of neither header page valid that is longer than a page but
	// shorter than two of ours is taken by bbolt to have our page size,
	// and refused for its size ("file size too small", no sentinel of
	// its own): a small text file, or the first pages of a ledger
	// overwritten, were called unavailable, as if trying again would do.
	tooSmall := err != nil && strings.Contains(err.Error(), "file size too small")
	if tooSmall || errors.Is(err, bolterrors.ErrInvalid) || errors.Is(err, bolterrors.ErrChecksum) || errors.Is(err, bolterrors.ErrVersionMismatch) {
		// Neither header page is bbolt's (a file cut to a few bytes, one
		// overwritten, not a ledger at all): bbolt's words alone ("invalid
		// database") left the administrator without a next step.
		err = fmt.Errorf("%w: it has no valid header (%v): not a ledger file, or its first pages were damaged", ErrCorrupt, err)
	}
	if errors.Is(err, ErrCorrupt) {
		return nil, fmt.Errorf("open %s: %w; move it away and rebuild it from the mirror with recledger restore (docs/replay.md)", path, err)
	}
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open %s: %w: %w", path, ErrUnavailable, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w: %v", path, ErrUnavailable, err)
	}
	s.db = db
	if !s.ro && existed {
		// Before the first write: a free-page list naming a page in use
		// makes bbolt hand it out, and the write overwrites events (a
		// walk served a file verify had called damaged, and lost 1,054).
		// The light walk reads every page but the events' leaves.
		rep, err := checkPages(ctx, path, true)
		if err != nil && ctx.Err() != nil {
			db.Close()
			return nil, fmt.Errorf("open %s: %w", path, ctx.Err())
		}
		if err == nil && !rep.OK {
			db.Close()
			return nil, fmt.Errorf("open %s: %w: its pages: %s; a write on it could overwrite pages in use: "+
				"move it away and rebuild it from the mirror with recledger restore (docs/replay.md)", path, ErrCorrupt, rep.Problem())
		}
	}
	if s.ro {
		// Every ledger file has its buckets from its first read-write
		// open. A file without them is not a ledger, or a torn copy (one
		// taken while a server wrote it) whose root names another page:
		// read as it is, it would pass for an empty, valid ledger.
		err = guarded(func() error {
			return db.View(func(tx *bolt.Tx) error {
				if tx.Bucket(bucketEvents) == nil {
					return fmt.Errorf("%w: it holds no events bucket: not a ledger, or a copy taken while a server wrote it", ErrCorrupt)
				}
				return nil
			})
		})
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("open %s: %w; move it away and rebuild it from the mirror with recledger restore (docs/replay.md)", path, err)
		}
	}
	if !s.ro {
		// The buckets are made once, by the first open. A file that has
		// them is not written here: a commit on a damaged file (its
		// free-page list, a page's header) can hand out pages still in use
		// and make it worse, and a start that is refused next should
		// leave the file as it found it.
		buckets := [][]byte{bucketEvents, bucketCheckpoints, bucketSections}
		missing := false
		err = guarded(func() error {
			return db.View(func(tx *bolt.Tx) error {
				for _, b := range buckets {
					missing = missing || tx.Bucket(b) == nil
				}
				return nil
			})
		})
		if err == nil && missing {
			err = guarded(func() error {
				return db.Update(func(tx *bolt.Tx) error {
					for _, b := range buckets {
						if _, err := tx.CreateBucketIfNotExists(b); err != nil {
							return err
						}
					}
					return nil
				})
			})
		}
		if err != nil {
			db.Close()
			if errors.Is(err, ErrCorrupt) {
				return nil, fmt.Errorf("open %s: %w; move it away and rebuild it from the mirror with recledger restore (docs/replay.md)", path, err)
			}
			return nil, fmt.Errorf("open %s: %w: %v", path, ErrUnavailable, err)
		}
	}
	var h *head
	err = guarded(func() (err error) {
		h, err = s.readHead()
		return err
	})
	if h == nil {
		h = &head{}
	}
	if err != nil {
		if errors.Is(err, errDamaged) || !errors.Is(err, ErrCorrupt) {
			db.Close()
			if errors.Is(err, errDamaged) {
				return nil, fmt.Errorf("open %s: %w; move it away and rebuild it from the mirror with recledger restore (docs/replay.md)", path, err)
			}
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
		s.setBroken(err)
		s.log.Error("ledger tail is corrupt; appends refused", logKeyPath, path, logKeyErr, err)
	} else if c := s.checkpointAfter(h.seq); c > 0 {
		// A checkpoint is saved after its events are committed to the
		// same file: one after the head means events were lost, or a
		// damaged page hides them (a walk: a branch page's count cut, and
		// replay gave the digest of the 1,842 events left, exit 0).
		err := fmt.Errorf("%w: the ledger ends at seq %d, but a checkpoint of it was saved at seq %d: "+
			"the events after seq %d are lost, or a damaged page hides them", ErrCorrupt, h.seq, c, h.seq)
		s.setBroken(err)
		s.log.Error("ledger tail is lost; appends refused", logKeyPath, path, logKeyErr, err)
	}
	s.head.Store(h)
	if !s.ro {
		s.reqs = make(chan *request, 1024)
		s.stop = make(chan struct{})
		s.done = make(chan struct{})
		w := &writer{s: s, ids: idGen{last: h.id}, seq: h.seq}
		w.failLog.Interval = 10 * time.Second
		if h.hash != "" {
			if _, err := hex.Decode(w.prev[:], []byte(h.hash)); err != nil {
				s.setBroken(fmt.Errorf("head hash: %w: %v", ErrCorrupt, err))
			}
			w.hasPrev = true
		}
		go w.run()
	}
	return s, nil
}

// readHead reads the last stored event. A tail that does not decode gives
// a head with the key's seq (so Head still reports the size) and an error
// wrapping ErrCorrupt.
func (s *Store) readHead() (*head, error) {
	var h *head
	err := s.view(func(tx *bolt.Tx) (err error) {
		h, err = headIn(tx)
		return err
	})
	if h == nil {
		h = &head{}
	}
	return h, err
}

// headIn reads the last stored event as tx sees it, as readHead does.
func headIn(tx *bolt.Tx) (*head, error) {
	h := &head{}
	b := tx.Bucket(bucketEvents)
	if b == nil {
		return h, nil
	}
	k, v := b.Cursor().Last()
	if k == nil {
		return h, nil
	}
	if len(k) != 8 {
		return h, fmt.Errorf("read head: %w: key of %d bytes", ErrCorrupt, len(k))
	}
	h.seq = binary.BigEndian.Uint64(k)
	e, err := Decode(v)
	if err != nil {
		return h, fmt.Errorf("read head: %w", err)
	}
	if e.Seq != h.seq {
		return h, fmt.Errorf("read head: %w: key %d holds seq %d", ErrCorrupt, h.seq, e.Seq)
	}
	h.hash, h.id = e.Hash, e.ID
	return h, nil
}

// Head returns the seq and hash of the last committed event (0 and "" when
// the ledger is empty).
func (s *Store) Head() (seq uint64, hash string) {
	h := s.head.Load()
	return h.seq, h.hash
}

// LastID returns the ID of the last committed event (zero when empty).
func (s *Store) LastID() ulid.ULID { return s.head.Load().id }

// Subscribe registers fn to be called by the writer goroutine after each
// commit with the committed envelopes in seq order, before the appenders of
// that batch are released. Register before the first Append: a hook added
// later misses the batches committed before. fn must be quick, must not
// call Append (it would wait for itself) and must not modify the envelopes
// (they are shared with the appenders and the other hooks).
func (s *Store) Subscribe(fn func([]Envelope)) {
	s.hooksMu.Lock()
	s.hooks = append(s.hooks, fn)
	s.hooksMu.Unlock()
}

// Close stops the writer, after committing the requests already handed to
// it, and closes the file. Append afterwards returns ErrClosed. Close is
// idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.closedFlag.Store(true)
		s.mu.Unlock()
		if s.stop != nil {
			close(s.stop)
			<-s.done
		}
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("close: %w: %v", ErrUnavailable, err)
		}
	})
	return s.closeErr
}

// seqKey is the bbolt key of seq.
func seqKey(seq uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return k[:]
}

// checkpointAfter returns the highest seq a stored checkpoint (of any
// version) was saved at, when it is after seq; else 0.
func (s *Store) checkpointAfter(seq uint64) uint64 {
	var most uint64
	_ = s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCheckpoints)
		if b == nil {
			return nil
		}
		return b.ForEach(func(_, v []byte) error {
			if len(v) >= 8 {
				most = max(most, binary.BigEndian.Uint64(v))
			}
			return nil
		})
	})
	if most > seq {
		return most
	}
	return 0
}

// Damaged returns what was found damaged when the store was opened: its
// last event unreadable, or a checkpoint saved after its head (events
// lost, or hidden by a damaged page); nil when nothing was. What such a
// store reads is a ledger cut short: replays and servers must refuse it,
// verify names it.
func (s *Store) Damaged() error {
	if b := s.broken.Load(); b != nil && errors.Is(*b, ErrCorrupt) {
		return *b
	}
	return nil
}

// setBroken stops all further appends with err.
func (s *Store) setBroken(err error) { s.broken.Store(&err) }

// readErr wraps an error of a bbolt read: ErrClosed once the store is
// closed, the error itself when it already names a ledger sentinel (such
// as ErrCorrupt), ErrUnavailable otherwise.
func (s *Store) readErr(op string, err error) error {
	switch {
	case s.closedFlag.Load():
		return fmt.Errorf("%s: %w", op, ErrClosed)
	case errors.Is(err, ErrCorrupt):
		return fmt.Errorf("%s: %w", op, err)
	default:
		return fmt.Errorf("%s: %w: %v", op, ErrUnavailable, err)
	}
}
