package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/projections"
	"github.com/recledger/recledger/replay/replaytest"
)

func TestPausesCommandFormats(t *testing.T) {
	d := writeOfflineDay(t, false, 20)
	want, err := d.live.Pauses(context.Background(), ledger.PauseQuery{})
	if err != nil || len(want) < 3 {
		t.Fatalf("the day has %d pauses", len(want))
	}

	out, err := runCmd(t, &PausesCommand{}, "--data", d.dir, "--format", "json")
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ Pauses []ledger.PauseRow }
	if err := json.Unmarshal([]byte(out), &got); err != nil || !reflect.DeepEqual(got.Pauses, want) {
		t.Fatalf("json: %v\n%s", err, out)
	}
	// The JSON field names, in order, are the CSV header.
	var fields []string
	dec := json.NewDecoder(strings.NewReader(out))
	depth := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		switch v := tok.(type) {
		case json.Delim:
			if v == '{' || v == '[' {
				depth++
			} else {
				depth--
			}
		case string:
			if depth == 3 && len(fields) < len(ledger.PauseCSVHeader()) && dec.More() {
				fields = append(fields, v)
				dec.Token() // the value
			}
		}
	}

	out, err = runCmd(t, &PausesCommand{}, "--data", d.dir, "--format", "csv")
	if err != nil {
		t.Fatal(err)
	}
	if upper, err := runCmd(t, &PausesCommand{}, "--data", d.dir, "--format", "CSV"); err != nil || upper != out {
		t.Fatalf("--format CSV, as the API takes format=CSV: %v", err)
	}
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(recs[0], fields) {
		t.Fatalf("csv header %q, json fields %q", recs[0], fields)
	}
	if len(recs) != len(want)+1 {
		t.Fatalf("csv has %d rows, want %d", len(recs)-1, len(want))
	}
	for i, p := range want {
		if r := recs[i+1]; r[0] != p.ContactID || r[4] != p.Start.String() || r[5] != p.End.String() || r[6] != p.EndedBy || r[11] != p.OpenEventID {
			t.Errorf("csv row %d %q, want %+v", i, r, p)
		}
	}

	out, err = runCmd(t, &PausesCommand{}, "--data", d.dir)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != len(want)+1 || !strings.HasPrefix(lines[0], "contact_id  ") {
		t.Fatalf("table:\n%s", out)
	}
	// Aligned: every row's second column starts where the header's does.
	col := strings.Index(lines[0], "call_id")
	for _, l := range lines[1:] {
		if l[col-1] != ' ' || l[col] == ' ' {
			t.Errorf("row not aligned at %d: %q", col, l)
		}
	}
}

// afterSeal is the seq of the day's seal: a checkpoint there names the
// day's sections, which the offline commands then read from the store.
func afterSeal() uint64 {
	n := 0
	for _, b := range replaytest.DayEvents() {
		n += len(b)
	}
	return uint64(n - 2) // the seal, then two events of the next morning
}

