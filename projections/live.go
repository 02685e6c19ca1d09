package projections

import (
	"context"
	"sync"
	"time"

	"github.com/recledger/recledger/ledger"
)

// ResultRing is how many recent command results a Live remembers.
const ResultRing = 1 << 16

// Live is a State behind a RWMutex, fed by the store's commit hook, for the
// server. Every method is safe for concurrent use.
type Live struct {
	mu      sync.RWMutex
	s       *State
	err     error
	results []*ledger.CommandResult // ring, indexed by seq % ResultRing; each holds its own Seq
	ignored []ignoredAt             // ring of the call signals that changed nothing, indexed likewise
}

// ignoredAt is a call signal at seq that changed nothing, and why.
type ignoredAt struct {
	seq    uint64
	reason string
}

// NewLive wraps s; s must not be used directly afterwards.
//
// The live state is quiet (State.SetQuiet): nobody reads the change lines
// of the server's fold, only replay's trace does. It makes results
// (State.SetResults): they are the server's answers.
func NewLive(s *State) *Live {
	s.SetQuiet(true)
	s.SetResults(true)
	return &Live{s: s, results: make([]*ledger.CommandResult, ResultRing), ignored: make([]ignoredAt, ResultRing)}
}

// OnCommit applies committed envelopes in order (the Store.Subscribe hook)
// and remembers each command's result. After the first Apply error it stops
// applying and keeps that error (see Err).
func (l *Live) OnCommit(envs []ledger.Envelope) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range envs {
		if l.err != nil {
			return
		}
		e := &envs[i]
		if e.Seq <= l.s.seq {
			continue // already folded (e.g. from a checkpoint)
		}
		eff, err := l.s.Apply(e)
		if err != nil {
			l.err = err
			return
		}
		// Every event takes its slot, a nil result included: a slot left
		// to an old command kept its result, and the block of results it
		// was cut from, for good (a walk's server, never restarted, held
		// every result of 12 days: 87 MB live against 24 MB restarted).
		l.results[e.Seq%ResultRing] = eff.Result
		l.ignored[e.Seq%ResultRing] = ignoredAt{e.Seq, eff.Ignored}
	}
}

// Err is the first Apply error, after which the state stopped advancing.
func (l *Live) Err() error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.err
}

// Result returns the answer to the command at seq, if it is recent enough
// (the last ResultRing seqs). Its slices and map are shared: read only.
func (l *Live) Result(seq uint64) (ledger.CommandResult, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	r := l.results[seq%ResultRing]
	if seq == 0 || r == nil || r.Seq != seq {
		return ledger.CommandResult{}, false
	}
	return *r, true
}

// Ignored reports why the call signal at seq changed nothing ("" when it
// did, or when seq is not among the last ResultRing).
func (l *Live) Ignored(seq uint64) string {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if r := l.ignored[seq%ResultRing]; r.seq == seq && seq != 0 {
		return r.reason
	}
	return ""
}

// Snapshot returns the checkpoint bytes, the seq they hold and the
// sections the state still holds (State.PendingSections): a checkpoint is
// stored with them.
func (l *Live) Snapshot() (head []byte, seq uint64, sections []ledger.Section, err error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	b, err := l.s.MarshalCheckpoint()
	return b, l.s.seq, l.s.PendingSections(), err
}

// SectionsStored is State.SectionsStored: the sections of keys are stored
// in r, and the state drops their bytes.
func (l *Live) SectionsStored(r SectionReader, keys []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.s.SectionsStored(r, keys)
}

// ShareKept is State.ShareKept: the kept sections share from's bytes.
// from must not be folded meanwhile (the Checkpointer calls it with its
// own state, between two of its folds).
func (l *Live) ShareKept(from *State) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s.ShareKept(from)
}

// Seq is State.Seq.
func (l *Live) Seq() uint64 { l.mu.RLock(); defer l.mu.RUnlock(); return l.s.Seq() }

// Config is State.Config.
func (l *Live) Config() ledger.Config { l.mu.RLock(); defer l.mu.RUnlock(); return l.s.Config() }

// CallCounts is State.CallCounts.
func (l *Live) CallCounts() CallCounts { l.mu.RLock(); defer l.mu.RUnlock(); return l.s.CallCounts() }

