// Package projections folds the ledger's events into the recording state the
// API shows: agents, calls, contacts, PCI pause intervals and the end-of-day
// manifests. Every rule of RULES.md lives here, as a pure function of the
// events: no wall clock, no randomness, no I/O, no map-order dependence.
//
// The sealed history (manifests, cold contacts, encoded pause rows) is cut
// into immutable sections that a checkpoint stores apart (sections.go); so
// are the contacts of the day not sealed yet that no rule can change any
// more (cold.go). The fold reads none of them but the cooled manifest
// entries, which it keeps in memory until the seal; the queries that need
// the others read them back through a SectionReader, with a context.
package projections

import (
	"fmt"
	"time"

	"github.com/recledger/recledger/ledger"
)

// Version names the checkpoint encoding and the fold that made it. Bump
// it whenever the state's shape, or what the fold derives from any event,
// changes, so that old checkpoints are ignored and the state is rebuilt
// by replay. A recording rule changes by ledger.CurrentVersion instead:
// the new rule applies to events of the new version only (State.rules).
// A checkpoint names the newest event version it folded, and a build
// whose CurrentVersion is older does not load it (16: the first to; 15
// and before loaded one holding events they could not fold).
const Version = "16"

// Effect is what one event did: the command's answer (command events only),
// one human line per state change (for replay --trace), and the users the
// event touched (for replay --user; All when it concerns every user).
// Users may be shared with other effects of the same State: read it, do
// not write to it.
type Effect struct {
	Result  *ledger.CommandResult
	Changes []string
	Users   []string
	All     bool   // the change concerns every user (the site's settings, the metadata keys): a trace by user shows it too
	Ignored string // a call signal that changed nothing: why (IgnoredLate, …); "" otherwise
}

// Why a call signal changed nothing (Effect.Ignored): the server's answer
// to a batch names them (docs/clients.md).
const (
	IgnoredLate        = "late"         // not after the end of the call with its id on its extension (rules version 4)
	IgnoredUnknownCall = "unknown_call" // held, retrieved or ended for a call not active on its extension
	IgnoredUnknownType = "unknown_type"
)

// State is the whole derived state. It is not safe for concurrent use; the
// server wraps it in a Live.
type State struct {
	seq      uint64
	cfg      ledger.Config
	limitAt  ledger.Time         // when cfg.Site.MaxPauseSeconds took its value: no pause expires before it
	agents   map[string]*agent   // user id → agent
	logins   map[string]string   // extension → user logged in there
	calls    map[string]*call    // callKey(call id, extension) → active call
	contacts map[string]*contact // contact id → contact (open and closed)
	pauses   pauseLog            // every pause interval, in opening order
	open     map[string]int      // open pause: open event id → index in pauses
	book     manifestBook
	cold     []coldDay     // closed contacts of sealed days no rule needs any more, in seal order
	ended    endedCalls    // the calls that ended in the last hour, for late signals (rules version 4)
	reader   SectionReader // where the sections whose bytes the state does not hold are read; not part of the checkpoint
	quiet    bool          // no Effect.Changes lines (SetQuiet)
	noResult bool          // no Effect.Result (SetResults)
	noCold   bool          // tests only: keep every contact and pause row as structs, to check the compact forms' answers
	coolN    int           // tests only: cool the day not sealed yet every coolN closes, not coolEvery
	retired  []string      // keys of stored sections the state no longer names, until a checkpoint deletes them; not part of the checkpoint
	rules    int           // the version of the event being applied, whose rules apply (ledger.CurrentVersion); not part of the checkpoint
	newest   int           // the highest event version folded: a build older than it must not load this state's checkpoint

	// scratch space for decoding, reused by every Apply
	cmdBuf  ledger.Command
	sigBuf  ledger.CallSignal
	strs    interner               // the decoded strings that repeat
	shared  shared                 // strings and lists made once, handed out many times
	keyBuf  []byte                 // a call key being looked up
	spare   []*call                // structs of ended calls, for the next ones
	results []ledger.CommandResult // the rest of the block newResult cuts from
	result  ledger.CommandResult   // the answer a fold without results works in
	entries []byte                 // the block keepEntry copies manifest entries to
	scratch struct {
		pauses []ledger.Pause // a closing contact's pauses
		entry  []byte         // a closing contact's manifest entry
	}

	// caches rebuilt from cfg, not part of the checkpoint
	loc       *time.Location
	locName   string              // the Site.Timezone loc was loaded for
	uploadMin int                 // upload time, minutes after local midnight
	defaults  map[string][]string // default extension → user ids, sorted
	members   map[string]*member  // configured user id → what the fold reads of it, made on first use (members.go)
}

