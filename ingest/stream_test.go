package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/recledger/recledger/ledger"
)

// pauseViews answers the pause history from rows; EachPause fails with
// eachErr after failAfter rows (never when eachErr is nil), Pauses with
// pausesErr.
type pauseViews struct {
	Views     // the rest is not used by the pause history
	rows      []ledger.PauseRow
	failAfter int
	eachErr   error
	pausesErr error
}

// Location is the site's zone: UTC here.
func (v *pauseViews) Location() *time.Location { return time.UTC }

func (v *pauseViews) Pauses(context.Context, ledger.PauseQuery) ([]ledger.PauseRow, error) {
	if v.pausesErr != nil {
		return nil, v.pausesErr
	}
	return v.rows, nil
}

func (v *pauseViews) EachPause(_ context.Context, _ ledger.PauseQuery, fn func(*ledger.PauseRow) error) error {
	for i := range v.rows {
		if i == v.failAfter && v.eachErr != nil {
			return v.eachErr
		}
		if err := fn(&v.rows[i]); err != nil {
			return err
		}
	}
	return nil
}

// manyPauses is n rows, several times streamFlushBytes of JSON for n in
// the thousands.
func manyPauses(n int) []ledger.PauseRow {
	start := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	rows := make([]ledger.PauseRow, n)
	for i := range rows {
		at := start.Add(time.Duration(i) * time.Second)
		rows[i] = ledger.PauseRow{ContactID: fmt.Sprintf("contact-%06d", i), CallID: fmt.Sprintf("call-%d", i), UserID: "jdoe",
			Extension: "4711", Start: ledger.T(at), End: ledger.T(at.Add(30 * time.Second)), EndedBy: "resume", Seconds: 30,
			PausedBy: "jdoe", ResumedBy: "jdoe", Transport: "finesse", OpenEventID: fmt.Sprintf("open-%06d", i), CloseEventID: fmt.Sprintf("close-%06d", i)}
	}
	return rows
}

// TestPauseHistoryStreamed: the streamed answer is byte for byte the
// whole one (JSON and CSV, far longer than one send); an error before the
// first send is answered from Pauses; an error after it cuts the
// connection, so a client never gets a truncated list that parses.
func TestPauseHistoryStreamed(t *testing.T) {
	rows := manyPauses(5000)
	whole := &Server{views: &pauseViews{rows: rows}, log: slog.New(slog.DiscardHandler)}
	var wantJSON bytes.Buffer
	json.NewEncoder(&wantJSON).Encode(map[string]any{"pauses": rows})
	if wantJSON.Len() < 4*streamFlushBytes {
		t.Fatalf("test answer of %d bytes is not several sends", wantJSON.Len())
	}
	wantCSV := pausesCSV(rows)

	get := func(s *Server, target string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		s.handlePauses(rec, httptest.NewRequest("GET", target, nil))
		return rec
	}
	for _, tc := range []struct {
		target, ctype string
		want          []byte
	}{
		{"/v1/pauses", "application/json", wantJSON.Bytes()},
		{"/v1/pauses?format=csv", "text/csv; charset=utf-8", wantCSV},
		{"/v1/pauses?format=CSV", "text/csv; charset=utf-8", wantCSV}, // the format in any case
		{"/v1/pauses?format=Json", "application/json", wantJSON.Bytes()},
	} {
		rec := get(whole, tc.target)
		if rec.Code != 200 || rec.Header().Get("Content-Type") != tc.ctype || !bytes.Equal(rec.Body.Bytes(), tc.want) {
			t.Errorf("%s: %d %q, %d bytes, want 200 %q, the %d bytes of the whole answer", tc.target, rec.Code,
				rec.Header().Get("Content-Type"), rec.Body.Len(), tc.ctype, len(tc.want))
		}
	}
	// Empty.
	empty := &Server{views: &pauseViews{}, log: slog.New(slog.DiscardHandler)}
	if rec := get(empty, "/v1/pauses"); rec.Body.String() != "{\"pauses\":[]}\n" {
		t.Errorf("no rows: %q", rec.Body.String())
	}

	// Before anything was sent: a log out of order is answered whole by
	// Pauses, which sorts; another error with its own status, Pauses not
	// asked (it would fail again).
	early := &Server{views: &pauseViews{rows: rows, failAfter: 3, eachErr: fmt.Errorf("pauses: %w", ledger.ErrUnordered)}, log: slog.New(slog.DiscardHandler)}
	if rec := get(early, "/v1/pauses"); rec.Code != 200 || !bytes.Equal(rec.Body.Bytes(), wantJSON.Bytes()) {
		t.Errorf("early unordered: %d, %d bytes, want the whole answer from Pauses", rec.Code, rec.Body.Len())
	}
	if rec := get(early, "/v1/pauses?format=csv"); rec.Code != 200 || rec.Header().Get("Content-Type") != "text/csv; charset=utf-8" || !bytes.Equal(rec.Body.Bytes(), wantCSV) {
		t.Errorf("early unordered, CSV: %d %q, %d bytes, want the whole CSV answer from Pauses", rec.Code, rec.Header().Get("Content-Type"), rec.Body.Len())
	}
	failing := &Server{views: &pauseViews{rows: rows, failAfter: 3, eachErr: fmt.Errorf("read section: %w", ledger.ErrUnavailable),
		pausesErr: errors.New("Pauses asked")}, log: slog.New(slog.DiscardHandler)}
	if rec := get(failing, "/v1/pauses"); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("early error: %d %s, want 503", rec.Code, rec.Body.String())
	}

	// An error after the first send: the connection is cut.
	late := &Server{views: &pauseViews{rows: rows, failAfter: 4000, eachErr: ledger.ErrUnavailable}, log: slog.New(slog.DiscardHandler)}
	srv := httptest.NewServer(http.HandlerFunc(late.handlePauses))
	defer srv.Close()
	srv.Config.ErrorLog = nil
	resp, err := http.Get(srv.URL + "/v1/pauses")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil || json.Valid(body) {
		t.Errorf("late error: read %d bytes, err %v, valid JSON %v; want a cut connection", len(body), err, json.Valid(body))
	}
}

