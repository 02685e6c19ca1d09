package ingest_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/recledger/recledger/ledger"
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
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("an append during the copy took %v", d)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "backup cut off") {
		if time.Now().After(deadline) {
			t.Fatalf("no cut-off logged:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
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
	s, _ := newLoggedStack(t)
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
	if m := s.must(200, "GET", "/metrics", "", "").Raw; !strings.Contains(m, `recledger_backups_total{result="sent"} 1`) {
		t.Fatalf("metrics after a slow copy:\n%s", m)
	}
}

// A copy that cannot begin (the ledger closed) is answered 503 with a
// machine reason, and counted as failed: not an aborted connection, not
// an empty 200.
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
}
