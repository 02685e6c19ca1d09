package ledger

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// The CSV columns are PauseRow's JSON names, in its order, so that the
// CSV and the JSON of the pause history say the same things.
func TestPauseCSVColumnsAreTheJSONFields(t *testing.T) {
	var names []string
	rt := reflect.TypeFor[PauseRow]()
	for i := range rt.NumField() {
		names = append(names, strings.Split(rt.Field(i).Tag.Get("json"), ",")[0])
	}
	if h := PauseCSVHeader(); !slices.Equal(h, names) {
		t.Fatalf("CSV header %v, JSON fields %v", h, names)
	}
	start := T(time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC))
	p := PauseRow{ContactID: "c", Start: start, End: T(start.Add(1500 * time.Millisecond)), Seconds: 1.5, CloseEventID: "z", ResumeTransport: "finesse"}
	if r := p.CSVRecord(); len(r) != len(names) || r[0] != "c" || r[7] != "1.500" || r[len(r)-2] != "z" || r[len(r)-1] != "finesse" {
		t.Fatalf("record %q", r)
	}
	if b, err := json.Marshal(p); err != nil || !strings.Contains(string(b), `"seconds":1.5,`) || !strings.HasSuffix(string(b), `"resume_transport":"finesse"}`) {
		t.Fatalf("closed row: %s %v", b, err)
	}
	// Open: how long is not known yet, which 0 would not say.
	p = PauseRow{ContactID: "c", CallID: `"seconds":0,`, Start: start}
	if r := p.CSVRecord(); r[5] != "" || r[7] != "" {
		t.Fatalf("open row's end and seconds: %q %q", r[5], r[7])
	}
	b, err := json.Marshal(&p)
	var back map[string]any
	if err != nil || json.Unmarshal(b, &back) != nil || back["seconds"] != nil || back["call_id"] != `"seconds":0,` {
		t.Fatalf("open row: %s %v", b, err)
	}
}

// A call id or extension a spreadsheet would run as a formula is written
// to the CSV as text; other values are unchanged.
func TestPauseCSVKeepsFormulasOut(t *testing.T) {
	p := PauseRow{CallID: `=HYPERLINK("http://x","y")`, Extension: "+1 555", PausedBy: "@sum", ResumedBy: "-2+3",
		UserID: "\tcmd", Transport: "\r=1", ContactID: "c-1=2"}
	r := p.CSVRecord()
	want := map[int]string{0: "c-1=2", 1: `'=HYPERLINK("http://x","y")`, 2: "'\tcmd", 3: "'+1 555", 8: "'@sum", 9: "'-2+3", 10: "'\r=1"}
	for i, w := range want {
		if r[i] != w {
			t.Errorf("%s: %q, want %q", PauseCSVHeader()[i], r[i], w)
		}
	}
}

func TestWriteList(t *testing.T) {
	rows := []PauseRow{{ContactID: "a"}, {ContactID: "b"}}
	each := func(n int, err error) func(fn func(*PauseRow) error) error {
		return func(fn func(*PauseRow) error) error {
			for i := range rows[:n] {
				if err := fn(&rows[i]); err != nil {
					return err
				}
			}
			return err
		}
	}
	var b bytes.Buffer
	if err := WriteList(&b, "pauses", each(0, nil)); err != nil || b.String() != "{\"pauses\":[]}\n" {
		t.Fatalf("empty: %q %v", b.String(), err)
	}
	b.Reset()
	if err := WriteList(&b, "pauses", each(2, nil)); err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(map[string]any{"pauses": rows})
	if b.String() != string(want)+"\n" {
		t.Fatalf("list\n%s\nencoding/json\n%s", b.String(), want)
	}
	b.Reset()
	stop := errors.New("stop")
	if err := WriteList(&b, "pauses", each(1, stop)); !errors.Is(err, stop) || strings.HasSuffix(b.String(), "]}\n") {
		t.Fatalf("an error must leave the list unfinished: %q %v", b.String(), err)
	}
}

// A contact's open pause has no length yet: null, as a pause row's.
func TestOpenPauseSecondsAreNull(t *testing.T) {
	start := T(time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC))
	for _, c := range []struct {
		p    Pause
		want string
	}{
		{Pause{Start: start}, `"seconds":null}`},
		{Pause{Start: start, End: T(start.Add(time.Second)), EndedBy: "resume", Seconds: 1}, `"seconds":1}`},
	} {
		if b, err := json.Marshal(c.p); err != nil || !strings.HasSuffix(string(b), c.want) {
			t.Errorf("%+v: %s %v, want …%s", c.p, b, err, c.want)
		}
	}
}

