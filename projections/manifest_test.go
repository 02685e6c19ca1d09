package projections

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"github.com/oklog/ulid/v2"

	"github.com/recledger/recledger/ledger"
)

// TestManifestScripts runs the golden scripts under testdata/manifest with
// the harness of script_test.go, plus one directive:
//
//	identical <day>   the manifest's bytes are the same when read twice,
//	                  when parsed and rendered again, and after a checkpoint
//	                  round trip; prints their size and SHA-256
//
// Regenerate with: go test ./projections -run TestManifestScripts -update
func TestManifestScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/manifest/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			r := newScriptRun()
			datadriven.RunTest(t, f, func(t *testing.T, d *datadriven.TestData) string {
				if d.Cmd == "identical" {
					return identical(t, r, d.CmdArgs[0].Key)
				}
				return r.alias(r.directive(t, d))
			})
		})
	}
}

func identical(t *testing.T, r *scriptRun, day string) string {
	t.Helper()
	a, err := r.s.Manifest(context.Background(), day)
	if err != nil {
		return "error: " + err.Error() + "\n"
	}
	b, _ := r.s.Manifest(context.Background(), day)
	if !bytes.Equal(a, b) {
		t.Fatalf("manifest %s differs between two reads", day)
	}
	if !bytes.HasSuffix(a, []byte("}\n")) || bytes.Count(a, []byte("\n")) != 1 {
		t.Fatalf("manifest %s is not compact JSON and one newline", day)
	}
	m, err := ParseManifest(a)
	if err != nil {
		t.Fatal(err)
	}
	again, err := m.Render()
	if err != nil || !bytes.Equal(a, again) {
		t.Fatalf("manifest %s re-rendered differs:\n%s\n%s", day, a, again)
	}
	checkCounts(t, m)
	s2 := roundTrip(t, r.s, r.store)
	c, err := s2.Manifest(context.Background(), day)
	if err != nil || !bytes.Equal(a, c) {
		t.Fatalf("manifest %s differs after a checkpoint round trip: %v", day, err)
	}
	return fmt.Sprintf("%d bytes sha256=%x\n", len(a), sha256.Sum256(a))
}

// checkCounts fails unless the counts agree with the listed entries.
func checkCounts(t *testing.T, m Manifest) {
	t.Helper()
	var up, basic int
	for _, raw := range m.Contacts {
		var c ManifestBasic
		if err := json.Unmarshal(raw, &c); err != nil {
			t.Fatal(err)
		}
		switch c.Disposition {
		case ledger.DispositionUpload:
			up++
		case ledger.DispositionBasicOnly:
			basic++
		default:
			t.Errorf("listed contact %s with disposition %q", c.ContactID, c.Disposition)
		}
	}
	n := m.Counts
	if n.Upload != up || n.BasicOnly != basic || n.MetadataUpdates != len(m.MetadataUpdates) || n.Total != n.Upload+n.BasicOnly+n.Discard {
		t.Errorf("counts %+v disagree with %d upload, %d basic_only, %d updates listed", n, up, basic, len(m.MetadataUpdates))
	}
}

func mt(s string) ledger.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return ledger.T(t)
}

func disp(s string) *string { return &s }

// sealEnv is a day_closed envelope at seq and time at, with a real hash.
func sealEnv(t *testing.T, seq uint64, at string, day string) (*ledger.Envelope, ledger.DayClosed) {
	t.Helper()
	d := ledger.DayClosed{Day: day, By: ledger.SealSchedule}
	data, err := ledger.EncodeData(d)
	if err != nil {
		t.Fatal(err)
	}
	tm := mt(at)
	e := &ledger.Envelope{Seq: seq, ID: ulid.MustNew(ulid.Timestamp(tm.Time), bytes.NewReader(make([]byte, 16))),
		Time: tm, Type: ledger.TypeDayClosed, Version: 1, Data: data}
	if _, err := e.Seal(strings.Repeat("ab", 32)); err != nil {
		t.Fatal(err)
	}
	return e, d
}

