package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"
)

// closedByServer reports whether the server closed c: a read meets its
// end within wait.
func closedByServer(c net.Conn, wait time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(wait))
	_, err := io.ReadAll(c)
	return err == nil
}

// An address at its share takes the place of one of its own connections,
// never another address's: a client filling its share cannot push the
// other desktops out, even when theirs are the connections waiting the
// longest.
func TestAnAddressAtItsShareTakesOnlyItsOwnPlace(t *testing.T) {
	addr := serveLimited(t, 8, func(l *connLimit) {
		l.exempt = func(netip.Addr) bool { return false } // loopback is the test's only network
	})
	var others []net.Conn // the longest waiting: 127.0.0.3 to .5, silent
	for _, ip := range []string{"127.0.0.3", "127.0.0.4", "127.0.0.5"} {
		for range 2 {
			others = append(others, dialFrom(t, ip, addr))
			time.Sleep(10 * time.Millisecond)
		}
	}
	own := []net.Conn{dialFrom(t, "127.0.0.2", addr)} // its share (8/4), silent too
	time.Sleep(10 * time.Millisecond)
	own = append(own, dialFrom(t, "127.0.0.2", addr))
	time.Sleep(200 * time.Millisecond) // seen by the server as new
	if code, err := askOn(dialFrom(t, "127.0.0.2", addr)); err != nil || code != 200 {
		t.Fatalf("a third from an address at its share: %d %v, want 200", code, err)
	}
	if !closedByServer(own[0], 10*time.Second) {
		t.Error("its own oldest connection did not give way")
	}
	for i, c := range others {
		if closedByServer(c, 100*time.Millisecond) {
			t.Errorf("another address's connection %d gave way to it", i)
		}
	}
}

// At the bound, a silent connection gives way before one whose header is
// late: the one sending nothing holds a slot for nothing, while the late
// header may be a desktop's on a slow link.
func TestASilentConnectionGivesWayBeforeASlowHeader(t *testing.T) {
	addr := serveLimited(t, 2, func(l *connLimit) { l.slowHeader = 100 * time.Millisecond })
	slow := dialFrom(t, "127.0.0.1", addr) // the older
	io.WriteString(slow, "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
	time.Sleep(10 * time.Millisecond)
	silent := dialFrom(t, "127.0.0.1", addr)
	time.Sleep(500 * time.Millisecond) // the header is late now
	if code, err := askOn(dialFrom(t, "127.0.0.1", addr)); err != nil || code != 200 {
		t.Fatalf("beside a silent connection and a slow header: %d %v, want 200", code, err)
	}
	if !closedByServer(silent, 10*time.Second) {
		t.Error("the silent connection did not give way")
	}
	if closedByServer(slow, 100*time.Millisecond) {
		t.Error("the slow header gave way, though a silent connection waited")
	}
}

// A header is late from its first byte: one dribbled a byte at a time (a
// security walk sent one every 2 s) gives way as one sent in half does;
// so does a kept-alive connection's next request begun long after its
// first was answered.
func TestALateHeaderCountsFromItsFirstByte(t *testing.T) {
	const slowHeader = time.Second
	t.Run("dribbled", func(t *testing.T) {
		addr := serveLimited(t, 1, func(l *connLimit) { l.slowHeader = slowHeader })
		c := dialFrom(t, "127.0.0.1", addr)
		io.WriteString(c, "GET / HTTP/1.1\r\n")
		for end := time.Now().Add(slowHeader + 300*time.Millisecond); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
			io.WriteString(c, "X")
		}
		if code, err := askOn(dialFrom(t, "127.0.0.1", addr)); err != nil || code != 200 {
			t.Fatalf("beside a header dribbled for longer than %v: %d %v, want 200", slowHeader, code, err)
		}
	})
	t.Run("kept alive", func(t *testing.T) {
		addr := serveLimited(t, 1, func(l *connLimit) { l.slowHeader = slowHeader })
		c := dialFrom(t, "127.0.0.1", addr)
		c.SetDeadline(time.Now().Add(20 * time.Second))
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("the first request: %v %v", resp, err)
		}
		io.Copy(io.Discard, resp.Body)
		time.Sleep(slowHeader + 300*time.Millisecond) // idle, then
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
		time.Sleep(slowHeader + 300*time.Millisecond) // late
		if code, err := askOn(dialFrom(t, "127.0.0.1", addr)); err != nil || code != 200 {
			t.Fatalf("beside a kept-alive connection's late second header: %d %v, want 200", code, err)
		}
	})
}

