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

// Connections that send nothing, or a header too slowly, give way at the
// bound to one that asks: a security walk held every slot with such
// connections, reopening each as it closed, and the desktops' commands
// were answered 503.
func TestSilentAndSlowConnectionsGiveWay(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	const maxConns = 4
	lim := newConnLimit(ln, maxConns)
	lim.slowHeader = 200 * time.Millisecond
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }),
		ConnState:         lim.ConnState,
		ReadHeaderTimeout: 30 * time.Second,
	}
	go srv.Serve(lim)
	defer srv.Close()
	addr := ln.Addr().String()
	ask := func() (int, error) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return 0, err
		}
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
	hold := func(first string) []net.Conn {
		var held []net.Conn
		for range maxConns {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			if first != "" {
				io.WriteString(c, first)
			}
			held = append(held, c)
		}
		return held
	}
	closeAll := func(cs []net.Conn) {
		for _, c := range cs {
			c.Close()
		}
	}

	silent := hold("")
	defer closeAll(silent)
	time.Sleep(50 * time.Millisecond) // seen by the server as new
	if code, err := ask(); err != nil || code != 200 {
		t.Fatalf("beside %d silent connections: %d %v, want 200", maxConns, code, err)
	}
	closeAll(silent)

	// Half a header each: within slowHeader they hold their slots (a
	// desktop's header may come in two packets), past it they give way.
	time.Sleep(100 * time.Millisecond)
	slow := hold("GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
	defer closeAll(slow)
	time.Sleep(50 * time.Millisecond)
	if code, err := ask(); err != nil || code != 503 {
		t.Fatalf("beside %d headers begun just now: %d %v, want 503", maxConns, code, err)
	}
	time.Sleep(300 * time.Millisecond)
	if code, err := ask(); err != nil || code != 200 {
		t.Fatalf("beside %d headers begun 350 ms ago: %d %v, want 200", maxConns, code, err)
	}
}

// One client address holds at most its share of the connections: a
// security walk filled all of them from one address.
func TestOneAddressHoldsItsShare(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lim := newConnLimit(ln, 16)
	lim.exempt = func(netip.Addr) bool { return false } // loopback is the test's only network
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }),
		ConnState:         lim.ConnState,
		ReadHeaderTimeout: 30 * time.Second,
	}
	go srv.Serve(lim)
	defer srv.Close()
	from := func(ip string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		c, err := d.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ask := func(ip string) int {
		c := from(ip)
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("from %s: %v", ip, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// Its share (16/4) of headers begun, from one address.
	for range 4 {
		c := from("127.0.0.1")
		defer c.Close()
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
	}
	time.Sleep(50 * time.Millisecond)
	if code := ask("127.0.0.1"); code != 503 {
		t.Errorf("a fifth from the same address: %d, want 503", code)
	}
	if code := ask("127.0.0.2"); code != 200 {
		t.Errorf("one from another address: %d, want 200", code)
	}
}
