package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/recledger/recledger/ledger/ledgertest"
)

// serve bounds what clients can make it hold before any token is read:
// a header is at most httpMaxHeaderBytes (431 beyond; net/http's own 1
// MiB let a walk's 1,500 slow connections take 3.6 GB), and the
// connections open at once, idle or slow ones included, are at most
// --http-max-connections; beyond them an idle one gives way, or the new
// one is answered 503. The open ones are counted on /metrics.
func TestServeBoundsConnectionsAndHeaders(t *testing.T) {
	addr, maxConns := serveBounded(t)

	req, _ := http.NewRequest("GET", "http://"+addr+"/healthz", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 64<<10))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("a 64 KiB header: %v %v, want 431", resp, err)
	} else {
		resp.Body.Close()
	}

	// Clients that send half a header and stall.
	var held []net.Conn
	// stall holds a slot, once one is free (a slot is freed once the
	// server has seen its connection close): a connection shed is
	// answered at once, one held is not.
	stall := func() {
		t.Helper()
		waitFor(t, func() bool {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
				c.Close() // shed
				return false
			}
			c.SetReadDeadline(time.Time{})
			held = append(held, c)
			return true
		})
	}
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range maxConns - 1 {
		stall()
	}
	ask := func(c net.Conn, path string, wait time.Duration) (*http.Response, error) {
		c.SetDeadline(time.Now().Add(wait))
		if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path); err != nil {
			return nil, err
		}
		return http.ReadResponse(bufio.NewReader(c), nil)
	}
	// The last slot: /metrics, once the 431's connection is seen closed.
	var b []byte
	waitFor(t, func() bool {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		resp, err := ask(c, "/metrics", 10*time.Second)
		if err != nil || resp.StatusCode != 200 {
			return false
		}
		b, _ = io.ReadAll(resp.Body)
		return true
	})
	if m := regexp.MustCompile(`(?m)^recledger_http_open_connections (\d+)$`).FindStringSubmatch(string(b)); m == nil || m[1] != fmt.Sprint(maxConns) {
		t.Errorf("open connections on /metrics: %v, want %d", m, maxConns)
	}

	// All taken by stalled clients: a new connection is answered 503 at
	// once and closed, its request not read (in the kernel's queue it
	// waited, timed out at the client, and was applied when a slot
	// freed: a walk).
	stall()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := ask(c, "/recordingcontrols/rest/pause?sender_id=jdoe", 5*time.Second)
	if err != nil {
		t.Fatalf("a connection beyond the bound: %v, want a 503", err)
	}
	var e struct{ Reason, Message string }
	json.NewDecoder(resp.Body).Decode(&e)
	c.Close()
	if resp.StatusCode != 503 || e.Reason != "unavailable" || resp.Header.Get("Retry-After") != "1" || !strings.Contains(e.Message, "--http-max-connections 16") {
		t.Fatalf("a connection beyond the bound: %d %+v", resp.StatusCode, e)
	}
	for _, c := range held {
		c.Close()
	}
	held = nil

	// Idle keep-alive connections give way: 16 clients that made a
	// request and keep their connections, then one more is served.
	var keep []*http.Client
	for range maxConns {
		cl := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
		waitFor(t, func() bool {
			resp, err := cl.Get("http://" + addr + "/healthz")
			if err != nil {
				return false
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp.StatusCode == 200
		})
		keep = append(keep, cl)
	}
	defer func() {
		for _, cl := range keep {
			cl.CloseIdleConnections()
		}
	}()
	c, err = net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if resp, err := ask(c, "/healthz", 5*time.Second); err != nil || resp.StatusCode != 200 {
		t.Fatalf("with every slot idle: %v %v, want 200", resp, err)
	}
	if m := regexp.MustCompile(`(?m)^recledger_http_connections_shed_total (\d+)$`).FindStringSubmatch(metrics(t, addr)); m == nil || m[1] == "0" {
		t.Errorf("connections shed on /metrics: %v, want some", m)
	}
}

// serveBounded starts a server bounded to 16 connections, stopped when
// the test ends, and returns its address and the bound.
func serveBounded(t *testing.T) (addr string, maxConns int) {
	t.Helper()
	cfg := testServeConfig(t.TempDir())
	cfg.MaxConnections = 16
	srv, err := StartServer(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop(); _ = srv.Wait() })
	return srv.Addr(), cfg.MaxConnections
}

// waitFor waits for ok (a slot is freed once the server has seen its
// connection close).
func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	ledgertest.WaitFor(t, "the connections' slots", ok)
}

// metrics is /metrics of the server at addr, read on a connection of its
// own once one is served.
func metrics(t *testing.T, addr string) string {
	t.Helper()
	var body string
	waitFor(t, func() bool {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return resp.StatusCode == 200
	})
	return body
}

// An idle keep-alive connection whose next request has begun to arrive
// does not give way: ended under its request, the server answered it 400
// (a walk's desktop, whose header came in two packets, took that for a
// refusal and did not send the command again). With no other one idle, a
// new connection is answered 503, and the begun requests are served.
func TestBegunRequestIsNotGivenWay(t *testing.T) {
	addr, maxConns := serveBounded(t)
	type kept struct {
		c net.Conn
		r *bufio.Reader
	}
	var conns []kept
	defer func() {
		for _, k := range conns {
			k.c.Close()
		}
	}()
	for range maxConns {
		waitFor(t, func() bool {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(5 * time.Second))
			r := bufio.NewReader(c)
			io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
			resp, err := http.ReadResponse(r, nil)
			if err != nil || resp.StatusCode != 200 {
				c.Close()
				return false
			}
			io.Copy(io.Discard, resp.Body)
			conns = append(conns, kept{c, r})
			return true
		})
	}
	for _, k := range conns { // the next request, its first packet
		if _, err := io.WriteString(k.c, "GET /healthz HTTP/1.1\r\nHo"); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond) // the server reads what came
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode != 503 {
		t.Fatalf("a new connection while every one has a request begun: %v %v, want 503", resp, err)
	}
	for i, k := range conns { // the rest of it
		k.c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(k.c, "st: x\r\n\r\n"); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		if resp, err := http.ReadResponse(k.r, nil); err != nil || resp.StatusCode != 200 {
			t.Fatalf("connection %d, its request begun: %v %v, want 200", i, resp, err)
		}
	}
}
