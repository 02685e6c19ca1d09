package ingest_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/recledger/recledger/ingest"
	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/ledger/ledgertest"
)

// TestBackupCutsOffAClientThatStopsReading: a client that takes a copy's
// headers and then reads nothing is cut off once a write has waited the
// write bound; appends go on meanwhile, and the log and metrics say why.
func TestBackupCutsOffAClientThatStopsReading(t *testing.T) {
	s, logs := newLoggedStack(t)
	s.api.SetBackupWriteWait(300 * time.Millisecond)
	ctx := context.Background()
	fillBig(t, s)
	conn, err := net.Dial("tcp", s.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /v1/backup HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 512)
	if _, err := io.ReadAtLeast(conn, head, 64); err != nil || !strings.HasPrefix(string(head), "HTTP/1.1 200") {
		t.Fatalf("the copy's first bytes: %v %q", err, head)
	}
	// The client reads no more. Appends are not held up by the copy.
	for range 20 {
		start := time.Now()
		if _, err := s.store.Append(ctx, ledger.Event{Type: ledger.TypeCommand, Data: ledger.Command{Command: "tag", Transport: ledger.TransportHTTP}}); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 20*time.Second { // a guard against appends waiting for the copy's end
			t.Fatalf("an append during the copy took %v", d)
		}
	}
	waitLogged(t, logs, "backup cut off")
	if l := logs.String(); !strings.Contains(l, "the client took no bytes for 300ms") {
		t.Fatalf("the cut-off's reason:\n%s", l)
	}
	if m := s.must(200, "GET", "/metrics", "", "").Raw; !strings.Contains(m, `recledger_backups_total{result="cut_off"} 1`) {
		t.Fatalf("metrics after the cut-off:\n%s", m)
	}
}

// fillBig appends some 12 MB of events: a copy more than the sockets'
// buffers hold.
func fillBig(t *testing.T, s *stack) {
	t.Helper()
	big := strings.Repeat("x", 1000)
	for range 200 {
		events := make([]ledger.Event, 50)
		for i := range events {
			events[i] = ledger.Event{Type: ledger.TypeCommand, Data: ledger.Command{Command: "tag", Transport: ledger.TransportHTTP,
				Params: []ledger.Param{{Key: "note", Value: big}}}}
		}
		if _, err := s.store.Append(context.Background(), events...); err != nil {
			t.Fatal(err)
		}
	}
}

// The write bound is for each write, not the whole copy: a client that
// reads steadily gets a copy that takes many times the bound.
func TestBackupTakesLongerThanItsWriteBound(t *testing.T) {
	s, logs := newLoggedStack(t)
	s.api.SetBackupWriteWait(300 * time.Millisecond)
	fillBig(t, s)
	resp, err := http.Get(s.srv.URL + "/v1/backup")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	start := time.Now()
	buf := make([]byte, 1<<20)
	var n int64
	for {
		k, err := io.ReadFull(resp.Body, buf)
		n += int64(k)
		if err != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n != resp.ContentLength || time.Since(start) < time.Second {
		t.Fatalf("read %d of %d bytes in %v; want all of them, over more than three write bounds", n, resp.ContentLength, time.Since(start))
	}
	// The server counts the copy once its last write returns, which may
	// be after the client has read the last byte.
	waitLogged(t, logs, "backup sent")
	if m := s.must(200, "GET", "/metrics", "", "").Raw; !strings.Contains(m, `recledger_backups_total{result="sent"} 1`) {
		t.Fatalf("metrics after a slow copy:\n%s", m)
	}
}

// A copy that cannot begin (the ledger closed) is answered 503 with a
// machine reason, and counted as failed: not an aborted connection, not
// an empty 200; it leaves the time of the last whole copy alone.
func TestBackupThatCannotBeginIsAnError(t *testing.T) {
	s, _ := newLoggedStack(t)
	if err := s.store.Close(); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(s.srv.URL + "/v1/backup")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), `"reason":"unavailable"`) {
		t.Fatalf("backup of a closed ledger: %d %s", resp.StatusCode, body)
	}
	if m := s.must(200, "GET", "/metrics", "", "").Raw; !strings.Contains(m, `recledger_backups_total{result="failed"} 1`) {
		t.Fatalf("metrics after a failed copy:\n%s", m)
	}
	// No copy was sent: the time of the last stays 0, as docs/clients.md
	// says, not the zero time of a copy that never was.
	if at := gauge(t, s, "recledger_backup_last_sent_timestamp_seconds"); at != 0 {
		t.Errorf("the last whole copy after a failed one: %v, want 0", at)
	}
}

