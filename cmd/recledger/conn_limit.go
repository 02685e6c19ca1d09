package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// connLimit is serve's HTTP listener, holding at most max connections
// open at once. At the bound, a new connection takes the place of one
// waiting for a request that has sent nothing since it began to wait:
// idle between requests (a keep-alive connection, closed as the server
// would close it after its idle timeout: see Accept), or new and silent;
// else of one whose request header has taken more than slowHeader to
// arrive. With none such, it is answered 503 at once and closed, without
// its request being read. A security walk held every slot with
// connections that sent nothing, or a header byte every 2 s, reopening
// each as it closed: new connections were never taken for idle, and the
// desktops' commands were answered 503. A first form
// (golang.org/x/net/netutil's LimitListener) left connections beyond the
// bound waiting in the kernel's queue: a desktop's command there timed
// out, then was applied minutes later, when a slot freed (an adversarial
// walk), and 4,096 idle connections held every slot for 2 minutes.
type connLimit struct {
	net.Listener
	max   int
	reply []byte // the answer to a connection shed

	slowHeader time.Duration // a header arriving longer than this may give way at the bound
	perAddr    int           // connections one client address may hold; 0: no bound
	exempt     func(netip.Addr) bool

	mu     sync.Mutex
	open   int                    // connections accepted and not yet closed
	idle   map[*limitedConn]int64 // of those, the ones waiting for a request (new, or idle between requests), and since when (ns since base)
	byAddr map[netip.Addr]int     // of those, how many each bounded client address holds
	base   time.Time              // the monotonic clock's origin of idle and limitedConn's times

	answering chan struct{} // bounds the goroutines answering shed connections
	shed      atomic.Uint64
}

// The answer to a connection shed, and how long it may take; how long a
// request header may take to arrive before its connection may give way
// at the bound (a desktop's arrives in milliseconds; the server's own
// limit is ReadHeaderTimeout, 10 s).
const (
	shedLinger  = time.Second
	shedDrain   = 64 << 10
	shedWorkers = 256
	slowHeader  = 3 * time.Second
)

// A client address may hold a quarter of the connections (a security
// walk filled them all from one address); loopback is not bounded so:
// the machine's own tools and load tests run there.
const perAddrShare = 4

func newConnLimit(ln net.Listener, max int) *connLimit {
	body := fmt.Sprintf(`{"reason":"unavailable","message":"the server holds as many connections as it takes (--http-max-connections %d): nothing was recorded; send it again later"}`, max)
	return &connLimit{
		Listener: ln,
		max:      max,
		reply: fmt.Appendf(nil, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s",
			len(body), body),
		slowHeader: slowHeader,
		perAddr:    max / perAddrShare,
		exempt:     netip.Addr.IsLoopback,
		idle:       map[*limitedConn]int64{},
		byAddr:     map[netip.Addr]int{},
		base:       time.Now(),
		answering:  make(chan struct{}, shedWorkers),
	}
}

// Accept returns the next connection within the bound.
func (l *connLimit) Accept() (net.Conn, error) {
	for {
		raw, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		c := &limitedConn{Conn: raw, base: l.base, addr: remoteAddr(raw)}
		l.mu.Lock()
		bounded := l.perAddr > 0 && !l.exempt(c.addr)
		var mine func(*limitedConn) bool // the connections that may give way to c
		if bounded && l.byAddr[c.addr] >= l.perAddr {
			// Its address holds its share: only one of its own may
			// give way to it.
			mine = func(o *limitedConn) bool { return o.addr == c.addr }
		} else if l.open < l.max {
			l.open++
			l.count(c, bounded)
			l.mu.Unlock()
			return c, nil
		}
		if idle := l.givingWay(mine); idle != nil {
			delete(l.idle, idle)
			l.open++ // back to the bound once the server sees idle closed
			l.count(c, bounded)
			l.mu.Unlock()
			// Its wait for a next request ends now, and the server
			// closes it, as at its idle timeout. Not closed here: a
			// request that came in just before would be handled (and
			// appended) with no way to answer it; the server's read of
			// a request sets a deadline of its own, so such a request is
			// served and answered (the bound then passed by one a
			// while).
			idle.SetReadDeadline(time.Now())
			return c, nil
		}
		l.mu.Unlock()
		l.shedConn(raw)
	}
}

