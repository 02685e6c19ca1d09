package ledger

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// The clients' requests to create a consumer on the manifests stream (the
// upload role's) reach JetStream through a gate on one of the server's
// own connections, which refuses push consumers.
//
// A consumer lives in the streams' account, and a push consumer sends
// its messages to the deliver subject its creator names, there, with
// JetStream's rights: a walk's upload token made one whose deliver
// subject was $JS.API.STREAM.DELETE.RECLEDGER_EVENTS. Upload workers
// pull (docs/upload-worker.md); only pull consumers are let through.

// gateSubject is where the clients' consumer creations arrive in the
// global account: under the capture prefix, where no client may publish.
func gateSubject(capture string) string { return capture + ".gate" }

// gateWait bounds JetStream's answer to a creation the gate passes on.
const gateWait = 5 * time.Second

// gateRefusal is the answer to a push consumer's creation, in the shape
// of JetStream's errors.
var gateRefusal = []byte(`{"type":"io.nats.jetstream.api.v1.consumer_create_response","error":{"code":403,"description":"recledger: only pull consumers may be made here (no deliver_subject)"}}`)

// startConsumerGate connects to srv in process as its own (token own) and
// passes clients' consumer creations on until srv shuts down.
func startConsumerGate(srv *server.Server, workers *sync.WaitGroup, own, capture string, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With(jsLogKeyComponent, "consumer gate")
	nc, err := connectInProcess(srv, workers, own, capture, "recledger-consumer-gate",
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { log.Warn("nats error", jsLogKeyErr, err) }))
	if err != nil {
		return fmt.Errorf("consumer gate: %w", err)
	}
	prefix := gateSubject(capture) + "."
	if _, err := nc.Subscribe(prefix+">", func(m *nats.Msg) {
		if m.Reply == "" {
			return
		}
		var req server.CreateConsumerRequest
		if json.Unmarshal(m.Data, &req) == nil && req.Config.DeliverSubject != "" {
			_ = nc.Publish(m.Reply, gateRefusal)
			return
		} // else as sent: JetStream answers what it cannot read with an error
		a, err := nc.Request("$JS.API."+strings.TrimPrefix(m.Subject, prefix), m.Data, gateWait)
		if err != nil {
			return // the client times out too
		}
		_ = nc.PublishMsg(&nats.Msg{Subject: m.Reply, Header: a.Header, Data: a.Data})
	}); err != nil {
		nc.Close()
		return fmt.Errorf("consumer gate: %w", err)
	}
	return nil
}
