package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/recledger/recledger/ledger"
)

// CTI subscription settings.
const (
	ctiQueue   = "recledger-ingest" // queue group, so a second server never double-appends
	ctiWorkers = 4                  // concurrent batches (appends are group-committed)
	ctiBuffer  = 1024               // messages waiting for a worker
	// ctiBufferBytes bounds the bytes of the messages waiting. The
	// embedded server takes messages of up to ledger.EmbeddedMaxPayload
	// (32 MB, for manifests): a flood of such messages filled the waiting
	// room of 1024 (a walk's server grew to 1.45 GB). Beyond either bound
	// messages are dropped unanswered, counted and logged; their
	// requesters time out and retry. 8 MiB is a second or two of work
	// for the workers: with 64 MiB a walk's batches waited up to 7 s and
	// were appended after their requesters had given up (and would send
	// them again).
	ctiBufferBytes = 8 << 20
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
	work := make(chan *nats.Msg) // to a free worker
	dropped := 0                 // counted so far; read and written by the handler alone
	take := func(msg *nats.Msg) {
		// Messages too large for a batch are refused here, at once: a
		// worker holds at most a batch's bytes.
		if len(msg.Data) > maxFeedBody {
			s.handleCTIMsg(ctx, msg)
		} else {
			select {
			case work <- msg:
			case <-ctx.Done():
			}
		}
		// msg.Sub, not the subscription QueueSubscribe returns: a first
		// message may come before that is assigned.
		dropped = s.noteCTIDropped(msg.Sub, subject, dropped)
	}
	sub, err := nc.QueueSubscribe(subject, ctiQueue, take)
	if err == nil {
		err = sub.SetPendingLimits(ctiBuffer, s.ctiBufferBytes)
	}
	if err != nil {
		if sub != nil {
			sub.Unsubscribe()
		}
		return fmt.Errorf("cti: subscribe %s: %w", subject, err)
	}
	if nc.IsConnected() && nc.Flush() == nil {
		// A refused subscription is told asynchronously, before the
		// flush's answer: say it here rather than "taking" (a walk
		// served on another recledger's embedded NATS, which lets no
		// other server in, and read that it took call signals).
		if err := nc.LastError(); errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), subject) {
			s.log.Error("the NATS server refuses this server the call signals' subject: NO CALL SIGNAL IS TAKEN OVER NATS (POST /v1/calls/events still takes them). "+
				"An external NATS must let this server's user subscribe to it; another recledger's embedded NATS lets no other server in: give each site an external NATS, or its own embedded one",
				logKeySubject, subject, logKeyErr, err)
		} else {
			s.log.Info("taking call signals", logKeySubject, subject)
		}
	} else {
		s.log.Info("taking call signals", logKeySubject, subject)
	}
	var wg sync.WaitGroup
	for range ctiWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case msg := <-work:
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

// noteCTIDropped counts and logs (paced) the messages sub dropped since
// it last saw before of them, and returns how many it has dropped.
func (s *Server) noteCTIDropped(sub *nats.Subscription, subject string, before int) int {
	if sub == nil {
		return before
	}
	n, err := sub.Dropped()
	if err != nil || n <= before {
		return before
	}
	s.met.ctiDropped.Add(float64(n - before))
	s.ctiDroppedLog.Do(func() {
		s.log.Warn("call signals dropped unanswered: they arrive faster, or larger, than the server takes them; their senders time out (repeats are logged every 10 s)",
			logKeySubject, subject, logKeyDropped, n)
	})
	return n
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
	// What the log says of a refusal is what its answer says: masked, a
	// token redacted (a security walk found a card number sent as a
	// signal's type in the log, in clear).
	var said any
	if err != nil {
		body := s.errorBody(err)
		body["status"] = statusOf(err)
		reply, _ = json.Marshal(body)
		said = body["message"]
		if statusOf(err) >= 500 {
			s.log.Error("call signals not taken", logKeySubject, msg.Subject, logKeyErr, said)
		}
	} else {
		reply, _ = json.Marshal(res)
	}
	if msg.Reply == "" {
		// Published, not requested: valid signals are taken, and a
		// refusal has no one to go to but the log.
		if err != nil && statusOf(err) < 500 {
			s.unansweredLog.Do(func() {
				s.log.Warn("call signals refused, and their sender asked for no answer (repeats are logged every 10 s)", logKeySubject, msg.Subject, logKeyErr, said)
			})
		}
		return
	}
	if err := msg.Respond(reply); err != nil {
		s.log.Warn("cannot answer call signals", logKeySubject, msg.Subject, logKeyErr, err)
	}
}