func uploadContact(id, ended string) ledger.Contact {
	return ledger.Contact{
		ContactID: id, CallID: "call-" + id, UserID: "jdoe", Extension: "3420", Team: "sales",
		RecordingType: ledger.RecDesktop, Direction: ledger.DirectionInbound, ANI: "+13125550100", DNIS: "8001",
		StartedAt: mt("2026-11-23T14:00:00Z"), EndedAt: mt(ended),
		Segments:    []ledger.Segment{{Start: mt("2026-11-23T14:00:01Z"), End: mt(ended)}},
		ReasonCodes: []string{ledger.CodeTagged}, Metadata: map[string]string{"account": "123"},
		Disposition: disp(ledger.DispositionUpload), RetainUntil: "2027-11-23",
	}
}

func cfgTZ(tz string) ledger.Config {
	var c ledger.Config
	c.Site.Timezone = tz
	c.Normalize()
	return c
}

func TestSilenceClippedToSegments(t *testing.T) {
	segs := []ledger.Segment{
		{Start: mt("2026-11-23T14:00:00Z"), End: mt("2026-11-23T14:01:00Z")},
		{Start: mt("2026-11-23T14:02:00Z"), End: mt("2026-11-23T14:03:00Z")},
	}
	pauses := []ledger.Pause{
		// spans the end of the first segment and the start of the second
		{Start: mt("2026-11-23T14:00:50.250Z"), End: mt("2026-11-23T14:02:10Z"), EndedBy: ledger.EndedByResume},
		// open: runs to the segment's end
		{Start: mt("2026-11-23T14:02:30Z"), EndedBy: ""},
		// entirely between segments: left out
		{Start: mt("2026-11-23T14:01:10Z"), End: mt("2026-11-23T14:01:20Z"), EndedBy: ledger.EndedByResume},
	}
	got := silences(segs, pauses)
	want := []ManifestSegment{
		{Start: segs[0].Start, End: segs[0].End, Silence: []Silence{
			{Start: mt("2026-11-23T14:00:50.250Z"), End: segs[0].End, StartMS: 50250, EndMS: 60000, EndedBy: "resume"},
		}},
		{Start: segs[1].Start, End: segs[1].End, Silence: []Silence{
			{Start: segs[1].Start, End: mt("2026-11-23T14:02:10Z"), StartMS: 0, EndMS: 10000, EndedBy: "resume"},
			{Start: mt("2026-11-23T14:02:30Z"), End: segs[1].End, StartMS: 30000, EndMS: 60000},
		}},
	}
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(want)
	if !bytes.Equal(gb, wb) {
		t.Fatalf("silences:\n got %s\nwant %s", gb, wb)
	}
}