// An address whose connections closed has its share back, and is
// forgotten: a desktop reconnecting after a restart is not held to the
// share of connections it no longer has, and addresses seen once do not
// pile up in the bound's books.
func TestAnAddressGetsItsShareBackOnceItsConnectionsClose(t *testing.T) {
	var lim *connLimit
	addr := serveLimited(t, 8, func(l *connLimit) {
		l.exempt = func(netip.Addr) bool { return false } // loopback is the test's only network
		lim = l
	})
	for round := range 3 {
		for range 2 { // its share (8/4), each asking and closed
			if code, err := askOn(dialFrom(t, "127.0.0.2", addr)); err != nil || code != 200 {
				t.Fatalf("round %d: %d %v, want 200", round, code, err)
			}
		}
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			lim.mu.Lock()
			open, known := lim.open, len(lim.byAddr)
			lim.mu.Unlock()
			if open == 0 && known == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: every connection closed, the bound counts %d open and %d addresses", round, open, known)
			}
		}
	}
}

// A connection that took another's place counts to its address's share
// as any other: a client cannot get past its share by arriving at the
// bound, where each of its connections pushes out another address's.
func TestAPlaceTakenAtTheBoundCountsToTheShare(t *testing.T) {
	addr := serveLimited(t, 8, func(l *connLimit) {
		l.exempt = func(netip.Addr) bool { return false } // loopback is the test's only network
	})
	for _, ip := range []string{"127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6"} {
		for range 2 { // the bound, silent
			dialFrom(t, ip, addr)
			time.Sleep(10 * time.Millisecond)
		}
	}
	var mine []net.Conn
	for range 3 { // two take others' places; the third, at its share, its own
		time.Sleep(200 * time.Millisecond) // seen by the server as new
		mine = append(mine, dialFrom(t, "127.0.0.2", addr))
	}
	if !closedByServer(mine[0], 10*time.Second) {
		t.Error("a third connection from an address holding its share (two places taken at the bound) did not take its own oldest's place")
	}
}

// Under four connections in all, an address's share would be none: no
// address is bounded then, beside the bound itself.
func TestABoundUnderFourBoundsNoAddress(t *testing.T) {
	addr := serveLimited(t, 2, func(l *connLimit) {
		l.exempt = func(netip.Addr) bool { return false } // loopback is the test's only network
	})
	if code, err := askOn(dialFrom(t, "127.0.0.2", addr)); err != nil || code != 200 {
		t.Fatalf("under a bound of 2: %d %v, want 200", code, err)
	}
}

// A connection whose request is being handled (a backup download, say)
// is not waiting for one: however long ago its header came, it does not
// give way at the bound; the newcomer is answered 503, and the request
// in hand is answered in full.
func TestARequestInHandDoesNotGiveWay(t *testing.T) {
	release := make(chan struct{})
	addr := serveLimitedWith(t, 1, func(l *connLimit) { l.slowHeader = 100 * time.Millisecond },
		http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			<-release
			io.WriteString(w, "ok")
		}))
	c := dialFrom(t, "127.0.0.1", addr)
	c.SetDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(500 * time.Millisecond) // its header came long ago
	code, err := askOn(dialFrom(t, "127.0.0.1", addr))
	close(release)
	if err != nil || code != 503 {
		t.Errorf("beside a request in hand: %d %v, want 503", code, err)
	}
	if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("the request in hand: %v %v, want 200", resp, err)
	}
}
