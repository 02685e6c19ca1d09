package projections

import (
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/recledger/recledger/ledger"
)

// shared holds what the fold hands out again and again, so that it is
// made once: the event id string, the reason-code lists. What it hands
// out is never written to, by the fold or by a caller.
type shared struct {
	idOf   ulid.ULID // the id whose string id is
	id     string
	codes  [8][]string // reason codes of a closing contact, by codeSet bits
	disp   struct{ discard, basicOnly, upload string }
	retain [4]retainDay // the last answers of retainUntil, one per retention seen lately
	next   int          // the retain slot to replace next
}

// retainDay is one answer of retainUntil.
type retainDay struct {
	y    int
	m    time.Month
	d    int
	days int
	s    string
}

// codeSet is the reason codes a contact gets when it closes, one bit each.
type codeSet uint8

const (
	codeTagged codeSet = 1 << iota
	codeWorkflow
	codeArchive
)

// reasonCodes is the list of the codes in set, in their fixed order
// (TAGGED, WORKFLOW, ARCHIVE), never nil. Its capacity is its length, so
// addTag and any append copy it.
func (s *State) reasonCodes(set codeSet) []string {
	l := s.shared.codes[set]
	if l == nil {
		l = []string{}
		if set&codeTagged != 0 {
			l = append(l, ledger.CodeTagged)
		}
		if set&codeWorkflow != 0 {
			l = append(l, ledger.CodeWorkflow)
		}
		if set&codeArchive != 0 {
			l = append(l, ledger.CodeArchive)
		}
		l = l[:len(l):len(l)]
		s.shared.codes[set] = l
	}
	return l
}

// disposition points at the State's own copy of d, which is never
// written through the pointer (views copy it).
func (s *State) disposition(d string) *string {
	p := &s.shared.disp.discard
	switch d {
	case ledger.DispositionBasicOnly:
		p = &s.shared.disp.basicOnly
	case ledger.DispositionUpload:
		p = &s.shared.disp.upload
	case ledger.DispositionDiscard:
	default:
		v := d
		return &v
	}
	*p = d
	return p
}

// eventID is e.ID.String(), made once per event.
func (s *State) eventID(e *ledger.Envelope) string {
	if s.shared.id == "" || s.shared.idOf != e.ID {
		s.shared.idOf, s.shared.id = e.ID, e.ID.String()
	}
	return s.shared.id
}

// usersOf is the Effect.Users of an event that touched user alone. Its
// capacity is its length, so appending to it copies.
func (s *State) usersOf(user string) []string {
	if m := s.member(user); m != nil {
		return m.users
	}
	return []string{user}
}
