package projections

import (
	"bytes"
	"strconv"
	"strings"
	"time"

	"github.com/recledger/recledger/ledger"
)

// openContact starts recording a call: a new contact whose id is the id of
// the event that started it, with one segment from at. Metadata the call
// collected while not recorded is handed to it. u is the configuration of
// the call's user.
func (s *State) openContact(e *ledger.Envelope, c *call, u *ledger.User, at ledger.Time, eff *Effect) *contact {
	id := s.eventID(e)
	ct := &contact{
		V: ledger.Contact{ContactID: id, CallID: c.CallID, UserID: c.User, Extension: c.Ext,
			Team: u.Team, RecordingType: u.Recording, Direction: c.Direction, ANI: c.ANI, DNIS: c.DNIS,
			StartedAt: at, Metadata: c.Meta},
		SegStart: at, OpenPause: -1, Open: true, CallKey: c.keyOf(),
		Recording: ledger.StateRecording,
	}
	c.Meta = nil
	s.contacts[id] = ct
	c.Contact, c.LastContact, c.RecSeq, c.open = id, id, e.Seq, ct
	if !s.quiet {
		eff.Changes = append(eff.Changes, c.CallID+" not_recording→recording: contact "+id+" opened")
	}
	return ct
}

// openOf is the call's open contact, nil when none; the call keeps a
// pointer to it (found again by id for a call read from a checkpoint).
func (s *State) openOf(c *call) *contact {
	if c.Contact == "" {
		return nil
	}
	if c.open == nil || c.open.V.ContactID != c.Contact {
		c.open = s.contacts[c.Contact]
	}
	return c.open
}

// notBefore returns at, or the latest time already on the contact when at
// is before it: its start, its segments, its pauses. A contact, and the
// segment it is recording, never end before anything that happened on
// them. Commands carry the server's clock and call signals their sender's
// (`at`): when the sender's runs behind, an "ended" can name a time
// before a pause the agent gave during the call, and the media would end
// before the pause and lose its silence in the manifest. The ledger's
// order decides instead.
func (s *State) notBefore(ct *contact, at ledger.Time) ledger.Time {
	at = later(ct.V.StartedAt, at)
	at = later(ct.SegStart, at)
	if n := len(ct.V.Segments); n > 0 {
		at = later(ct.V.Segments[n-1].End, at)
	}
	if n := len(ct.Rows); n > 0 {
		p := s.pauses.at(ct.Rows[n-1])
		at = later(p.Start, at)
		at = later(p.End, at)
	}
	return at
}

// endSegment ends the segment being recorded at end (clamped to its start).
func (ct *contact) endSegment(end ledger.Time) {
	if ct.SegStart.IsZero() {
		return
	}
	if ct.V.Segments == nil { // most contacts have one segment: no allocation of its own
		ct.V.Segments = ct.seg0[:0:1]
	}
	ct.V.Segments = append(ct.V.Segments, ledger.Segment{Start: ct.SegStart, End: later(ct.SegStart, end)})
	ct.SegStart = ledger.Time{}
}

// stopRecording ends the open pause (endedBy, closed by event e, sent by
// by) and the segment; when a pause was open, the media ends where the
// pause began, except on a gateway contact: the gateway records through
// pauses (they are silenced at upload), so its media runs to at and the
// pause is a silence range of it.
func (s *State) stopRecording(e *ledger.Envelope, ct *contact, at, said ledger.Time, endedBy, by string, eff *Effect) {
	segEnd := at
	if ct.OpenPause >= 0 {
		if ct.V.RecordingType != ledger.RecGateway {
			segEnd = s.pauses.at(ct.OpenPause).Start
		}
		// The pause ends when the event says (clamped to the pause's
		// start alone), as a resume does: not at the contact's start
		// when a sender's clock put that after the pause.
		s.closePause(e, ct, said, endedBy, by, eff)
	}
	ct.endSegment(segEnd)
}