func TestRenderContactByDisposition(t *testing.T) {
	up := uploadContact("c1", "2026-11-23T14:05:00Z")
	up.Pauses = []ledger.Pause{{Start: mt("2026-11-23T14:02:00Z"), End: mt("2026-11-23T14:03:00Z"), EndedBy: "resume", Seconds: 60}}
	b, err := RenderContact(up)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"segments":`, `"silence":[{`, `"start_ms":119000`, `"metadata":{"account":"123"}`, `"retain_until":"2027-11-23"`} {
		if !bytes.Contains(b, []byte(k)) {
			t.Errorf("upload entry lacks %s: %s", k, b)
		}
	}
	if bytes.Contains(b, []byte("pauses_applied_at")) {
		t.Errorf("desktop contact marked pauses_applied_at: %s", b)
	}

	gw := up
	gw.RecordingType = ledger.RecGateway
	if b, _ = RenderContact(gw); !bytes.Contains(b, []byte(`"pauses_applied_at":"upload"`)) {
		t.Errorf("gateway entry lacks pauses_applied_at: %s", b)
	}

	del := up
	del.Deleted, del.Disposition = true, disp(ledger.DispositionBasicOnly)
	b, err = RenderContact(del)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"segments", "metadata", "silence", "reason_codes", "retain_until"} {
		if bytes.Contains(b, []byte(`"`+k+`"`)) {
			t.Errorf("basic_only entry holds %s: %s", k, b)
		}
	}
	if !bytes.Contains(b, []byte(`"ani":"+13125550100"`)) || !bytes.Contains(b, []byte(`"deleted":true`)) {
		t.Errorf("basic_only entry lacks call data: %s", b)
	}

	dis := up
	dis.Disposition = disp(ledger.DispositionDiscard)
	if b, err = RenderContact(dis); err != nil || b != nil {
		t.Errorf("discard: got %s, %v; want nil, nil", b, err)
	}

	open := up
	open.Disposition = nil
	if _, err = RenderContact(open); !errors.Is(err, ledger.ErrInvalid) {
		t.Errorf("open contact: err %v, want ErrInvalid", err)
	}
}

func TestBookSealOrderCountsAndUpdates(t *testing.T) {
	b := newManifestBook()
	cfg := cfgTZ("America/New_York")
	b.contactClosed(uploadContact("c2", "2026-11-23T15:00:00Z"))
	b.contactClosed(uploadContact("c1", "2026-11-23T15:00:00Z")) // same end: id order
	b.contactClosed(uploadContact("c0", "2026-11-23T16:00:00Z"))
	d := uploadContact("c3", "2026-11-23T14:30:00Z")
	d.Disposition = disp(ledger.DispositionDiscard)
	b.contactClosed(d)

	e, dc := sealEnv(t, 10, "2026-11-24T04:00:00Z", "2026-11-23")
	ch, err := b.dayClosed(e, dc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(ch) != 1 || !strings.Contains(ch[0], "sealed") {
		t.Fatalf("changes %q", ch)
	}
	raw, err := b.manifest(context.Background(), nil, "2026-11-23")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(raw, []byte("}\n")) || bytes.Count(raw, []byte("\n")) != 1 {
		t.Fatalf("manifest is not compact JSON and one newline: %q", raw)
	}
	m, err := ParseManifest(raw)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range m.Contacts {
		var v ManifestBasic
		if err := json.Unmarshal(c, &v); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, v.ContactID)
	}
	if strings.Join(ids, ",") != "c1,c2,c0" {
		t.Errorf("contact order %v, want c1,c2,c0", ids)
	}
	if m.Counts != (ManifestCounts{Upload: 3, Discard: 1, Total: 4}) {
		t.Errorf("counts %+v", m.Counts)
	}
	if m.ChainHead != e.Hash || m.SealSeq != 10 || m.PreviousSealSeq != 0 || m.SealEventID != e.ID.String() || m.Timezone != "America/New_York" {
		t.Errorf("header %+v", m)
	}
	if b.day("c3") != "2026-11-23" || b.day("c1") != "2026-11-23" || b.day("nope") != "" {
		t.Errorf("day of contacts: %q %q", b.day("c3"), b.day("c1"))
	}

	// sealing again, or an earlier day, changes nothing
	e2, dc2 := sealEnv(t, 11, "2026-11-24T04:00:01Z", "2026-11-23")
	if ch, _ = b.dayClosed(e2, dc2, cfg); len(ch) != 1 || !strings.Contains(ch[0], "already sealed") {
		t.Errorf("second seal: %q", ch)
	}
	e3, dc3 := sealEnv(t, 12, "2026-11-24T04:00:02Z", "2026-11-20")
	if ch, _ = b.dayClosed(e3, dc3, cfg); len(ch) != 1 || !strings.Contains(ch[0], "before the last sealed day") {
		t.Errorf("earlier seal: %q", ch)
	}
	if again, _ := b.manifest(context.Background(), nil, "2026-11-23"); !bytes.Equal(again, raw) {
		t.Errorf("manifest changed by a repeated seal")
	}

	// metadata on c1 after the seal, a late tag on discarded c3, a change
	// to a still-discarded contact (not listed), and a new contact
	c1 := uploadContact("c1", "2026-11-23T15:00:00Z")
	c1.Metadata = map[string]string{"account": "999"}
	b.contactUpdatedAt(20, c1)
	c1.Metadata["agentname"] = "x"
	b.contactUpdatedAt(21, c1) // latest wins
	d.Disposition = disp(ledger.DispositionUpload)
	d.ReasonCodes = []string{ledger.CodeTagged}
	b.contactUpdatedAt(22, d)
	b.contactClosed(uploadContact("c4", "2026-11-24T15:00:00Z"))

	e4, dc4 := sealEnv(t, 30, "2026-11-25T04:00:00Z", "2026-11-24")
	if _, err := b.dayClosed(e4, dc4, cfg); err != nil {
		t.Fatal(err)
	}
	raw2, _ := b.manifest(context.Background(), nil, "2026-11-24")
	m2, err := ParseManifest(raw2)
	if err != nil {
		t.Fatal(err)
	}
	if m2.PreviousSealSeq != 10 || m2.Counts != (ManifestCounts{Upload: 1, MetadataUpdates: 2, Total: 1}) {
		t.Errorf("second manifest header/counts: %+v", m2.Counts)
	}
	if len(m2.MetadataUpdates) != 2 || m2.MetadataUpdates[0].ContactID != "c1" || m2.MetadataUpdates[0].Seq != 21 ||
		m2.MetadataUpdates[0].Day != "2026-11-23" || !bytes.Contains(m2.MetadataUpdates[0].Contact, []byte(`"agentname":"x"`)) ||
		m2.MetadataUpdates[1].ContactID != "c3" || !bytes.Contains(m2.MetadataUpdates[1].Contact, []byte(`"segments"`)) {
		t.Errorf("metadata updates: %s", raw2)
	}
	if got := b.Order; strings.Join(got, ",") != "2026-11-23,2026-11-24" {
		t.Errorf("sealed days %v", got)
	}
	if !b.LastAt.Equal(e4.Time.Time) || b.LastSeq != 30 {
		t.Errorf("last seal at %s seq %d", b.LastAt, b.LastSeq)
	}
}

// TestRenderIsEncodingJSON pins the hand-joined rendering to what
// encoding/json writes for the same Manifest, and shows that untrusted
// entries are compacted.
func TestRenderIsEncodingJSON(t *testing.T) {
	b := newManifestBook()
	for i, id := range []string{"c2", "c1", "c3"} {
		c := uploadContact(id, fmt.Sprintf("2026-11-23T15:0%d:00Z", i))
		c.Metadata["note"] = "<&>"
		b.contactClosed(c)
	}
	b.DayOf["c0"] = "2026-11-22"
	b.contactUpdatedAt(7, uploadContact("c0", "2026-11-22T10:00:00Z"))
	e, d := sealEnv(t, 9, "2026-11-23T23:00:00Z", "2026-11-23")
	if _, err := b.dayClosed(e, d, cfgTZ("UTC")); err != nil {
		t.Fatal(err)
	}
	got, _ := b.manifest(context.Background(), nil, "2026-11-23")
	m, err := ParseManifest(got)
	if err != nil {
		t.Fatal(err)
	}
	var ref bytes.Buffer
	if err := json.NewEncoder(&ref).Encode(m); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, ref.Bytes()) {
		t.Fatalf("render differs from encoding/json:\n%s\n%s", got, ref.Bytes())
	}
	m.Contacts[0] = json.RawMessage(" {\"contact_id\" : \"c2\"} ")
	out, err := m.Render()
	if err != nil || !bytes.Contains(out, []byte(`"contacts":[{"contact_id":"c2"},`)) {
		t.Fatalf("untrusted entry not compacted: %s %v", out, err)
	}
	m.Contacts[0] = json.RawMessage("{")
	if _, err := m.Render(); err == nil {
		t.Fatal("rendered an invalid entry")
	}
}

func TestBookCheckpointRoundTrip(t *testing.T) {
	b := newManifestBook()
	cfg := cfgTZ("UTC")
	c := uploadContact("c1", "2026-11-23T15:00:00Z")
	c.Metadata["note"] = "a<b>"
	b.contactClosed(c)
	e, d := sealEnv(t, 5, "2026-11-23T23:00:00Z", "2026-11-23")
	if _, err := b.dayClosed(e, d, cfg); err != nil {
		t.Fatal(err)
	}
	b.contactClosed(uploadContact("c2", "2026-11-24T15:00:00Z"))
	ctx := context.Background()
	want, _ := b.manifest(ctx, nil, "2026-11-23")

	// The sealed manifests are sections the checkpoint names.
	s := New()
	s.book = b
	enc, err := s.MarshalCheckpoint()
	if err != nil {
		t.Fatal(err)
	}
	m := memSections{}
	s2 := roundTrip(t, s, m)
	back := s2.book
	got, err := back.manifest(ctx, m, "2026-11-23")
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("manifest after checkpoint round trip differs:\n%s\n%s", got, want)
	}
	enc2, _ := s2.MarshalCheckpoint()
	if !bytes.Equal(enc, enc2) {
		t.Errorf("checkpoint encoding is not stable")
	}
	// sealing the next day from either book gives the same bytes
	e2, d2 := sealEnv(t, 9, "2026-11-24T23:00:00Z", "2026-11-24")
	if _, err := b.dayClosed(e2, d2, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := back.dayClosed(e2, d2, cfg); err != nil {
		t.Fatal(err)
	}
	x, _ := b.manifest(ctx, m, "2026-11-24")
	y, _ := back.manifest(ctx, m, "2026-11-24")
	if !bytes.Equal(x, y) {
		t.Errorf("next manifest differs after round trip:\n%s\n%s", x, y)
	}
	if _, err := b.manifest(ctx, m, "2026-11-25"); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("unsealed day: %v", err)
	}
}

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(`{"format":"recledger.manifest/1","day":"2026-11-23","contacts":[],"metadata_updates":[]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(b)
		if err != nil {
			return
		}
		out, err := m.Render()
		if err != nil {
			t.Fatal(err)
		}
		m2, err := ParseManifest(out)
		if err != nil {
			t.Fatalf("re-parse of rendered manifest: %v", err)
		}
		out2, err := m2.Render()
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("render not stable:\n%s\n%s", out, out2)
		}
	})
}

// BenchmarkContactClosed is the cost the manifest book adds to each contact
// close: rendering its manifest entry.
func BenchmarkContactClosed(b *testing.B) {
	c := uploadContact("c1", "2026-11-23T15:00:00Z")
	c.Pauses = []ledger.Pause{{Start: mt("2026-11-23T14:02:00Z"), End: mt("2026-11-23T14:03:00Z"), EndedBy: "resume"}}
	bk := newManifestBook()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c.ContactID = fmt.Sprintf("c%07d", i%10000)
		bk.contactClosed(c)
	}
}

// BenchmarkSealDay seals a day of 10,000 contacts (a large site).
func BenchmarkSealDay(b *testing.B) {
	const n = 10000
	cfg := cfgTZ("UTC")
	var t testing.T
	e, d := sealEnv(&t, 1, "2026-11-23T23:00:00Z", "2026-11-23")
	base := newManifestBook()
	for i := range n {
		c := uploadContact(fmt.Sprintf("c%07d", i), "2026-11-23T15:00:00Z")
		c.EndedAt = ledger.T(c.EndedAt.Add(time.Duration(i%5000) * time.Second))
		if i%3 == 0 {
			c.Disposition = disp(ledger.DispositionDiscard)
		}
		base.contactClosed(c)
	}
	b.ReportAllocs()
	var size int
	for b.Loop() {
		bk := base
		bk.Pending = maps.Clone(base.Pending)
		bk.DayOf, bk.Order, bk.Manifests, bk.sealed = map[string]string{}, nil, nil, nil
		if _, err := bk.dayClosed(e, d, cfg); err != nil {
			b.Fatal(err)
		}
		size = bk.Manifests[0].Len
	}
	b.ReportMetric(float64(size), "manifest-bytes")
}