// agent is one user's association and calls.
type agent struct {
	LoggedIn bool             `json:"logged_in,omitempty"`
	Ext      string           `json:"ext,omitempty"`      // login extension
	Detached bool             `json:"detached,omitempty"` // logged out, or another agent logged in on its default extension
	Calls    []string         `json:"calls,omitempty"`    // keys of its active calls, in start order
	LastCall *ledger.LastCall `json:"last_call,omitempty"`
}

// call is one active call on one extension.
type call struct {
	CallID      string      `json:"call_id"`
	Ext         string      `json:"ext"`
	User        string      `json:"user,omitempty"` // the agent associated when it became active; "" = call data only
	Direction   string      `json:"direction,omitempty"`
	ANI         string      `json:"ani,omitempty"`
	DNIS        string      `json:"dnis,omitempty"`
	StartedAt   ledger.Time `json:"started_at"`
	StartSeq    uint64      `json:"start_seq"`
	RecSeq      uint64      `json:"rec_seq,omitempty"` // seq at which the open contact started recording
	Contact     string      `json:"contact,omitempty"` // open contact
	LastContact string      `json:"last_contact,omitempty"`
	Deleted     bool        `json:"deleted,omitempty"`
	Excluded    bool        `json:"excluded,omitempty"` // other party on the exclusion list
	LastAt      ledger.Time `json:"last_at,omitzero"`   // the latest time among its signals (rules version 4: the end remembered is not before it)
	// ReceiptBound: started under rules version 5, its signals are never
	// dated after the server took them. A call started before keeps the
	// times its feed gave to the end: its start may lie ahead, and an end
	// taken at the server's time would cut its media to nothing.
	ReceiptBound bool              `json:"receipt_bound,omitempty"`
	Meta         map[string]string `json:"meta,omitempty"` // metadata waiting for a contact

	key     string   // callKey(CallID, Ext), see keyOf
	open    *contact // the contact named by Contact, see openOf
	users   []string // usersOf(User), kept for the call's signals
	ends    *extEnds // the ends remembered on Ext when first looked up (endsFor)
	endsSet bool
}

// contact is a contact with what the view does not show.
type contact struct {
	V         ledger.Contact `json:"v"`                   // Pauses, Day, State are filled by view()
	Rows      []int          `json:"rows,omitempty"`      // its pause intervals, indexes into State.pauses
	SegStart  ledger.Time    `json:"seg_start"`           // start of the segment being recorded; zero when none
	OpenPause int            `json:"open_pause"`          // index into State.pauses, -1 when none
	Open      bool           `json:"open,omitempty"`      // not yet closed
	CallKey   string         `json:"call_key,omitempty"`  // while open
	Recording string         `json:"recording,omitempty"` // recording state while open

	seg0 [1]ledger.Segment // the array of the first segment (endSegment)
}

func callKey(callID, ext string) string { return callID + "\x00" + ext }

// New returns the empty state: no events, an empty normalized configuration.
func New() *State {
	s := &State{
		agents:   map[string]*agent{},
		logins:   map[string]string{},
		calls:    map[string]*call{},
		contacts: map[string]*contact{},
		open:     map[string]int{},
		book:     newManifestBook(),
	}
	s.cfg.Normalize()
	s.rebuildCaches()
	return s
}

// SetQuiet turns off (q true) or on the Effect.Changes lines, which only a
// trace reads: building them is a tenth of a fold. Results and Users are
// always filled. It returns the previous setting. The setting is not part
// of the state: it changes no digest and is not in a checkpoint.
func (s *State) SetQuiet(q bool) (was bool) {
	was, s.quiet = s.quiet, q
	return was
}