// closeContact closes the call's open contact at at: the recording stops,
// the disposition, reason codes and retention are decided, and the contact
// goes to the manifest book.
func (s *State) closeContact(e *ledger.Envelope, c *call, at ledger.Time, endedBy, by string, eff *Effect) {
	ct := s.openOf(c)
	was := at
	if at = s.notBefore(ct, at); !s.quiet && !at.Equal(was.Time) {
		eff.Changes = append(eff.Changes, "contact "+ct.V.ContactID+" ends at "+at.String()+", not at "+was.String()+": a contact never ends before what happened on it")
	}
	s.stopRecording(e, ct, at, was, endedBy, by, eff)
	ct.V.EndedAt = at
	ct.Open, ct.CallKey, ct.Recording = false, "", ""
	c.Contact, c.RecSeq, c.open = "", 0, nil
	t := s.team(ct.V.Team)
	if !ct.V.Deleted {
		var set codeSet
		if hasCode(ct.V.ReasonCodes, ledger.CodeTagged) {
			set |= codeTagged
		}
		if s.workflowMatch(t, ct) {
			set |= codeWorkflow
		}
		if t.Archive {
			set |= codeArchive
		}
		ct.V.ReasonCodes = s.reasonCodes(set)
	}
	s.settleIn(t, ct)
	if !s.quiet {
		line := "contact " + ct.V.ContactID + " closed (" + endedBy + "): " + *ct.V.Disposition + " [" + strings.Join(ct.V.ReasonCodes, " ") + "]"
		if *ct.V.Disposition == ledger.DispositionDiscard {
			line += discardWhy(ct, t, s.cfg.Teams)
		}
		eff.Changes = append(eff.Changes, line)
	}
	s.book.closed(ct.V.ContactID, s.pendingOf(ct))
}

// discardWhy says, for the trace, why contact ct of its team (settings
// t) was discarded: nothing kept it (a walk's engineer could not tell,
// from "discard []", that the team neither archived nor classified), and
// what each classifier found (another walk could not tell a call sampled
// out from one of another direction).
func discardWhy(ct *contact, t ledger.Team, teams map[string]ledger.Team) string {
	team := "team " + strconv.Quote(ct.V.Team)
	if _, ok := teams[ct.V.Team]; !ok {
		team += " (not configured)"
	}
	if len(t.Classifiers) == 0 {
		return " (not tagged; " + team + " does not archive and has no workflow classifiers)"
	}
	why := make([]string, 0, len(t.Classifiers))
	for i, cl := range t.Classifiers {
		why = append(why, strconv.Itoa(i+1)+": "+classifierMiss(cl, ct))
	}
	return " (not tagged; " + team + " does not archive, and none of its " + strconv.Itoa(len(t.Classifiers)) + " workflow classifiers matched: " + strings.Join(why, "; ") + ")"
}

// classifierMiss says why classifier cl did not keep contact ct.
func classifierMiss(cl ledger.Classifier, ct *contact) string {
	switch classify(cl, ct) {
	case missDirection:
		if ct.V.Direction == "" {
			return "for " + cl.Direction + " calls, this one has no direction"
		}
		return "for " + cl.Direction + " calls, this one is " + ct.V.Direction
	case missNumber:
		return "number " + strconv.Quote(otherParty(ct.V.Direction, ct.V.ANI, ct.V.DNIS)) + " does not match " + strconv.Quote(cl.NumberPattern)
	}
	return "sampled out (the call id's sample " + strconv.Itoa(sample(ct.V.CallID)) + " is not below " + strconv.Itoa(cl.Percent) + "%)"
}

// pendingOf renders a closed contact for the manifest book straight from
// the state, as pending(s.view(ct)) would, without copying the view.
func (s *State) pendingOf(ct *contact) pendingContact {
	p := pendingContact{EndedAt: ct.V.EndedAt, Disposition: ledger.DispositionDiscard}
	ps := s.scratch.pauses[:0]
	for _, r := range ct.Rows {
		row := s.pauses.at(r)
		ps = append(ps, ledger.Pause{Start: row.Start, End: row.End, EndedBy: row.EndedBy})
	}
	s.scratch.pauses = ps
	b, ok, err := appendEntry(s.scratch.entry[:0], &ct.V, ps)
	s.scratch.entry = b
	if err != nil || !ok {
		return p
	}
	p.Disposition = *ct.V.Disposition
	p.Entry = s.keepEntry(b)
	return p
}

