package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"
)

// serveLimited serves "ok" behind a connLimit of max connections, set
// as set says before it serves, and returns its address.
func serveLimited(t *testing.T, max int, set func(*connLimit)) string {
	t.Helper()
	return serveLimitedWith(t, max, set, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
}

// serveLimitedWith is serveLimited with handler h.
func serveLimitedWith(t *testing.T, max int, set func(*connLimit), h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lim := newConnLimit(ln, max)
	set(lim)
	srv := &http.Server{
		Handler:           h,
		ConnState:         lim.ConnState,
		ReadHeaderTimeout: 30 * time.Second,
	}
	go srv.Serve(lim)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// askOn sends a GET on c and returns the answer's status; c is closed.
func askOn(c net.Conn) (int, error) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// dialFrom connects to addr from the local address ip.
func dialFrom(t *testing.T, ip, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Connections that send nothing, or a header too slowly, give way at the
// bound to one that asks: a security walk held every slot with such
// connections, reopening each as it closed, and the desktops' commands
// were answered 503.
func TestSilentAndSlowConnectionsGiveWay(t *testing.T) {
	const maxConns = 4
	addr := serveLimited(t, maxConns, func(l *connLimit) { l.slowHeader = time.Second })
	ask := func() (int, error) { return askOn(dialFrom(t, "127.0.0.1", addr)) }
	hold := func(first string) []net.Conn {
		var held []net.Conn
		for range maxConns {
			c := dialFrom(t, "127.0.0.1", addr)
			io.WriteString(c, first)
			held = append(held, c)
			time.Sleep(10 * time.Millisecond) // each after the one before
		}
		return held
	}
	// gaveWay checks that the oldest of held was closed by the server
	// (read to its end within wait), and the others not.
	gaveWay := func(what string, held []net.Conn) {
		t.Helper()
		for i, c := range held {
			wait := 100 * time.Millisecond
			if i == 0 {
				wait = 2 * time.Second
			}
			c.SetReadDeadline(time.Now().Add(wait))
			_, err := io.ReadAll(c)
			if closed := err == nil; closed != (i == 0) {
				t.Errorf("%s: connection %d (0 the oldest) closed %v (%v); want only the oldest closed", what, i, closed, err)
			}
		}
	}

	silent := hold("")
	time.Sleep(50 * time.Millisecond) // seen by the server as new
	if code, err := ask(); err != nil || code != 200 {
		t.Fatalf("beside %d silent connections: %d %v, want 200", maxConns, code, err)
	}
	gaveWay("silent", silent)
	for _, c := range silent {
		c.Close()
	}

	// Half a header each: within slowHeader they hold their slots (a
	// desktop's header may come in two packets), past it they give way.
	time.Sleep(100 * time.Millisecond)
	slow := hold("GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
	time.Sleep(50 * time.Millisecond)
	if code, err := ask(); err != nil || code != 503 {
		t.Fatalf("beside %d headers begun just now: %d %v, want 503", maxConns, code, err)
	}
	// A second is far beyond what a loaded machine's scheduler adds to
	// "just now" above.
	time.Sleep(time.Second)
	if code, err := ask(); err != nil || code != 200 {
		t.Fatalf("beside %d headers begun over a second ago: %d %v, want 200", maxConns, code, err)
	}
	gaveWay("slow", slow)
}

// One client address holds at most its share of the connections: a
// security walk filled all of them from one address.
func TestOneAddressHoldsItsShare(t *testing.T) {
	addr := serveLimited(t, 16, func(l *connLimit) {
		l.exempt = func(netip.Addr) bool { return false } // loopback is the test's only network
	})
	// Its share (16/4) of headers begun, from one address.
	for range 4 {
		io.WriteString(dialFrom(t, "127.0.0.1", addr), "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
	}
	time.Sleep(50 * time.Millisecond)
	if code, err := askOn(dialFrom(t, "127.0.0.1", addr)); err != nil || code != 503 {
		t.Errorf("a fifth from the same address: %d %v, want 503", code, err)
	}
	if code, err := askOn(dialFrom(t, "127.0.0.2", addr)); err != nil || code != 200 {
		t.Errorf("one from another address: %d %v, want 200", code, err)
	}
}

// The stop waits for the goroutines answering shed connections: once wait
// returns, the connection a client never read from is closed.
func TestStopWaitsForShedAnswers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	l := newConnLimit(ln, 1)
	server, client := net.Pipe() // synchronous: the answer's write waits for a read that never comes
	defer client.Close()
	l.shedConn(server)
	l.wait()
	// Closed already: a read finds its end at once, not at the deadline
	// (which it would meet while the answer still waited to be read).
	client.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := client.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("after wait, the shed connection is not closed: %v", err)
	}
}