// SetResults turns on (r true) or off the Effect.Result of commands. The
// server's answers (Live) and a trace read them; a fold that only rebuilds
// the state (replay without a trace) does not, and need not make them. It
// returns the previous setting. Like SetQuiet, the setting is not part of
// the state: it changes no digest and is not in a checkpoint.
func (s *State) SetResults(r bool) (was bool) {
	was, s.noResult = !s.noResult, !r
	return was
}

// Apply folds one event into the state. It returns an error only when the
// event cannot be understood (undecodable data, unknown type or version);
// replay stops there. A rule violation is an outcome, not an error.
func (s *State) Apply(e *ledger.Envelope) (Effect, error) {
	if e.Version > ledger.CurrentVersion {
		return Effect{}, fmt.Errorf("apply seq %d: %w: %s version %d", e.Seq, ledger.ErrUnknownVersion, e.Type, e.Version)
	}
	var (
		eff Effect
		err error
	)
	s.rules = e.Version // the rules this event is folded with (ledger.CurrentVersion)
	if e.Version > s.newest {
		s.newest = e.Version
	}
	switch e.Type {
	case ledger.TypeCommand:
		d := &s.cmdBuf
		*d = ledger.Command{}
		if err = decodeCommand(e, d, &s.strs); err != nil {
			return Effect{}, fmt.Errorf("apply: %w", err)
		}
		eff = s.command(e, d)
	case ledger.TypeCallSignal:
		d := &s.sigBuf
		*d = ledger.CallSignal{}
		if err = decodeSignal(e, d, &s.strs); err != nil {
			return Effect{}, fmt.Errorf("apply: %w", err)
		}
		eff = s.signal(e, d)
	case ledger.TypeConfig:
		var d ledger.ConfigChange
		if err = e.Unmarshal(&d); err != nil {
			return Effect{}, fmt.Errorf("apply: %w", err)
		}
		if eff, err = s.configChange(e.Time, &d); err != nil {
			return Effect{}, fmt.Errorf("apply seq %d: %w", e.Seq, err)
		}
	case ledger.TypeDayClosed:
		var d ledger.DayClosed
		if err = e.Unmarshal(&d); err != nil {
			return Effect{}, fmt.Errorf("apply: %w", err)
		}
		sealed, cooled := len(s.book.Order), s.book.Cooled
		ch, err := s.book.dayClosed(e, d, s.cfg)
		if err != nil {
			return Effect{}, fmt.Errorf("apply seq %d: %w", e.Seq, err)
		}
		eff.Changes = ch
		if len(s.book.Order) > sealed {
			s.ended.prune(e.Time)
			s.sealCooled(d.Day, cooled)
			if !s.noCold {
				s.coolDown(e.Seq)
				s.pauses.compact(e.Seq, s.pauses.Len(), func(id string) bool { return s.contacts[id] != nil })
			}
		}
	case ledger.TypeTimer:
		var d ledger.TimerFired
		if err = e.Unmarshal(&d); err != nil {
			return Effect{}, fmt.Errorf("apply: %w", err)
		}
		eff = s.timer(e, &d)
	default:
		return Effect{}, fmt.Errorf("apply seq %d: %w: type %q", e.Seq, ledger.ErrUnknownVersion, e.Type)
	}
	s.seq = e.Seq
	if n := len(s.book.Pending); n >= s.coolEvery() && n >= s.book.CoolAt && !s.noCold {
		s.coolPending(e.Seq)
	}
	return eff, nil
}

// coolEvery is how many contacts close between two coolings of the day not
// sealed yet.
func (s *State) coolEvery() int {
	if s.coolN > 0 {
		return s.coolN
	}
	return coolEvery
}

// NewestVersion is the highest event version the state has folded (0
// before any event).
func (s *State) NewestVersion() int { return s.newest }

// eventTime is when a command or other server event happened.
func eventTime(e *ledger.Envelope) ledger.Time { return e.Time }

// later returns end, or start when end is before it: an interval never ends
// before it starts.
func later(start, end ledger.Time) ledger.Time {
	if end.Before(start.Time) {
		return start
	}
	return end
}
