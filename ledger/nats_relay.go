package ledger

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// The embedded server's clients do not reach JetStream's direct gets
// themselves: a relay on one of the server's own connections asks the
// stream for them and passes the answers on, one request at a time,
// bounded, and taking each client's requests in turn.
//
// JetStream answers a direct get in the requester's read loop, queueing
// the whole batch on the stream at once (up to max_bytes, 64 MiB when
// unset), faster than it can send it. A walk had two readers send 1,000
// requests of batch 10,000 (60 KB): the server's memory grew past 8 GB
// and the outbox stalled, since the queued reads held the stream. The
// relay caps each request (relayMaxBatch, relayMaxBytes) and takes the
// next one only once it has passed on the last answer of the one before
// (the end of a batch, or the one message of a single get). (JetStream
// cannot be asked to answer the client directly: NATS refuses a
// client's request whose reply subject is a cross-account reply, _R_.…)
//
// Requests wait in one queue per requester, the reply subject's inbox
// prefix (a token's: InboxFor), taken in turn: a client asking without
// pause delays the others by one request of its own each, not by all it
// sent. A request beyond its requester's share (relayPerOwner) or beyond
// all the relay holds (relayPending) is answered at once with status 429
// Too Many Requests; recledger's readers wait and ask again.
const (
	relayMaxBatch   = 10_000
	relayMaxBytes   = 4 << 20
	relayPending    = 1024 // requests waiting for the relay, all requesters
	relayPerOwner   = 16   // requests waiting for the relay, one requester
	relayMaxRequest = 16 << 10
	relayMaxReply   = 512
	relayWait       = 5 * time.Second // for the stream's next answer
	// relayReconnectWait is the pause between reconnects of the server's
	// in-process connections (connectInProcess).
	relayReconnectWait = 20 * time.Millisecond
	relayDropLogGap    = 10 * time.Second
	// relayIntake bounds the requests the relay's connection holds before
	// sorting them into its queues: beyond it they are dropped unanswered
	// (the relay sorts far faster than a client can send).
	relayIntake = 64 << 10
)

// relaySubject is where the clients' account's $JS.API.DIRECT.GET.> is
// delivered in the global account: under the capture prefix, where no
// client may publish.
func relaySubject(capture string) string { return capture + ".dget" }

// directRelay hands clients' direct gets on to JetStream and its answers
// back. Its subscription's goroutine (nats.go's, owned by the connection)
// sorts requests into the queues; its worker (run) relays them until the
// connection closes.
type directRelay struct {
	nc      *nats.Conn
	prefix  string // relaySubject + "."
	inbox   string // where the stream answers the relay
	answers chan *nats.Msg
	known   func(owner string) bool
	n       uint64 // requests relayed: the last token of their inbox
	log     *slog.Logger
	wake    chan struct{}
	restart *sync.RWMutex // Embedded.restart: held while JetStream restarts

	mu      sync.Mutex
	waiting map[string][]*nats.Msg // by replyOwner, oldest first
	turns   []string               // owners with requests waiting, next first
	queued  int

	refused atomic.Int64 // answered 429
	dropped atomic.Int64 // dropped unanswered: intake full
	lastLog atomic.Int64 // unix nanoseconds of the last "refused" line
}

// startDirectRelay connects to srv in process as its own (token own) and
// relays until srv shuts down, which closes the connection and so ends
// the subscription's goroutine and the worker. It answers only requests
// whose reply names a requester known(owner) accepts (replyOwner).
func startDirectRelay(srv *server.Server, workers *sync.WaitGroup, own, capture string, known func(owner string) bool, restart *sync.RWMutex, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &directRelay{prefix: relaySubject(capture) + ".", known: known, log: log.With(jsLogKeyComponent, "direct-get relay"),
		answers: make(chan *nats.Msg, relayMaxBatch+16), wake: make(chan struct{}, 1),
		waiting: make(map[string][]*nats.Msg), restart: restart}
	closed := make(chan struct{})
	// The server closes a connection that reads slower than it is sent to
	// (a slow consumer): a walk's flood of direct gets did so to the
	// relay's, which then stayed away until a restart. It reconnects at
	// once, its subscriptions with it, until the server shuts down.
	nc, err := connectInProcess(srv, workers, own, capture, "recledger-relay",
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			// Not when the server shuts down: it closes every connection.
			if !nc.IsClosed() && srv.Running() {
				r.log.Warn("direct-get relay disconnected; reconnecting", jsLogKeyErr, err)
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) { r.log.Info("direct-get relay reconnected") }),
		nats.ClosedHandler(func(*nats.Conn) { close(closed) }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { r.noteDropped(err) }))
	if err != nil {
		return fmt.Errorf("direct-get relay: %w", err)
	}
	r.nc, r.inbox = nc, nc.NewInbox()
	if _, err = nc.ChanSubscribe(r.inbox+".*", r.answers); err == nil {
		var sub *nats.Subscription
		if sub, err = nc.Subscribe(r.prefix+">", r.take); err == nil {
			err = sub.SetPendingLimits(relayIntake, 64<<20)
		}
	}
	if err != nil {
		nc.Close()
		return fmt.Errorf("direct-get relay: %w", err)
	}
	workers.Go(func() { r.run(closed) })
	return nil
}