// The pause JSON written by hand is what encoding/json writes of the
// fields (closed), with seconds null while open; texts that json.Marshal
// escapes (HTML characters, quotes, control characters, non-ASCII) too.
func FuzzPauseJSONByHand(f *testing.F) {
	f.Add("01JD", "c-77", "jdoe", "3420", "resume", "cad", int64(1500), true)
	f.Add("<a&b>", "c\"1\\", "é\x00", "+1#", "", "\u2028", int64(0), false)
	f.Fuzz(func(t *testing.T, id, call, user, ext, endedBy, transport string, ms int64, closed bool) {
		start := T(time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC))
		p := PauseRow{ContactID: id, CallID: call, UserID: user, Extension: ext, Start: start, EndedBy: endedBy,
			PausedBy: user, ResumedBy: endedBy, Transport: transport, OpenEventID: id, CloseEventID: call, ResumeTransport: transport}
		q := Pause{Start: start, EndedBy: endedBy}
		if closed {
			secs := float64(ms%100_000_000) / 1000
			if secs < 0 {
				secs = -secs
			}
			p.End, p.Seconds = T(start.Add(time.Duration(secs*1000)*time.Millisecond)), secs
			q.End, q.Seconds = p.End, p.Seconds
		}
		type row PauseRow
		type pause Pause
		for _, c := range []struct {
			got  []byte
			want any
		}{{p.AppendJSON(nil), row(p)}, {q.AppendJSON(nil), pause(q)}} {
			want, err := json.Marshal(c.want)
			if err != nil {
				t.Fatal(err)
			}
			if !closed {
				want = bytes.Replace(want, []byte(`"seconds":0`), []byte(`"seconds":null`), 1)
			}
			if !bytes.Equal(c.got, want) {
				t.Fatalf("by hand\n%s\nencoding/json\n%s", c.got, want)
			}
		}
	})
}

func BenchmarkPauseRowJSON(b *testing.B) {
	start := T(time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC))
	p := PauseRow{ContactID: "01JDAX3Y8Z0000000000000000", CallID: "c-77", UserID: "jdoe", Extension: "3420", Start: start,
		End: T(start.Add(time.Second)), EndedBy: "resume", Seconds: 1, PausedBy: "jdoe", ResumedBy: "jdoe", Transport: "cad",
		OpenEventID: "01JDAX3Y8Z0000000000000001", CloseEventID: "01JDAX3Y8Z0000000000000002", ResumeTransport: "cad"}
	type row PauseRow
	r := row(p)
	b.Run("by-hand", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf = p.AppendJSON(buf[:0])
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = json.Marshal(&r)
		}
	})
}

// failingWriter fails its nth write (1-based) only.
type failingWriter struct {
	bytes.Buffer
	n, calls int
}

var errWrite = errors.New("disk full")

func (w *failingWriter) fail() bool { w.calls++; return w.calls == w.n }

func (w *failingWriter) Write(b []byte) (int, error) {
	if w.fail() {
		return 0, errWrite
	}
	return w.Buffer.Write(b)
}

func (w *failingWriter) WriteString(s string) (int, error) {
	if w.fail() {
		return 0, errWrite
	}
	return w.Buffer.WriteString(s)
}

// A write that fails, wherever in the list (its opening, an item, the
// comma between two, its end), stops the list and is returned; so does an
// item that does not encode.
func TestWriteListStopsOnAFailedWrite(t *testing.T) {
	rows := []PauseRow{{ContactID: "a"}, {ContactID: "b"}, {ContactID: "c"}}
	// The writes: the opening, a, the comma, b, the comma, c, the end.
	for n := 1; n <= 7; n++ {
		w := &failingWriter{n: n}
		visited := 0
		err := WriteList(w, "pauses", func(fn func(*PauseRow) error) error {
			for i := range rows {
				visited++
				if err := fn(&rows[i]); err != nil {
					return err
				}
			}
			return nil
		})
		if !errors.Is(err, errWrite) || strings.HasSuffix(w.String(), "]}\n") {
			t.Errorf("write %d fails: %v, written %q", n, err, w.String())
		}
		if want := []int{0, 1, 2, 2, 3, 3, 3}[n-1]; visited != want {
			t.Errorf("write %d fails: %d rows handed over, want %d", n, visited, want)
		}
	}
	type unencodable struct{ C chan int }
	var b bytes.Buffer
	err := WriteList(&b, "x", func(fn func(*unencodable) error) error { return fn(&unencodable{}) })
	var ue *json.UnsupportedTypeError
	if !errors.As(err, &ue) || strings.HasSuffix(b.String(), "]}\n") {
		t.Errorf("an item that does not encode: %v, written %q", err, b.String())
	}
}