// TestBackupAnswersWhatTheCopyHolds: GET /v1/backup sends the ledger file
// with the headers docs/replay.md names (its size, the head it ends at,
// the site), the body opens as a ledger ending at that head; the copy is
// logged with who took it and sets the time of the last whole copy. HEAD
// gives the same headers alone: no copy is read, none is counted or
// logged as sent.
func TestBackupAnswersWhatTheCopyHolds(t *testing.T) {
	tok, err := ingest.ParseTokens([]byte(`{"tokens":[{"name":"ops","token":"admin-token-0123456789ab","roles":["admin"]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	logs := new(ledgertest.Buffer)
	s := newStackWith(t, nil, func(o *ingest.Options, _ *ledger.Store) {
		o.Tokens = tok
		o.Logger = slog.New(slog.NewTextHandler(logs, nil))
	})
	for range 3 {
		if _, err := s.store.Append(t.Context(), ledger.Event{Type: ledger.TypeCommand, Data: ledger.Command{Command: "tag", Transport: ledger.TransportHTTP}}); err != nil {
			t.Fatal(err)
		}
	}
	head, hash := s.store.Head()
	get := func(method string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, s.srv.URL+"/v1/backup", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer admin-token-0123456789ab")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("%s /v1/backup: %v", method, err)
		}
		return resp, body
	}
	checkHeaders := func(method string, resp *http.Response, size int64) {
		t.Helper()
		want := map[string]string{
			"Content-Type":        "application/octet-stream",
			"Content-Length":      strconv.FormatInt(size, 10),
			"Content-Disposition": `attachment; filename="recledger-test-3.db"`,
			"Cache-Control":       "no-store",
			"Recledger-Head-Seq":  "3",
			"Recledger-Head-Hash": hash,
			"Recledger-Site":      "test",
		}
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s /v1/backup: status %d", method, resp.StatusCode)
		}
		for k, v := range want {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("%s /v1/backup: %s %q, want %q", method, k, got, v)
			}
		}
	}

	before := time.Now()
	resp, body := get("GET")
	checkHeaders("GET", resp, int64(len(body)))
	path := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(path, body, 0o600); err != nil {
		t.Fatal(err)
	}
	copied, err := ledger.Open(path, ledger.Options{})
	if err != nil {
		t.Fatalf("the copy does not open as a ledger: %v", err)
	}
	if seq, h := copied.Head(); seq != head || h != hash {
		t.Errorf("the copy ends at seq %d %s, want %d %s", seq, h, head, hash)
	}
	copied.Close()
	// The server logs and counts the copy once its last byte is written,
	// which may be after the client has read it.
	waitLogged(t, logs, "backup sent")
	after := time.Now()
	if l := logs.String(); !strings.Contains(l, fmt.Sprintf(`msg="backup sent" head_seq=3 bytes=%d`, len(body))) || !strings.Contains(l, "principal=ops") {
		t.Errorf("the copy's log:\n%s", l)
	}
	if last := gauge(t, s, "recledger_backup_last_sent_timestamp_seconds"); last < float64(before.Unix()) || last > float64(after.Unix()+1) {
		t.Errorf("last copy sent at %v, want between %v and %v (Unix seconds)", last, before.Unix(), after.Unix())
	}

	resp, body = get("HEAD")
	checkHeaders("HEAD", resp, resp.ContentLength)
	if resp.ContentLength <= 0 || len(body) != 0 {
		t.Errorf("HEAD /v1/backup: Content-Length %d, %d bytes of body", resp.ContentLength, len(body))
	}
	m := s.must(200, "GET", "/metrics", "", "").Raw
	if !strings.Contains(m, `recledger_backups_total{result="sent"} 1`) || strings.Contains(m, `result="cut_off"`) || strings.Contains(m, `result="failed"`) {
		t.Errorf("metrics after a copy and a HEAD:\n%s", m)
	}
	if n := strings.Count(logs.String(), "backup sent"); n != 1 {
		t.Errorf("%d copies logged as sent, want 1:\n%s", n, logs.String())
	}
}

// gauge is the value of the unlabelled gauge name in s's registry.
func gauge(t *testing.T, s *stack, name string) float64 {
	t.Helper()
	mfs, err := s.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s", name)
	return 0
}

// TestBackupWaitsForAClientThatPauses: each write of a copy may wait half
// a minute; a client that pauses a second between reads gets it whole.
func TestBackupWaitsForAClientThatPauses(t *testing.T) {
	s, _ := newLoggedStack(t)
	fillBig(t, s)
	resp, err := http.Get(s.srv.URL + "/v1/backup")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make([]byte, 1<<20)
	n, err := io.ReadFull(resp.Body, first)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the sockets' buffers fill meanwhile
	rest, err := io.Copy(io.Discard, resp.Body)
	if err != nil || int64(n)+rest != resp.ContentLength {
		t.Fatalf("read %d of %d bytes after a pause: %v", int64(n)+rest, resp.ContentLength, err)
	}
}
