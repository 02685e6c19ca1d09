package ledger

import (
	"errors"
	"net"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// firstDialWait bounds a dial of a connection's first round of servers
// when it keeps trying (KeepTrying): a slower server is reached by the
// reconnects, with the connection's own timeout.
const firstDialWait = time.Second

// errNotReachedAtStart fails the first round of a connection that keeps
// trying once its probe reached no server (connectFirst).
var errNotReachedAtStart = errors.New("no NATS server was reachable at start")

// startDialer dials for a connection that keeps trying. nats.go dials
// every server of the first round inside Connect, each for the whole
// timeout, and serve's start waited for it: a walk's serve given a NATS
// address that did not answer (a partition, a host gone) took 8.8 s to
// serve for one address and 25 s for three, with /healthz unanswered all
// along. Until Connect returns (started), a dial waits firstDialWait at
// most, or fails at once when fail is set; later dials, the reconnects',
// wait the connection's timeout.
type startDialer struct {
	timeout time.Duration
	fail    bool
	started atomic.Bool
}

func (d *startDialer) Dial(network, addr string) (net.Conn, error) {
	if d.started.Load() {
		return (&net.Dialer{Timeout: d.timeout}).Dial(network, addr)
	}
	if d.fail {
		return nil, errNotReachedAtStart
	}
	return (&net.Dialer{Timeout: min(d.timeout, firstDialWait)}).Dial(network, addr)
}

// dialWith sets d as the connection's dialer, with its timeout.
func dialWith(d *startDialer) nats.Option {
	return func(o *nats.Options) error {
		d.timeout = o.Timeout
		if d.timeout <= 0 {
			d.timeout = nats.DefaultTimeout
		}
		o.CustomDialer = d
		return nil
	}
}

// Link follows whether a connection is connected, from its handlers.
// nats.go's IsConnected takes the connection's lock, which a reconnect
// holds while it dials: a walk's /metrics scrape waited 1.6–3.9 s on a
// NATS server that did not answer.
type Link struct{ up atomic.Bool }

// Connected reports whether the connection was connected at its last
// change of state.
func (l *Link) Connected() bool { return l.up.Load() }

// Follow is the option that keeps l up to date. Given after the
// connection's handlers are set (as Connect's extra options are), it
// keeps them.
func Follow(l *Link) nats.Option {
	return func(o *nats.Options) error {
		connected, reconnected, disconnected, closed := o.ConnectedCB, o.ReconnectedCB, o.DisconnectedErrCB, o.ClosedCB
		o.ConnectedCB = func(nc *nats.Conn) {
			l.up.Store(true)
			if connected != nil {
				connected(nc)
			}
		}
		o.ReconnectedCB = func(nc *nats.Conn) {
			l.up.Store(true)
			if reconnected != nil {
				reconnected(nc)
			}
		}
		o.DisconnectedErrCB = func(nc *nats.Conn, err error) {
			l.up.Store(false)
			if disconnected != nil {
				disconnected(nc, err)
			}
		}
		o.ClosedCB = func(nc *nats.Conn) {
			l.up.Store(false)
			if closed != nil {
				closed(nc)
			}
		}
		return nil
	}
}
