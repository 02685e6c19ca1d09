package projections

import (
	"bytes"
	"encoding/json"
	"math/rand"
	"testing"
	"time"

	"github.com/recledger/recledger/ledger"
)

// renderJSON is RenderContact through encoding/json: the reference the
// hand-written encoder must match byte for byte.
func renderJSON(c ledger.Contact) (json.RawMessage, error) {
	disp := ""
	if c.Disposition != nil {
		disp = *c.Disposition
	}
	basic := ManifestBasic{
		ContactID: c.ContactID, CallID: c.CallID, UserID: c.UserID,
		Extension: c.Extension, Team: c.Team, RecordingType: c.RecordingType,
		Direction: c.Direction, ANI: c.ANI, DNIS: c.DNIS,
		StartedAt: c.StartedAt, EndedAt: c.EndedAt,
		Disposition: disp, Deleted: c.Deleted, RootMayPersist: c.RootMayPersist,
	}
	switch disp {
	case ledger.DispositionDiscard:
		return nil, nil
	case ledger.DispositionBasicOnly:
		return json.Marshal(basic)
	}
	mc := ManifestContact{
		ManifestBasic: basic, ReasonCodes: nonNil(c.ReasonCodes), Metadata: c.Metadata,
		RetainUntil: c.RetainUntil, Segments: silences(c.Segments, c.Pauses),
	}
	if mc.Metadata == nil {
		mc.Metadata = map[string]string{}
	}
	if c.RecordingType == ledger.RecGateway {
		mc.PausesAppliedAt = PausesAppliedAtUpload
	}
	return json.Marshal(mc)
}

func checkRender(t *testing.T, c ledger.Contact) {
	t.Helper()
	got, err := RenderContact(c)
	if err != nil {
		t.Fatal(err)
	}
	want, err := renderJSON(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("RenderContact:\n%s\nencoding/json:\n%s", got, want)
	}
}

// TestRenderMatchesJSON renders every closed contact of a realistic fold
// both ways.
func TestRenderMatchesJSON(t *testing.T) {
	g := newEnvGen(t)
	g.config(genConfig(40, 0))
	g.realistic(rand.New(rand.NewSource(3)), 40, 20_000)
	s := New()
	for i := range g.out {
		if _, err := s.Apply(&g.out[i]); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	for _, c := range contactsOf(t, s, ledger.ContactQuery{}) {
		if c.Disposition != nil {
			checkRender(t, c)
			n++
		}
	}
	if n < 100 {
		t.Fatalf("only %d closed contacts rendered", n)
	}
}

// FuzzRenderContact holds the hand-written encoder to encoding/json on odd
// strings, metadata, overlapping pauses and every disposition.
func FuzzRenderContact(f *testing.F) {
	f.Add("c-1", "+1<555>&\u2028", "k", "v\x00\"\\é", uint8(0), int64(1000), int64(500), true)
	f.Add("c-2", "3420", "", "", uint8(1), int64(0), int64(-5), false)
	f.Add("c-3", "\xff", "a", "b", uint8(2), int64(90_000), int64(30), true)
	f.Fuzz(func(t *testing.T, callID, ani, key, val string, disp uint8, segMS, pauseMS int64, flag bool) {
		start := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
		at := func(ms int64) ledger.Time { return ledger.T(start.Add(time.Duration(ms) * time.Millisecond)) }
		d := []string{ledger.DispositionUpload, ledger.DispositionBasicOnly, ledger.DispositionDiscard}[int(disp)%3]
		rt := ledger.RecServer
		if flag {
			rt = ledger.RecGateway
		}
		c := ledger.Contact{
			ContactID: "01KAQ0000000000000000000" + callID, CallID: callID, UserID: val, Extension: key,
			Team: "a", RecordingType: rt, Direction: "inbound", ANI: ani, DNIS: "3420",
			StartedAt: at(0), EndedAt: at(segMS), Deleted: flag, RootMayPersist: flag && d == ledger.DispositionBasicOnly,
			Disposition: &d, RetainUntil: "2026-12-23", ReasonCodes: []string{ledger.CodeTagged, ani},
			Segments: []ledger.Segment{{Start: at(0), End: at(segMS)}, {Start: at(segMS + 10), End: at(2*segMS + 10)}},
			Pauses: []ledger.Pause{{Start: at(pauseMS), End: at(pauseMS * 2), EndedBy: val},
				{Start: at(pauseMS / 2), EndedBy: ledger.EndedByResume}, {Start: at(-pauseMS)}},
		}
		if key != "" {
			c.Metadata = map[string]string{key: val, "z" + key: ani, "a": callID}
		}
		if flag {
			c.ReasonCodes = nil
		}
		checkRender(t, c)
	})
}

// FuzzAppendTime holds the hand-written time format to Time.MarshalJSON.
func FuzzAppendTime(f *testing.F) {
	f.Add(int64(0))
	f.Add(scriptDay.UnixMilli())
	f.Add(int64(-62135596800000))
	f.Add(int64(253402300799999))
	f.Fuzz(func(t *testing.T, ms int64) {
		tm := ledger.T(time.UnixMilli(ms))
		want, err := tm.MarshalJSON()
		if err != nil {
			return
		}
		if got := appendTime(nil, tm); !bytes.Equal(got, want) {
			t.Fatalf("appendTime %s, MarshalJSON %s", got, want)
		}
	})
}
