package projections

import (
	"fmt"
	"slices"
	"strconv"
	"time"

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
	b = appendTime(b, c.StartedAt)
	b = appendKey(b, ',', "ended_at")
	b = appendTime(b, c.EndedAt)
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
		b = appendSegment(b, sg, pauses)
	}
	return append(b, "]}"...), true, nil
}

// appendSegment writes one ManifestSegment: the segment and the pauses
// clipped to it (see silences), stably ordered by start.
func appendSegment(b []byte, sg ledger.Segment, pauses []ledger.Pause) []byte {
	b = appendKey(b, '{', "start")
	b = appendTime(b, sg.Start)
	b = appendKey(b, ',', "end")
	b = appendTime(b, sg.End)
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
// "2006-01-02T15:04:05.000Z" written digit by digit (time.AppendFormat
// re-reads its layout on every call).
func appendTime(b []byte, t ledger.Time) []byte {
	if t.IsZero() {
		return append(b, "null"...)
	}
	u := t.UTC()
	y, mo, d := u.Date()
	if y < 0 || y > 9999 {
		b = append(b, '"')
		b = u.AppendFormat(b, ledger.TimeLayout)
		return append(b, '"')
	}
	h, mi, sec := u.Clock()
	ms := u.Nanosecond() / int(time.Millisecond)
	return append(b, '"',
		byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
		byte('0'+int(mo)/10), byte('0'+int(mo)%10), '-', byte('0'+d/10), byte('0'+d%10), 'T',
		byte('0'+h/10), byte('0'+h%10), ':', byte('0'+mi/10), byte('0'+mi%10), ':',
		byte('0'+sec/10), byte('0'+sec%10), '.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10), 'Z', '"')
}
