package ingest_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// A client that sends its whole oversized body before reading the answer
// reads the 413, instead of having its connection reset under it (a
// walk's 2 MB POST got ECONNRESET in 14 of 30 tries); nothing is
// appended.
func TestTooLargeBodyAnsweredAfterItIsSent(t *testing.T) {
	s := newStack(t, nil)
	s.configure()
	before := head(s)
	for _, tc := range []struct{ path, ctype string }{
		{"/recordingcontrols/rest/tag", "application/x-www-form-urlencoded"},
		{"/v1/calls/events", "application/json"},
	} {
		for _, chunked := range []bool{false, true} {
			body := strings.Repeat("x", 1<<20+64<<10) // over both limits
			c, err := net.Dial("tcp", s.srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			// A small send buffer, as a client's may be: the body cannot
			// all sit in the kernel's buffers before the server reads it.
			c.(*net.TCPConn).SetWriteBuffer(32 << 10)
			c.SetDeadline(time.Now().Add(20 * time.Second))
			hdr := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n", tc.path, tc.ctype, len(body))
			if chunked {
				hdr = fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\n\r\n", tc.path, tc.ctype)
				body = fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(body), body)
			}
			// The whole request is written before anything is read, as
			// urllib and many desktop clients do.
			if _, err := io.WriteString(c, hdr+body); err != nil {
				t.Fatalf("%s chunked=%v: sending the body: %v (the connection was reset before the answer)", tc.path, chunked, err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("%s chunked=%v: reading the answer: %v", tc.path, chunked, err)
			}
			var e struct{ Reason string }
			json.NewDecoder(resp.Body).Decode(&e)
			resp.Body.Close()
			c.Close()
			if resp.StatusCode != 413 || e.Reason != "too_large" {
				t.Errorf("%s chunked=%v: %d %q, want 413 too_large", tc.path, chunked, resp.StatusCode, e.Reason)
			}
		}
	}
	// Any refusal of a request with a large body: a 405 here.
	c, err := net.Dial("tcp", s.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.(*net.TCPConn).SetWriteBuffer(32 << 10)
	c.SetDeadline(time.Now().Add(20 * time.Second))
	body := strings.Repeat("x", 1<<20)
	if _, err := fmt.Fprintf(c, "DELETE /recordingcontrols/rest/tag HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(body), body); err != nil {
		t.Fatalf("sending a DELETE's body: %v (the connection was reset before the answer)", err)
	}
	if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode != 405 {
		t.Fatalf("a DELETE with a body: %v %v, want 405", resp, err)
	}
	if head(s) != before {
		t.Errorf("refused bodies appended events: head %d → %d", before, head(s))
	}
}

// Large bodies (signal batches, configuration) share a budget: requests
// beyond it wait for the bytes to be let go, rather than making the
// server hold a megabyte for every slow client. Each one waiting is
// answered once the others are done.
func TestFeedBodiesShareABudget(t *testing.T) {
	s := newStack(t, nil)
	s.configure()
	// 80 clients each declare a 1 MiB batch and send half of it: the
	// server holds at most its budget (64 MiB) of such bodies, so some
	// wait to be read at all. Then each sends the rest.
	const clients = 80
	conns := make([]net.Conn, clients)
	batch := `[{"call_id":"c-0","extension":"3420","type":"held"}]`
	batch += strings.Repeat(" ", 1<<20-len(batch))
	for i := range conns {
		c, err := net.Dial("tcp", s.srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// Only against a hang: a loaded machine once took a minute.
		c.SetDeadline(time.Now().Add(3 * time.Minute))
		fmt.Fprintf(c, "POST /v1/calls/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(batch), batch[:len(batch)/2])
		conns[i] = c
	}
	var wg sync.WaitGroup
	codes := make([]int, clients)
	for i, c := range conns {
		wg.Go(func() {
			if _, err := io.WriteString(c, batch[len(batch)/2:]); err != nil {
				t.Errorf("client %d: %v", i, err)
				return
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Errorf("client %d: %v", i, err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes[i] = resp.StatusCode
		})
	}
	wg.Wait()
	for i, code := range codes {
		if code != 200 {
			t.Errorf("client %d: %d, want 200", i, code)
		}
	}
}

func head(s *stack) uint64 {
	h, _ := s.store.Head()
	return h
}
