package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/recledger/recledger/ledger"
)

// CTI subscription settings.
const (
	ctiQueue   = "recledger-ingest" // queue group, so a second server never double-appends
	ctiWorkers = 4                  // concurrent batches (appends are group-committed)
	ctiBuffer  = 1024               // messages waiting for a worker
)

// RunCTI takes call signals on ledger.CTISubject(site), request/reply, until ctx is
// done: the same JSON as POST /v1/calls/events, the same reply (or the same
// error body with a "status" member). It is the owner of its workers; on
// return the subscription is gone and every message a worker took has been
// appended and answered. Messages still queued are dropped unanswered, so
// their requesters time out and retry.
func (s *Server) RunCTI(ctx context.Context, nc *nats.Conn, site string) error {
	if site == "" {
		site = s.site
	}
	subject := ledger.CTISubject(site)
	ch := make(chan *nats.Msg, ctiBuffer)
	sub, err := nc.ChanQueueSubscribe(subject, ctiQueue, ch)
	if err != nil {
		return fmt.Errorf("cti: subscribe %s: %w", subject, err)
	}
	s.log.Info("taking call signals", logKeySubject, subject)
	var wg sync.WaitGroup
	for range ctiWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case msg := <-ch:
					s.handleCTIMsg(context.WithoutCancel(ctx), msg)
				}
			}
		}()
	}
	<-ctx.Done()
	uerr := sub.Unsubscribe()
	wg.Wait()
	if uerr != nil && nc.IsConnected() {
		return fmt.Errorf("cti: unsubscribe: %w", uerr)
	}
	return nil
}

// handleCTIMsg appends one batch and answers it.
func (s *Server) handleCTIMsg(ctx context.Context, msg *nats.Msg) {
	var (
		reply []byte
		res   callsReply
		err   error
	)
	if !ledger.SafeReplySubject(msg.Reply) {
		// The answer goes out on the server's own connection, which may
		// write the streams: a reply subject naming a stream's subject (or
		// JetStream's API) would have the server write its answer there.
		// Refused whole, before anything is appended.
		s.refusedReplyLog.Do(func() {
			s.log.Warn("call signals refused: their reply subject is not an inbox (repeats are logged every 10 s)", logKeySubject, msg.Subject, logKeyReply, msg.Reply)
		})
		return
	}
	if len(msg.Data) > maxFeedBody {
		err = tooLarge(maxFeedBody)
	} else {
		res, err = s.acceptSignals(ctx, sourceCTI, msg.Data, ledger.TransportNATS, "")
	}
	if err != nil {
		body := s.errorBody(err)
		body["status"] = statusOf(err)
		reply, _ = json.Marshal(body)
		if statusOf(err) >= 500 {
			s.log.Error("call signals not taken", logKeySubject, msg.Subject, logKeyErr, err)
		}
	} else {
		reply, _ = json.Marshal(res)
	}
	if msg.Reply == "" {
		// Published, not requested: valid signals are taken, and a
		// refusal has no one to go to but the log.
		if err != nil && statusOf(err) < 500 {
			s.unansweredLog.Do(func() {
				s.log.Warn("call signals refused, and their sender asked for no answer (repeats are logged every 10 s)", logKeySubject, msg.Subject, logKeyErr, err)
			})
		}
		return
	}
	if err := msg.Respond(reply); err != nil {
		s.log.Warn("cannot answer call signals", logKeySubject, msg.Subject, logKeyErr, err)
	}
}