// keepEntry copies a rendered manifest entry into the block entries are
// kept in, one allocation per entryBlock bytes instead of one per
// contact. The copy's capacity is its length: appending to it copies. A
// block lives as long as one of its entries is pending.
func (s *State) keepEntry(b []byte) []byte {
	if len(b) > entryBlock/4 {
		return bytes.Clone(b)
	}
	if cap(s.entries)-len(s.entries) < len(b) {
		s.entries = make([]byte, 0, entryBlock)
	}
	n := len(s.entries)
	s.entries = append(s.entries, b...)
	return s.entries[n:len(s.entries):len(s.entries)]
}

const entryBlock = 16 << 10

// settle decides the disposition and retention of a closed contact from its
// reason codes.
func (s *State) settle(ct *contact) { s.settleIn(s.team(ct.V.Team), ct) }

// settleIn is settle with the contact's team t.
func (s *State) settleIn(t ledger.Team, ct *contact) {
	d := ledger.DispositionDiscard
	days := -1
	switch {
	case ct.V.Deleted:
		d, days = ledger.DispositionBasicOnly, t.RetentionDays
	case hasCode(ct.V.ReasonCodes, ledger.CodeTagged):
		d, days = ledger.DispositionUpload, t.TaggedRetentionDays
	case len(ct.V.ReasonCodes) > 0:
		d, days = ledger.DispositionUpload, t.RetentionDays
	}
	ct.V.Disposition = s.disposition(d)
	ct.V.RetainUntil = ""
	if days >= 0 {
		if s.rules >= 2 {
			// Bounded as configuration is validated now (a ledger written
			// before may hold more, which gave dates past year 9999).
			days = min(days, ledger.MaxRetentionDays)
		}
		ct.V.RetainUntil = s.retainUntil(ct.V.EndedAt, days)
	}
}

// retainUntil is the date days after end's site-local date; the last few
// made are kept for the contacts that end the same day.
func (s *State) retainUntil(end ledger.Time, days int) string {
	y, m, d := end.In(s.loc).Date()
	sh := &s.shared
	for i := range sh.retain {
		if r := &sh.retain[i]; r.s != "" && r.y == y && r.m == m && r.d == d && r.days == days {
			return r.s
		}
	}
	r := retainDay{y: y, m: m, d: d, days: days,
		s: time.Date(y, m, d+days, 12, 0, 0, 0, time.UTC).Format(time.DateOnly)}
	sh.retain[sh.next] = r
	sh.next = (sh.next + 1) % len(sh.retain)
	return r.s
}

// workflowMatch reports whether a classifier of the team matches the
// contact: direction equal (or ""/"any"), number pattern on the other party
// ("" = any), and the call sampled by percent.
func (s *State) workflowMatch(t ledger.Team, ct *contact) bool {
	for _, cl := range t.Classifiers {
		if classify(cl, ct) == matched {
			return true
		}
	}
	return false
}

// miss is what a classifier found of a contact: matched, or the first
// test it failed.
type miss int

const (
	matched miss = iota
	missDirection
	missNumber
	missSample
)

// classify applies classifier cl to contact ct: workflowMatch's tests, in
// order, shared with the trace's account of a discard (classifierMiss).
func classify(cl ledger.Classifier, ct *contact) miss {
	if cl.Direction != "" && cl.Direction != "any" && cl.Direction != ct.V.Direction {
		return missDirection
	}
	if cl.NumberPattern != "" && !ledger.MatchPattern(cl.NumberPattern, otherParty(ct.V.Direction, ct.V.ANI, ct.V.DNIS)) {
		return missNumber
	}
	if !sampled(ct.V.CallID, cl.Percent) {
		return missSample
	}
	return matched
}

