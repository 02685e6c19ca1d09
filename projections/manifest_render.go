package projections

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/recledger/recledger/ledger"
)

// appendEntry appends the canonical manifest entry of the closed contact c,
// whose pause intervals are pauses (c.Pauses is not read), to b: the bytes
// json.Marshal gives for ManifestBasic or ManifestContact, written by hand
// (encoding/json's reflection was a third of a fold). ok is false for a
// discarded contact, which has no entry. TestRenderMatchesJSON and
// FuzzRenderContact hold it to encoding/json.
func appendEntry(b []byte, c *ledger.Contact, pauses []ledger.Pause) (out []byte, ok bool, err error) {
	disp := ""
	if c.Disposition != nil {
		disp = *c.Disposition
	}
	switch disp {
	case ledger.DispositionDiscard:
		return b, false, nil
	case ledger.DispositionBasicOnly, ledger.DispositionUpload:
	default:
		return b, false, fmt.Errorf("render contact %s: %w: disposition %q", c.ContactID, ledger.ErrInvalid, disp)
	}
	b = appendKey(b, '{', "contact_id")
	b = ledger.AppendJSONString(b, c.ContactID)
	b = appendKey(b, ',', "call_id")
	b = ledger.AppendJSONString(b, c.CallID)
	b = appendKey(b, ',', "user_id")
	b = ledger.AppendJSONString(b, c.UserID)
	b = appendKey(b, ',', "extension")
	b = ledger.AppendJSONString(b, c.Extension)
	b = appendKey(b, ',', "team")
	b = ledger.AppendJSONString(b, c.Team)
	b = appendKey(b, ',', "recording_type")
	b = ledger.AppendJSONString(b, c.RecordingType)
	b = appendKey(b, ',', "direction")
	b = ledger.AppendJSONString(b, c.Direction)
	b = appendKey(b, ',', "ani")
	b = ledger.AppendJSONString(b, c.ANI)
	b = appendKey(b, ',', "dnis")
	b = ledger.AppendJSONString(b, c.DNIS)
	b = appendKey(b, ',', "started_at")
	at := len(b)
	b = appendTime(b, c.StartedAt)
	// Most segments start and end when their contact does: their times
	// are copied from these. b only grows, so the bytes stay as written.
	bounds := renderedBounds{start: c.StartedAt, end: c.EndedAt, startQ: b[at:len(b):len(b)]}
	b = appendKey(b, ',', "ended_at")
	at = len(b)
	b = appendTime(b, c.EndedAt)
	bounds.endQ = b[at:len(b):len(b)]
	b = appendKey(b, ',', "disposition")
	b = ledger.AppendJSONString(b, disp)
	b = appendKey(b, ',', "deleted")
	b = strconv.AppendBool(b, c.Deleted)
	if c.RootMayPersist {
		b = append(b, `,"root_may_persist":true`...)
	}
	if disp == ledger.DispositionBasicOnly {
		return append(b, '}'), true, nil
	}
	b = append(b, `,"reason_codes":[`...)
	for i, r := range c.ReasonCodes {
		if i > 0 {
			b = append(b, ',')
		}
		b = ledger.AppendJSONString(b, r)
	}
	b = append(b, `],"metadata":{`...)
	b = appendMap(b, c.Metadata)
	b = append(b, `},"retain_until":`...)
	b = ledger.AppendJSONString(b, c.RetainUntil)
	if c.RecordingType == ledger.RecGateway {
		b = append(b, `,"pauses_applied_at":"`+PausesAppliedAtUpload+`"`...)
	}
	b = append(b, `,"segments":[`...)
	for i, sg := range c.Segments {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendSegment(b, sg, pauses, &bounds)
	}
	return append(b, "]}"...), true, nil
}

// renderedBounds are a contact's start and end times as appendTime wrote
// them.
type renderedBounds struct {
	start, end   ledger.Time
	startQ, endQ []byte
}

// appendBound is appendTime, copying t's rendering from r when t is the
// contact's start or end.
func (r *renderedBounds) appendBound(b []byte, t ledger.Time) []byte {
	switch ms := t.UnixMilli(); {
	case t.IsZero():
	case ms == r.start.UnixMilli() && !r.start.IsZero():
		return append(b, r.startQ...)
	case ms == r.end.UnixMilli() && !r.end.IsZero():
		return append(b, r.endQ...)
	}
	return appendTime(b, t)
}