func TestPausesCommandFilters(t *testing.T) {
	d := writeOfflineDay(t, false, afterSeal())
	all, err := d.live.Pauses(context.Background(), ledger.PauseQuery{})
	if err != nil || len(all) < 2 {
		t.Fatalf("%d pauses (%v), want two or more", len(all), err)
	}
	one := all[1]
	for _, tc := range []struct {
		args []string
		q    ledger.PauseQuery
	}{
		{[]string{"--user", "jdoe"}, ledger.PauseQuery{UserID: "jdoe"}},
		{[]string{"--contact", strings.ToLower(one.ContactID)}, ledger.PauseQuery{ContactID: one.ContactID}},
		{[]string{"--call", one.CallID}, ledger.PauseQuery{CallID: one.CallID}},
		{[]string{"--user", "asmith", "--from", replaytest.Day}, ledger.PauseQuery{UserID: "asmith", From: day(t, replaytest.Day)}},
		{[]string{"--to", "2026-11-23T08:00:05Z"}, ledger.PauseQuery{To: day(t, "2026-11-23T08:00:05Z")}},
		{[]string{"--from", "2026-11-24"}, ledger.PauseQuery{From: day(t, "2026-11-24")}},
	} {
		out, err := runCmd(t, &PausesCommand{}, append([]string{"--data", d.dir, "--format", "json"}, tc.args...)...)
		if err != nil {
			t.Fatal(err)
		}
		var got struct{ Pauses []ledger.PauseRow }
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatal(err)
		}
		want, _ := d.live.Pauses(context.Background(), tc.q)
		if !reflect.DeepEqual(got.Pauses, want) || len(want) == len(all) && tc.q.ContactID+tc.q.CallID != "" {
			t.Errorf("%q: %d rows, want %d (of %d)", tc.args, len(got.Pauses), len(want), len(all))
		}
		// The table (the default) holds the same rows, under its header.
		table, err := runCmd(t, &PausesCommand{}, append([]string{"--data", d.dir}, tc.args...)...)
		if err != nil || strings.Count(table, "\n") != len(want)+1 {
			t.Errorf("%q as a table: %v, %d lines for %d rows:\n%s", tc.args, err, strings.Count(table, "\n"), len(want), table)
		}
	}
	for _, bad := range [][]string{{"--from", "monday"}, {"--format", "xml"}, {"--contact", "garbage"}} {
		if _, err := runCmd(t, &PausesCommand{}, append([]string{"--data", d.dir}, bad...)...); !errors.Is(err, ledger.ErrInvalid) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	// A bound's form is checked before the ledger is read: said as such,
	// not as a data dir with no ledger.
	if _, err := runCmd(t, &PausesCommand{}, "--data", filepath.Join(t.TempDir(), "none"), "--to", "noon"); !errors.Is(err, ledger.ErrInvalid) || !strings.Contains(err.Error(), `--to "noon"`) {
		t.Errorf("--to noon of no data dir: %v", err)
	}
	// A user no configuration or event named: an error, not no rows.
	if out, err := runCmd(t, &PausesCommand{}, "--data", d.dir, "--user", "JDOE"); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("--user JDOE: %v\n%s", err, out)
	}
}