func hasCode(codes []string, code string) bool {
	for _, c := range codes {
		if c == code {
			return true
		}
	}
	return false
}

// addTag puts TAGGED first among the reason codes; false when already there.
func (ct *contact) addTag() bool {
	if hasCode(ct.V.ReasonCodes, ledger.CodeTagged) {
		return false
	}
	ct.V.ReasonCodes = append([]string{ledger.CodeTagged}, ct.V.ReasonCodes...)
	return true
}

// provisionalDay is the manifest day a closed, not yet sealed contact is
// expected in: the site-local date it ended, or the next day when it ended
// at or after the upload time. A contact that closed after its date was
// sealed (a day an administrator sealed early) goes into the next seal, so
// it is expected on the day after the last sealed one, at the earliest.
//
// The upload time is an instant of the date, as the scheduler seals at it
// (ledger.UploadAt): on a day the clocks go back, a contact that ended in
// the hour repeated after the seal, wall clock before the upload time, is
// in the next day's manifest all the same.
func (s *State) provisionalDay(end ledger.Time) string { return s.dayRule().day(end) }

// dayRule is what a contact's provisional day depends on: the site's time
// zone and upload time, and the last sealed day.
type dayRule struct {
	loc       *time.Location
	uploadMin int
	last      string // the last sealed day, "" for none
}

func (s *State) dayRule() dayRule {
	r := dayRule{loc: s.loc, uploadMin: s.uploadMin}
	if n := len(s.book.Order); n > 0 {
		r.last = s.book.Order[n-1]
	}
	return r
}

// day is State.provisionalDay.
func (r dayRule) day(end ledger.Time) string {
	t := end.In(r.loc)
	y, m, d := t.Date()
	if !end.Before(ledger.UploadAt(y, m, d, r.uploadMin/60, r.uploadMin%60, r.loc)) {
		d++
	}
	day := time.Date(y, m, d, 12, 0, 0, 0, time.UTC).Format(time.DateOnly)
	if r.last != "" && day <= r.last {
		if last, err := time.Parse(time.DateOnly, r.last); err == nil {
			return last.AddDate(0, 0, 1).Format(time.DateOnly)
		}
	}
	return day
}

// view is the contact as the API shows it; it shares nothing mutable with
// the state.
func (s *State) view(ct *contact) ledger.Contact {
	v := viewOf(ct, func(k int) ledger.PauseRow { return s.pauses.at(ct.Rows[k]) })
	if v.Disposition != nil {
		if v.Day = s.book.day(ct.V.ContactID); v.Day == "" {
			v.Day = s.provisionalDay(ct.V.EndedAt)
		}
	}
	return v
}

// viewOf is the view of ct but its day, with its k-th pause row from row.
// It reads nothing of the state.
func viewOf(ct *contact, row func(k int) ledger.PauseRow) ledger.Contact {
	v := ct.V
	v.Segments = make([]ledger.Segment, len(ct.V.Segments), len(ct.V.Segments)+1)
	copy(v.Segments, ct.V.Segments)
	if ct.Open && !ct.SegStart.IsZero() {
		v.Segments = append(v.Segments, ledger.Segment{Start: ct.SegStart})
	}
	v.Pauses = make([]ledger.Pause, len(ct.Rows))
	for i := range ct.Rows {
		p := row(i)
		v.Pauses[i] = ledger.Pause{Start: p.Start, End: p.End, EndedBy: p.EndedBy, Seconds: p.Seconds}
	}
	v.ReasonCodes = append([]string{}, ct.V.ReasonCodes...)
	v.Metadata = make(map[string]string, len(ct.V.Metadata))
	for k, x := range ct.V.Metadata {
		v.Metadata[k] = x
	}
	switch {
	case ct.Open:
		v.State = ct.Recording
	case ct.V.Deleted:
		v.State = ledger.StateDeleted
	default:
		v.State = ledger.StateNotRecording
	}
	if ct.V.Disposition != nil {
		d := *ct.V.Disposition
		v.Disposition = &d
	}
	return v
}
