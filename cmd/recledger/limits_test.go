package main

import (
	"bufio"
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
)

// serve bounds what clients can make it hold before any token is read:
// a header is at most httpMaxHeaderBytes (431 beyond; net/http's own 1
// MiB let a walk's 1,500 slow connections take 3.6 GB), and the
// connections open at once, idle or slow ones included, are at most
// --http-max-connections; more wait to be accepted. The open ones are
// counted on /metrics.
func TestServeBoundsConnectionsAndHeaders(t *testing.T) {
	cfg := testServeConfig(t.TempDir())
	cfg.MaxConnections = 16
	srv, err := StartServer(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop(); _ = srv.Wait() })
	addr := srv.Addr()

	req, _ := http.NewRequest("GET", "http://"+addr+"/healthz", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 64<<10))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("a 64 KiB header: %v %v, want 431", resp, err)
	} else {
		resp.Body.Close()
	}

	// Clients that send half a header and stall.
	var held []net.Conn
	stall := func() {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "); err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range cfg.MaxConnections - 1 {
		stall()
	}
	ask := func(c net.Conn, path string, wait time.Duration) (*http.Response, error) {
		c.SetDeadline(time.Now().Add(wait))
		if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path); err != nil {
			return nil, err
		}
		return http.ReadResponse(bufio.NewReader(c), nil)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := ask(c, "/metrics", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	c.Close()
	if m := regexp.MustCompile(`(?m)^recledger_http_open_connections (\d+)$`).FindStringSubmatch(string(b)); m == nil || m[1] != fmt.Sprint(cfg.MaxConnections) {
		t.Errorf("open connections on /metrics: %v, want %d", m, cfg.MaxConnections)
	}

	// All taken: a request waits to be accepted until a slot is let go.
	stall()
	c, err = net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if resp, err := ask(c, "/healthz", 300*time.Millisecond); err == nil {
		t.Fatalf("a connection beyond the bound was served: %s", resp.Status)
	} else if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a connection beyond the bound: %v, want it to wait", err)
	}
	held[0].Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	resp, err = http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("once a slot was let go: %v %v, want 200", resp, err)
	}
}