// Site is State.Site at the last commit.
func (l *Live) Site() ledger.Site { l.mu.RLock(); defer l.mu.RUnlock(); return l.s.Site() }

// Location is State.Location.
func (l *Live) Location() *time.Location { l.mu.RLock(); defer l.mu.RUnlock(); return l.s.Location() }

// Agents is State.Agents.
func (l *Live) Agents() []ledger.AgentState {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.s.Agents()
}

// Agent is State.Agent.
func (l *Live) Agent(userID string) (ledger.AgentState, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.s.Agent(userID)
}

// Contacts is State.Contacts. The contacts in memory are read under the
// lock; the sealed history after releasing it (see history), so that the
// fold never waits for the store.
func (l *Live) Contacts(ctx context.Context, q ledger.ContactQuery) ([]ledger.Contact, error) {
	mem, h := l.contactsAt(q)
	return h.contacts(ctx, q, mem)
}

// EachContact is State.EachContact, reading sealed history outside the
// lock.
func (l *Live) EachContact(ctx context.Context, q ledger.ContactQuery, fn func(*ledger.Contact) error) error {
	mem, h := l.contactsAt(q)
	return h.eachContact(ctx, q, mem, fn)
}

// contactsAt takes, under the lock, the contacts in memory matching q and
// the history a contacts query reads after the lock is let go.
func (l *Live) contactsAt(q ledger.ContactQuery) ([]ledger.Contact, *history) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.s.memContacts(q), l.s.history(true)
}

// Contact is State.Contact, reading sealed history outside the lock.
func (l *Live) Contact(ctx context.Context, id string) (ledger.Contact, error) {
	l.mu.RLock()
	if ct := l.s.contacts[id]; ct != nil {
		defer l.mu.RUnlock()
		return l.s.view(ct), nil
	}
	h := l.s.history(true)
	l.mu.RUnlock()
	return h.contact(ctx, id)
}

// Pauses is State.Pauses, reading sealed history outside the lock.
func (l *Live) Pauses(ctx context.Context, q ledger.PauseQuery) ([]ledger.PauseRow, error) {
	hot, h := l.pausesAt(q)
	return h.pauses(ctx, q, hot)
}

// EachPause is State.EachPause: the rows are read after the lock is let go,
// so a slow reader of a long history holds no fold up.
func (l *Live) EachPause(ctx context.Context, q ledger.PauseQuery, fn func(*ledger.PauseRow) error) error {
	hot, h := l.pausesAt(q)
	return h.eachPause(ctx, q, hot, fn)
}

// pausesAt takes, under the lock, the rows since the last seal matching q
// and the history a pauses query reads after the lock is let go.
func (l *Live) pausesAt(q ledger.PauseQuery) ([]ledger.PauseRow, *history) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.s.hotPauses(q), l.s.history(true)
}

// UserConfig is State.UserConfig.
func (l *Live) UserConfig(userID string) (ledger.UserConfig, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.s.UserConfig(userID)
}

// Manifest is State.Manifest. A sealed manifest's section never changes,
// so it is read outside the lock.
func (l *Live) Manifest(ctx context.Context, day string) ([]byte, error) {
	l.mu.RLock()
	sec, ok := l.s.book.section(day)
	r := l.s.reader
	l.mu.RUnlock()
	return readManifest(ctx, r, day, sec, ok)
}

// EarliestPending is State.EarliestPending.
func (l *Live) EarliestPending() (ledger.Time, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.s.EarliestPending()
}

// SealedDays is State.SealedDays.
func (l *Live) SealedDays() []string { l.mu.RLock(); defer l.mu.RUnlock(); return l.s.SealedDays() }

// OpenContactsOfTeam is State.OpenContactsOfTeam.
func (l *Live) OpenContactsOfTeam(team string) []string {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.s.OpenContactsOfTeam(team)
}

// LastSeal is State.LastSeal.
func (l *Live) LastSeal() (string, ledger.Time) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.s.LastSeal()
}

// NextTimer is State.NextTimer.
func (l *Live) NextTimer() (ledger.TimerFired, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.s.NextTimer()
}

// Digest is State.Digest with the seq it covers, read together (the shape
// ingest.State asks for).
func (l *Live) Digest() (seq uint64, digest string) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.s.seq, l.s.Digest()
}