// givingWay is the connection waiting the longest among those that have
// received nothing since they began to wait (new, or since their last
// answer); else the one whose request header began to arrive the
// longest ago, more than slowHeader ago; nil when there is none. l.mu is
// held. One whose next request has just begun to arrive is not idle to
// its client: ended under its request, it answered 400 (a walk's desktop
// whose header came in two packets). Any silent one is picked before,
// and one just answered is the likeliest to send next.
func (l *connLimit) givingWay(among func(*limitedConn) bool) *limitedConn {
	now := int64(time.Since(l.base))
	var silent, slow *limitedConn
	var silentSince, slowSince int64
	for c, at := range l.idle {
		if among != nil && !among(c) {
			continue
		}
		if c.lastRead.Load() <= at {
			if silent == nil || at < silentSince {
				silent, silentSince = c, at
			}
			continue
		}
		// Bytes of a request arrived: slow when its first came long ago.
		if b := c.begun.Load(); b > at && now-b > int64(l.slowHeader) && (slow == nil || b < slowSince) {
			slow, slowSince = c, b
		}
	}
	if silent != nil {
		return silent
	}
	return slow
}

// count adds c to its address's connections when bounded; l.mu is held.
func (l *connLimit) count(c *limitedConn, bounded bool) {
	if bounded {
		c.counted = true
		l.byAddr[c.addr]++
	}
}

// remoteAddr is c's client address (the zero Addr when it has none).
func remoteAddr(c net.Conn) netip.Addr {
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// limitedConn is a connection of connLimit's, which knows when bytes last
// arrived on it.
type limitedConn struct {
	net.Conn
	addr     netip.Addr // its client's
	counted  bool       // in connLimit.byAddr
	base     time.Time
	lastRead atomic.Int64 // ns since base (monotonic: a clock stepped back changes nothing)
	begun    atomic.Int64 // when the first byte since it began to wait arrived; 0: none yet
}

func (c *limitedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		now := int64(time.Since(c.base))
		c.lastRead.Store(now)
		c.begun.CompareAndSwap(0, now)
	}
	return n, err
}

// shedConn answers c 503 and closes it: the answer first (a server may
// answer before reading), then what the client sent is read and dropped
// for up to shedLinger, so that closing does not reset the connection
// under an answer not yet read.
func (l *connLimit) shedConn(c net.Conn) {
	l.shed.Add(1)
	select {
	case l.answering <- struct{}{}:
	default:
		c.Close() // shedding faster than it can answer: no answer
		return
	}
	go func() {
		defer func() { <-l.answering }()
		defer c.Close()
		c.SetDeadline(time.Now().Add(shedLinger))
		if _, err := c.Write(l.reply); err != nil {
			return
		}
		if tc, ok := c.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		io.CopyN(io.Discard, c, shedDrain)
	}()
}

// wait returns once no goroutine answers a shed connection, each bounded
// by shedLinger: the stop waits for them, their owner being the listener.
func (l *connLimit) wait() {
	for range cap(l.answering) {
		l.answering <- struct{}{}
	}
}

// ConnState is the http.Server's hook: it counts closed connections out
// and keeps the idle ones.
func (l *connLimit) ConnState(nc net.Conn, state http.ConnState) {
	c, ok := nc.(*limitedConn)
	if !ok {
		return // not accepted by l
	}
	now := int64(time.Since(l.base))
	l.mu.Lock()
	defer l.mu.Unlock()
	switch state {
	case http.StateNew, http.StateIdle:
		// Waiting for a request, which may not have begun: a new
		// connection that sends nothing is as idle as a kept one.
		l.idle[c] = now
		c.begun.Store(0)
	case http.StateActive:
		delete(l.idle, c)
	case http.StateClosed, http.StateHijacked:
		delete(l.idle, c)
		l.open--
		if c.counted {
			if l.byAddr[c.addr]--; l.byAddr[c.addr] <= 0 {
				delete(l.byAddr, c.addr)
			}
		}
	}
}

// Shed is how many connections were answered 503 (or closed) at the bound.
func (l *connLimit) Shed() uint64 { return l.shed.Load() }