// appendSegment writes one ManifestSegment: the segment and the pauses
// clipped to it (see silences), stably ordered by start.
func appendSegment(b []byte, sg ledger.Segment, pauses []ledger.Pause, r *renderedBounds) []byte {
	b = appendKey(b, '{', "start")
	b = r.appendBound(b, sg.Start)
	b = appendKey(b, ',', "end")
	b = r.appendBound(b, sg.End)
	b = append(b, `,"silence":[`...)
	var buf [4]Silence
	sil := buf[:0]
	for _, p := range pauses {
		if s, ok := clip(sg, p); ok {
			sil = append(sil, s)
		}
	}
	slices.SortStableFunc(sil, func(x, y Silence) int { return x.Start.Compare(y.Start.Time) })
	for i, s := range sil {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendKey(b, '{', "start")
		b = appendTime(b, s.Start)
		b = appendKey(b, ',', "end")
		b = appendTime(b, s.End)
		b = appendKey(b, ',', "start_ms")
		b = strconv.AppendInt(b, s.StartMS, 10)
		b = appendKey(b, ',', "end_ms")
		b = strconv.AppendInt(b, s.EndMS, 10)
		b = appendKey(b, ',', "ended_by")
		b = ledger.AppendJSONString(b, s.EndedBy)
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// clip is the pause p within the segment sg; false when they do not
// overlap. A pause still open runs to the segment's end.
func clip(sg ledger.Segment, p ledger.Pause) (Silence, bool) {
	start, end := p.Start, p.End
	if end.IsZero() || end.After(sg.End.Time) {
		end = sg.End
	}
	if start.Before(sg.Start.Time) {
		start = sg.Start
	}
	if !end.After(start.Time) {
		return Silence{}, false
	}
	return Silence{
		Start: start, End: end,
		StartMS: start.Sub(sg.Start.Time).Milliseconds(),
		EndMS:   end.Sub(sg.Start.Time).Milliseconds(),
		EndedBy: p.EndedBy,
	}, true
}

// appendMap writes the members of m with sorted keys, as encoding/json
// does, without the braces.
func appendMap(b []byte, m map[string]string) []byte {
	var buf [16]string
	keys := buf[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = ledger.AppendJSONString(b, k)
		b = append(b, ':')
		b = ledger.AppendJSONString(b, m[k])
	}
	return b
}

// appendKey writes sep and "key":.
func appendKey(b []byte, sep byte, key string) []byte {
	b = append(b, sep, '"')
	b = append(b, key...)
	return append(b, '"', ':')
}

// appendTime writes t as ledger.Time.MarshalJSON does: "null", or
// "2006-01-02T15:04:05.000Z", computed from the Unix milliseconds with
// integer steps (time.Time's Date and Clock, then writing digit by digit,
// cost 400 instructions; this, a fifth of that). Times before 1970 or
// after 9999 take time.AppendFormat.
func appendTime(b []byte, t ledger.Time) []byte {
	if t.IsZero() {
		return append(b, "null"...)
	}
	ms := t.UnixMilli()
	if ms < 0 || ms >= maxFastMS {
		b = append(b, '"')
		b = t.UTC().AppendFormat(b, ledger.TimeLayout)
		return append(b, '"')
	}
	u := uint64(ms)
	y, mo, d := civil(u / msPerDay)
	rem := u % msPerDay
	h := rem / 3_600_000
	rem -= h * 3_600_000
	mi := rem / 60_000
	rem -= mi * 60_000
	sec := rem / 1000
	milli := rem - sec*1000
	a := [26]byte{'"', 5: '-', 8: '-', 11: 'T', 14: ':', 17: ':', 20: '.', 24: 'Z', 25: '"'}
	put2(a[1:], y/100)
	put2(a[3:], y%100)
	put2(a[6:], mo)
	put2(a[9:], d)
	put2(a[12:], h)
	put2(a[15:], mi)
	put2(a[18:], sec)
	a[21] = byte('0' + milli/100)
	put2(a[22:], milli%100)
	return append(b, a[:]...)
}

// put2 writes v < 100 as two digits.
func put2(b []byte, v uint64) {
	b[1], b[0] = digitPairs[2*v+1], digitPairs[2*v]
}

const digitPairs = "00010203040506070809101112131415161718192021222324252627282930313233343536373839" +
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879" +
	"8081828384858687888990919293949596979899"

const (
	msPerDay  = 86_400_000
	maxFastMS = 253_402_300_800_000 // 10000-01-01T00:00:00Z
)

// civil is the proleptic Gregorian date of days since 1970-01-01, for
// days >= 0 (Howard Hinnant's days_from_civil, inverted).
func civil(days uint64) (y, m, d uint64) {
	z := days + 719_468
	era := z / 146_097
	doe := z - era*146_097
	yoe := (doe - doe/1460 + doe/36_524 - doe/146_096) / 365
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = doy - (153*mp+2)/5 + 1
	m = mp + 3
	if mp >= 10 {
		m = mp - 9
	}
	y = yoe + era*400
	if m <= 2 {
		y++
	}
	return y, m, d
}