// connectInProcess connects to srv in process as its own (token own),
// named name, with its replies under the capture prefix. The connection
// reconnects at once when the server closes it (as a slow consumer, say)
// and is closed when the server shuts down, by a goroutine of workers.
func connectInProcess(srv *server.Server, workers *sync.WaitGroup, own, capture, name string, opts ...nats.Option) (*nats.Conn, error) {
	opts = append([]nats.Option{nats.InProcessServer(srv), nats.Token(own), nats.Name(name),
		nats.MaxReconnects(-1), nats.ReconnectWait(relayReconnectWait), nats.CustomInboxPrefix(capture + ".INBOX")}, opts...)
	nc, err := nats.Connect("", opts...)
	if err != nil {
		return nil, err
	}
	workers.Go(func() { // gone with the server
		srv.WaitForShutdown()
		nc.Close()
	})
	return nc, nil
}

// take puts a client's request in its requester's queue, or answers it
// at once when it may not wait there.
func (r *directRelay) take(m *nats.Msg) {
	owner, ok := replyOwner(m.Reply)
	if !ok || !r.known(owner) {
		// No answer is possible, or allowed; or an inbox of no client's
		// token, made up to get turns of its own (a walk's reader took
		// every turn so, with a few hundred hashes).
		return
	}
	if len(m.Data) > relayMaxRequest {
		r.answerStatus(m.Reply, "408", "Bad Request")
		return
	}
	r.mu.Lock()
	q := r.waiting[owner]
	if len(q) >= relayPerOwner || r.queued >= relayPending {
		r.mu.Unlock()
		r.answerStatus(m.Reply, "429", "Too Many Requests")
		r.noteRefused()
		return
	}
	if len(q) == 0 {
		r.turns = append(r.turns, owner)
	}
	r.waiting[owner] = append(q, m)
	r.queued++
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// next is the request to relay now: the oldest of the requester whose
// turn it is. nil when none waits.
func (r *directRelay) next() *nats.Msg {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.turns) == 0 {
		return nil
	}
	owner := r.turns[0]
	r.turns = append(r.turns[:0], r.turns[1:]...)
	q := r.waiting[owner]
	m := q[0]
	if len(q) == 1 {
		delete(r.waiting, owner)
	} else {
		r.waiting[owner] = q[1:]
		r.turns = append(r.turns, owner)
	}
	r.queued--
	return m
}

// run relays the waiting requests, one at a time, until closed.
func (r *directRelay) run(closed <-chan struct{}) {
	for {
		if m := r.next(); m != nil {
			// Not while JetStream restarts (Embedded.RestartJetStream):
			// its streams are away then, and the request would find no
			// one to answer it, or be dropped in flight.
			r.restart.RLock()
			r.relay(m)
			r.restart.RUnlock()
			continue
		}
		select {
		case <-r.wake:
		case <-closed:
			return
		}
	}
}

// replyOwner is the requester a reply subject names, for the relay's
// turns: its inbox prefix with the token's hash (_RECLEDGER_INBOX.<hash>)
// or NATS's default _INBOX. ok is false for a subject the relay must not
// publish on: it publishes in the streams' account, with every right.
func replyOwner(reply string) (owner string, ok bool) {
	if len(reply) > relayMaxReply || !server.IsValidLiteralSubject(reply) || strings.ContainsAny(reply, " \t\r\n") {
		return "", false
	}
	for _, p := range relayReplyPrefixes {
		rest, found := strings.CutPrefix(reply, p+".")
		if !found {
			continue
		}
		if p == "_INBOX" {
			return p, true
		}
		hash, _, found := strings.Cut(rest, ".")
		return p + "." + hash, found
	}
	return "", false
}

// answerStatus answers a request with a status and no message, as
// JetStream does.
func (r *directRelay) answerStatus(reply, code, description string) {
	h := nats.Header{}
	h.Set("Status", code)
	h.Set("Description", description)
	_ = r.nc.PublishMsg(&nats.Msg{Subject: reply, Header: h})
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

// noteDropped counts the requests dropped unanswered for want of room
// in the intake, and logs other errors of the connection.
func (r *directRelay) noteDropped(err error) {
	if !errors.Is(err, nats.ErrSlowConsumer) {
		r.log.Warn("nats error", jsLogKeyErr, err)
		return
	}
	r.dropped.Add(1)
	r.noteRefused()
}

// noteRefused logs the requests refused and dropped so far, once every
// relayDropLogGap at most.
func (r *directRelay) noteRefused() {
	n := r.refused.Add(1)
	now := time.Now().UnixNano()
	if last := r.lastLog.Load(); now-last >= int64(relayDropLogGap) && r.lastLog.CompareAndSwap(last, now) {
		r.log.Warn("direct gets refused: clients ask faster than the streams can answer",
			jsLogKeyCount, n, jsLogKeyDropped, r.dropped.Load())
	}
}
