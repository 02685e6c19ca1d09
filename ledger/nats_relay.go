package ledger

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// The embedded server's clients do not reach JetStream's direct gets
// themselves: a relay on one of the server's own connections asks the
// stream for them and passes the answers on, one request at a time and
// bounded.
//
// JetStream answers a direct get in the requester's read loop, queueing
// the whole batch on the stream at once (up to max_bytes, 64 MiB when
// unset), faster than it can send it. A walk had two readers send 1,000
// requests of batch 10,000 (60 KB): the server's memory grew past 8 GB
// and the outbox stalled, since the queued reads held the stream. The
// relay caps each request (relayMaxBatch, relayMaxBytes) and takes the
// next one only once it has passed on the last answer of the one before
// (the end of a batch, or the one message of a single get). Requests
// beyond what it holds (relayPending) are dropped, and their senders time
// out. (JetStream cannot be asked to answer the client directly: NATS
// refuses a client's request whose reply subject is a cross-account
// reply, _R_.…)
const (
	relayMaxBatch   = 10_000
	relayMaxBytes   = 4 << 20
	relayPending    = 1024            // requests waiting for the relay
	relayWait       = 5 * time.Second // for the stream's next answer
	relayDropLogGap = 10 * time.Second
	// relayAnswerWithin is how long a client's request may wait for the
	// relay's answers: the server forgets its way back after that.
	relayAnswerWithin = 3 * relayWait
)

// relaySubject is where the clients' account's $JS.API.DIRECT.GET.> is
// delivered in the global account: under the capture prefix, where no
// client may publish.
func relaySubject(capture string) string { return capture + ".dget" }

// directRelay hands clients' direct gets on to JetStream and its answers
// back. Its subscription's goroutine (nats.go's, owned by the connection)
// is the only one to use it.
type directRelay struct {
	nc      *nats.Conn
	prefix  string // relaySubject + "."
	inbox   string // where the stream answers the relay
	answers chan *nats.Msg
	n       uint64 // requests relayed: the last token of their inbox
	log     *slog.Logger
	dropped atomic.Int64
	lastLog atomic.Int64 // unix nanoseconds of the last "dropped" line
}

// startDirectRelay connects to srv in process as its own (token own) and
// relays until srv shuts down, which closes the connection and ends the
// subscription's goroutine.
func startDirectRelay(srv *server.Server, own, capture string, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &directRelay{prefix: relaySubject(capture) + ".", log: log.With(jsLogKeyComponent, "direct-get relay"),
		answers: make(chan *nats.Msg, relayMaxBatch+16)}
	nc, err := nats.Connect("", nats.InProcessServer(srv), nats.Token(own), nats.Name("recledger-relay"),
		nats.NoReconnect(), nats.CustomInboxPrefix(capture+".INBOX"),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { r.noteDropped(err) }))
	if err != nil {
		return fmt.Errorf("direct-get relay: %w", err)
	}
	r.nc, r.inbox = nc, nc.NewInbox()
	if _, err = nc.ChanSubscribe(r.inbox+".*", r.answers); err == nil {
		var sub *nats.Subscription
		if sub, err = nc.Subscribe(r.prefix+">", r.relay); err == nil {
			err = sub.SetPendingLimits(relayPending, relayPending*1024)
		}
	}
	if err != nil {
		nc.Close()
		return fmt.Errorf("direct-get relay: %w", err)
	}
	return nil
}

// relay asks the stream for one client's request, capped, and passes each
// answer on to the client, until the last.
func (r *directRelay) relay(m *nats.Msg) {
	rest := strings.TrimPrefix(m.Subject, r.prefix)
	if m.Reply == "" || rest == "" {
		return
	}
	body, batch := m.Data, false
	if !strings.Contains(rest, ".") && len(body) > 0 { // not a last-by-subject get named in the subject
		var req server.JSApiMsgGetRequest
		if json.Unmarshal(body, &req) == nil {
			if batch = req.Batch > 0 || len(req.MultiLastFor) > 0; batch && capDirectGet(&req) {
				body, _ = json.Marshal(req)
			}
		} // else as sent: JetStream answers what it cannot read with an error
	}
	r.n++
	inbox := r.inbox + "." + strconv.FormatUint(r.n, 10)
	if err := r.nc.PublishRequest("$JS.API.DIRECT.GET."+rest, inbox, body); err != nil {
		return
	}
	timer := time.NewTimer(relayWait)
	defer timer.Stop()
	for {
		var a *nats.Msg
		select {
		case a = <-r.answers:
		case <-timer.C:
			return // the client times out too
		}
		if a.Subject != inbox {
			continue // late, for a request given up on
		}
		if err := r.nc.PublishMsg(&nats.Msg{Subject: m.Reply, Header: a.Header, Data: a.Data}); err != nil {
			return
		}
		// A batch ends with a status (end of batch, or an error); a
		// single get is one message, stored or a status.
		if !batch || a.Header.Get("Status") != "" {
			return
		}
		timer.Reset(relayWait)
	}
}

// capDirectGet bounds what one batch request may have the stream send,
// and reports whether it changed req.
func capDirectGet(req *server.JSApiMsgGetRequest) bool {
	changed := false
	if req.Batch > relayMaxBatch {
		req.Batch, changed = relayMaxBatch, true
	}
	if req.MaxBytes <= 0 || req.MaxBytes > relayMaxBytes {
		req.MaxBytes, changed = relayMaxBytes, true
	}
	return changed
}

// noteDropped logs the requests dropped for want of room, once every
// relayDropLogGap at most.
func (r *directRelay) noteDropped(err error) {
	if err != nats.ErrSlowConsumer {
		r.log.Warn("nats error", jsLogKeyErr, err)
		return
	}
	n := r.dropped.Add(1)
	now := time.Now().UnixNano()
	if last := r.lastLog.Load(); now-last >= int64(relayDropLogGap) && r.lastLog.CompareAndSwap(last, now) {
		r.log.Warn("direct gets dropped: clients ask faster than the streams can answer", jsLogKeyCount, n)
	}
}