func day(t *testing.T, s string) ledger.Time {
	t.Helper()
	v, err := parsePauseTime("t", s, nil)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestManifestCommand(t *testing.T) {
	d := writeOfflineDay(t, false, afterSeal()) // the manifest is read from the checkpoint's section
	want, err := d.live.Manifest(context.Background(), replaytest.Day)
	if err != nil {
		t.Fatal(err)
	}
	out, err := runCmd(t, &ManifestCommand{}, "--data", d.dir, replaytest.Day)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSuffix(out, "\n") != strings.TrimSuffix(string(want), "\n") {
		t.Fatalf("manifest differs from the live one:\n%s\n%s", out, want)
	}
	// That was read through the checkpoint after the seal, whose summary
	// (contacts and pauses of the sealed day) also comes from its sections.
	sum, err := runCmd(t, &ReplayCommand{}, "--data", d.dir, "--from-checkpoint")
	if want := fmt.Sprintf("(from checkpoint at seq %d,", afterSeal()); err != nil || !strings.Contains(sum, want) || !strings.Contains(sum, d.digest) {
		t.Fatalf("replay summary lacks %q or the digest: %v\n%s", want, err, sum)
	}
	// Flags after the day work too.
	out2, err := runCmd(t, &ManifestCommand{}, replaytest.Day, "--data", d.dir)
	if err != nil || out2 != out {
		t.Fatalf("flags after DAY: %v", err)
	}
	if _, err := runCmd(t, &ManifestCommand{}, "--data", d.dir, "2026-11-24"); !errors.Is(err, ledger.ErrNotFound) ||
		!strings.Contains(err.Error(), "not sealed") {
		t.Fatalf("unsealed day: %v", err)
	}
	if _, err := runCmd(t, &ManifestCommand{}, "--data", d.dir, "23/11/2026"); !errors.Is(err, ledger.ErrInvalid) {
		t.Fatalf("bad day: %v", err)
	}
	if _, err := runCmd(t, &ManifestCommand{}, "--data", d.dir); !errors.Is(err, ledger.ErrInvalid) {
		t.Fatalf("no day: %v", err)
	}
}

// TestPausesStreamedAsCollected: the CSV and JSON that streamPauses writes
// are, byte for byte, what the collected rows give; and a log out of time
// order (EachPause stops with ledger.ErrUnordered before anything went
// out) is answered whole and sorted.
func TestPausesStreamedAsCollected(t *testing.T) {
	ctx := context.Background()
	for _, back := range []bool{false, true} {
		st := pausedState(t, back)
		rows, err := st.Pauses(ctx, ledger.PauseQuery{})
		if err != nil || len(rows) != 3 {
			t.Fatalf("%d rows: %v", len(rows), err)
		}
		if err := st.EachPause(ctx, ledger.PauseQuery{}, func(*ledger.PauseRow) error { return nil }); errors.Is(err, ledger.ErrUnordered) != back {
			t.Fatalf("times back %v: EachPause %v", back, err)
		}
		wantJSON, _ := json.Marshal(map[string][]ledger.PauseRow{"pauses": rows})
		var wantCSV strings.Builder
		each := func(fn func(*ledger.PauseRow) error) error {
			for i := range rows {
				if err := fn(&rows[i]); err != nil {
					return err
				}
			}
			return nil
		}
		if err := writePausesCSV(&wantCSV, each); err != nil {
			t.Fatal(err)
		}
		for format, want := range map[string]string{formatJSON: string(wantJSON) + "\n", formatCSV: wantCSV.String()} {
			var out strings.Builder
			if err := streamPauses(ctx, st, ledger.PauseQuery{}, format, &out); err != nil || out.String() != want {
				t.Errorf("times back %v, %s: %v\n%s\nwant\n%s", back, format, err, out.String(), want)
			}
		}
	}
	var out strings.Builder
	if err := streamPauses(ctx, pausedState(t, false), ledger.PauseQuery{UserID: "nobody"}, formatJSON, &out); err != nil || out.String() != `{"pauses":[]}`+"\n" {
		t.Errorf("no rows: %v %q", err, out.String())
	}
}

// A log out of time order found after some output went out (here more
// than the writer's buffer) fails the command, its output cut short: it
// is not followed by the whole sorted answer, which would repeat the
// rows already written and exit 0.
func TestPausesOutOfOrderAfterOutputFails(t *testing.T) {
	st := pausedStateOf(t, 1000, 999)
	for _, format := range []string{formatCSV, formatJSON} {
		var out strings.Builder
		err := streamPauses(context.Background(), st, ledger.PauseQuery{}, format, &out)
		if !errors.Is(err, ledger.ErrUnordered) || out.Len() == 0 || strings.Count(out.String(), "c-1,") > 1 {
			t.Errorf("%s: %v after %d bytes; want ErrUnordered, the output cut short", format, err, out.Len())
		}
	}
}

// pausedState folds three agents' paused calls, the second one an hour
// before the first when back is set.
func pausedState(t *testing.T, back bool) *projections.State {
	t.Helper()
	backAt := -1
	if back {
		backAt = 1
	}
	return pausedStateOf(t, 3, backAt)
}

// pausedStateOf folds agents agents' paused calls, the one of agent
// backAt (none when negative) an hour before the one before it.
func pausedStateOf(t *testing.T, agents, backAt int) *projections.State {
	t.Helper()
	cfg := ledger.Config{Users: map[string]ledger.User{}}
	for u := range agents {
		cfg.Users[fmt.Sprintf("u%d", u)] = ledger.User{Recording: ledger.RecServer, Extension: fmt.Sprintf("%d", 3000+u)}
	}
	cfg.Normalize()
	doc, err := ledger.EncodeData(cfg)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	st, prev, seq := projections.New(), "", uint64(0)
	add := func(step time.Duration, typ ledger.Type, data any) {
		t.Helper()
		raw, err := ledger.EncodeData(data)
		if err != nil {
			t.Fatal(err)
		}
		now, seq = now.Add(step), seq+1
		e := ledger.Envelope{Seq: seq, ID: ulid.MustNew(ulid.Timestamp(now), ulid.DefaultEntropy()), Time: ledger.T(now),
			Type: typ, Version: ledger.CurrentVersion, Data: raw}
		if _, err := e.Seal(prev); err != nil {
			t.Fatal(err)
		}
		prev = e.Hash
		if _, err := st.Apply(&e); err != nil {
			t.Fatal(err)
		}
	}
	add(0, ledger.TypeConfig, ledger.ConfigChange{Part: ledger.PartDocument, Op: ledger.OpPut, Value: doc})
	for u := range agents {
		step := time.Minute
		if u == backAt {
			step = -time.Hour
		}
		id, ext := fmt.Sprintf("c-%d", u), fmt.Sprintf("%d", 3000+u)
		add(step, ledger.TypeCallSignal, ledger.CallSignal{CallID: id, Extension: ext, Type: ledger.SignalRinging, Direction: ledger.DirectionInbound, ANI: "+13125550100", DNIS: "8001"})
		add(time.Second, ledger.TypeCallSignal, ledger.CallSignal{CallID: id, Extension: ext, Type: ledger.SignalAnswered})
		add(time.Second, ledger.TypeCommand, ledger.Command{Command: "pause", SenderID: fmt.Sprintf("u%d", u), Transport: "finesse"})
	}
	return st
}

// A date bound is the site's midnight: for a site west of UTC, a time in
// the small hours UTC comes before the day's end there, and the range is
// asked, not refused.
func TestPausesDateBoundInTheSiteZone(t *testing.T) {
	d := writeOfflineDay(t, false, 0)
	store, err := ledger.Open(filepath.Join(d.dir, LedgerFile), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	site, _ := json.Marshal(ledger.Site{UploadTime: "23:00", Timezone: "America/New_York"})
	_, err = store.Append(t.Context(), ledger.Event{Type: ledger.TypeConfig, Data: ledger.ConfigChange{Part: ledger.PartSite, Op: ledger.OpPut, Value: site}})
	store.Close()
	if err != nil {
		t.Fatal(err)
	}
	// 2026-11-24 in New York begins at 05:00Z: after 04:00Z.
	if _, err := runCmd(t, &PausesCommand{}, "--data", d.dir, "--from", "2026-11-24T04:00:00Z", "--to", "2026-11-24", "--format", "csv"); err != nil {
		t.Errorf("a range ending at the site's midnight: %v", err)
	}
	if _, err := runCmd(t, &PausesCommand{}, "--data", d.dir, "--from", "2026-11-24T06:00:00Z", "--to", "2026-11-24"); !errors.Is(err, ledger.ErrInvalid) {
		t.Errorf("to before from: %v, want it refused", err)
	}
	if _, err := runCmd(t, &PausesCommand{}, "--data", d.dir, "--from", "2026-11-24", "--to", "2026-11-24"); !errors.Is(err, ledger.ErrInvalid) ||
		!strings.Contains(err.Error(), "to=2026-11-25") {
		t.Errorf("the same day as both bounds: %v, want it refused with the day's to", err)
	}
}

// The table shows values as they are, not with the CSV's spreadsheet
// guard (an auditor compared an extension with the JSON's and the
// manifest's), and quotes one holding a control character, which would
// break the columns or drive the terminal, wherever it stands in the
// value, or bytes that are not UTF-8.
func TestPausesTableValuesAsTheyAre(t *testing.T) {
	rows := []ledger.PauseRow{
		{ContactID: "c-1", CallID: `=HYPERLINK("x")`, UserID: "pp", Extension: "+4915112345678", EndedBy: "resume"},
		{ContactID: "c-2", CallID: "a\tb\x1b[2J", UserID: "pp", Extension: "3420"},
		{ContactID: "c-3", CallID: "\x1b[2Jc", UserID: "pp", Extension: "3421", EndedBy: "resume"},
		{ContactID: "c-4", CallID: "caf\xe9", UserID: "pp", Extension: "3422", EndedBy: "resume"},
	}
	var b strings.Builder
	if err := writePausesTable(&b, rows); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{`=HYPERLINK("x")`, " +4915112345678 ", `"a\tb\x1b[2J"`, `"\x1b[2Jc"`, `"caf\xe9"`} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "'") || strings.Contains(out, "\x1b") {
		t.Errorf("table has a guard apostrophe or a raw escape:\n%s", out)
	}
	// An empty value is a "-": the columns stay aligned and countable.
	if lines := strings.Split(out, "\n"); len(lines) < 3 || len(strings.Fields(lines[2])) != len(strings.Fields(lines[0])) || !strings.Contains(lines[2], " - ") {
		t.Errorf("a row with empty values does not show them as -:\n%s", out)
	}
}