// contactViews answers contacts from cs.
type contactViews struct {
	Views
	cs []ledger.Contact
}

func (v *contactViews) Contacts(context.Context, ledger.ContactQuery) ([]ledger.Contact, error) {
	return v.cs, nil
}

func (v *contactViews) EachContact(_ context.Context, _ ledger.ContactQuery, fn func(*ledger.Contact) error) error {
	for i := range v.cs {
		if err := fn(&v.cs[i]); err != nil {
			return err
		}
	}
	return nil
}

// TestContactsStreamed: GET /v1/contacts streamed is byte for byte the
// whole answer, metadata maps and all.
func TestContactsStreamed(t *testing.T) {
	cs := make([]ledger.Contact, 3000)
	for i := range cs {
		d := ledger.DispositionUpload
		cs[i] = ledger.Contact{ContactID: fmt.Sprintf("contact-%06d", i), CallID: fmt.Sprintf("call-%d", i), UserID: "jdoe",
			StartedAt: ledger.T(time.Date(2026, 11, 23, 8, 0, i, 0, time.UTC)), Disposition: &d, Day: "2026-11-23",
			Metadata: map[string]string{"b": "<2>", "a": "1"}, ReasonCodes: []string{"sale"}}
	}
	var want bytes.Buffer
	json.NewEncoder(&want).Encode(map[string]any{"contacts": cs})
	if want.Len() < 2*streamFlushBytes {
		t.Fatalf("test answer of %d bytes is not several sends", want.Len())
	}
	s := &Server{views: &contactViews{cs: cs}, log: slog.New(slog.DiscardHandler)}
	rec := httptest.NewRecorder()
	s.handleContacts(rec, httptest.NewRequest("GET", "/v1/contacts", nil))
	if rec.Code != 200 || !bytes.Equal(rec.Body.Bytes(), want.Bytes()) {
		t.Errorf("contacts: %d, %d bytes, want 200 and the %d bytes of the whole answer", rec.Code, rec.Body.Len(), want.Len())
	}
	empty := &Server{views: &contactViews{}, log: slog.New(slog.DiscardHandler)}
	rec = httptest.NewRecorder()
	empty.handleContacts(rec, httptest.NewRequest("GET", "/v1/contacts?day=2026-11-23", nil))
	if rec.Body.String() != "{\"contacts\":[]}\n" {
		t.Errorf("no contacts: %q", rec.Body.String())
	}
}

// takenPauses counts the rows the answer took from the pause history.
type takenPauses struct {
	*pauseViews
	taken int
}

func (v *takenPauses) EachPause(ctx context.Context, q ledger.PauseQuery, fn func(*ledger.PauseRow) error) error {
	return v.pauseViews.EachPause(ctx, q, func(p *ledger.PauseRow) error {
		v.taken++
		return fn(p)
	})
}

// brokenWriter is a connection gone bad: every send of the body fails.
type brokenWriter struct {
	*httptest.ResponseRecorder
	sends int
}

func (w *brokenWriter) Write([]byte) (int, error) {
	w.sends++
	return 0, errors.New("write: broken pipe")
}

// TestStreamStopsOnAFailedSend: a send that fails ends the answer there:
// no more rows are read nor sends tried, the failure is logged and the
// connection cut, never the answer ended as though it were whole.
func TestStreamStopsOnAFailedSend(t *testing.T) {
	rows := manyPauses(5000)
	views := &takenPauses{pauseViews: &pauseViews{rows: rows}}
	var logs bytes.Buffer
	s := &Server{views: views, log: slog.New(slog.NewTextHandler(&logs, nil))}
	w := &brokenWriter{ResponseRecorder: httptest.NewRecorder()}
	func() {
		defer func() {
			if p := recover(); p != http.ErrAbortHandler {
				t.Errorf("the answer ended with %v, want the connection cut (http.ErrAbortHandler)", p)
			}
		}()
		s.handlePauses(w, httptest.NewRequest("GET", "/v1/pauses", nil))
	}()
	if w.sends != 1 || views.taken >= len(rows) {
		t.Errorf("after a failed send: %d sends tried, %d of %d rows read; want 1 send and the rows after it not read", w.sends, views.taken, len(rows))
	}
	if !bytes.Contains(logs.Bytes(), []byte("streamed answer cut short")) {
		t.Errorf("the failed send is not logged:\n%s", logs.String())
	}
}

// TestStreamedContentTypeOnTheWire: the content type reaches the client
// with the status, for a long answer (several sends) and a short one (one
// send at its end), JSON and CSV alike.
func TestStreamedContentTypeOnTheWire(t *testing.T) {
	for _, n := range []int{5000, 1} {
		s := &Server{views: &pauseViews{rows: manyPauses(n)}, log: slog.New(slog.DiscardHandler)}
		srv := httptest.NewServer(http.HandlerFunc(s.handlePauses))
		for _, c := range []struct{ query, ctype string }{{"", "application/json"}, {"?format=csv", "text/csv; charset=utf-8"}} {
			resp, err := http.Get(srv.URL + "/v1/pauses" + c.query)
			if err != nil {
				t.Fatal(err)
			}
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != c.ctype {
				t.Errorf("%d rows, /v1/pauses%s: %d %q, read error %v; want 200 %q", n, c.query, resp.StatusCode, resp.Header.Get("Content-Type"), err, c.ctype)
			}
		}
		srv.Close()
	}
}
