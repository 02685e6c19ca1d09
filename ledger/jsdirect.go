package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The site's events are read from the stream with batched direct gets
// (nats-server 2.11 and later; ADR-31): one request asks for the next
// jsDirectBatch messages on the site's subjects, and the server sends them,
// payload only, then an end-of-batch status naming the last stream seq it
// sent. This costs about half the CPU of an ordered consumer per event
// (no consumer, no per-message metadata to parse), which is most of a
// replay from JetStream. A server or stream that does not answer them
// (an older server, a stream without AllowDirect, a permission) is read
// with the ordered consumer instead.

// jsDirectBatch is how many messages one direct get request asks for.
const jsDirectBatch = 8192

// jsDirectWait bounds the wait for the next message of a direct get batch,
// and for the answer to a single direct get.
const jsDirectWait = 10 * time.Second

// jsLostRetries is how many times in a row a request whose answer stopped
// coming (a batch or a single get dropped on its way: a relay's intake
// full, a connection closed as a slow consumer, a stream leader that
// changed) is asked again before the read fails.
const jsLostRetries = 2

// directPace is how readSiteDirect asks: batch messages a request, and
// wait at most for each next message before the request is taken for
// lost. Tests read in small batches with short waits.
type directPace struct {
	batch int
	wait  time.Duration
}

// defaultPace is the pace of every read but the tests'.
func defaultPace() directPace { return directPace{batch: jsDirectBatch, wait: jsDirectWait} }

// jsDirectRetries is how many empty answers in a row (a replica behind the
// leader, say) are retried before the ordered consumer takes over.
const jsDirectRetries = 3

// jsBusyRetries is how many "429 Too Many Requests" answers in a row (the
// embedded server's relay, its share of other readers' requests taken)
// are waited out and asked again, jsBusyBackoff the longest wait between:
// about a minute in all.
const (
	jsBusyRetries = 40
	jsBusyBackoff = 2 * time.Second
)

// errNoDirect says that the server did not answer a batched direct get as
// expected; the caller reads with the ordered consumer from *next.
var errNoDirect = errors.New("no batched direct get")

// errBusy says that the server answered "429 Too Many Requests": ask
// again after waitBusy.
var errBusy = fmt.Errorf("%w: the server is busy with other readers' requests", ErrUnavailable)

// waitBusy waits before asking again after the nth busy answer in a row
// (from 0), and returns errBusy once there were too many.
func waitBusy(ctx context.Context, n int) error {
	if n >= jsBusyRetries {
		return errBusy
	}
	t := time.NewTimer(min(50*time.Millisecond<<min(n, 6), jsBusyBackoff))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// directGetRequest is the JSON of a batched direct get request.
type directGetRequest struct {
	Seq      uint64 `json:"seq"`
	NextFor  string `json:"next_by_subj,omitempty"`
	Batch    int    `json:"batch"`
	NoHeader bool   `json:"no_hdr"`
}

// readSiteDirect is readSite with batched direct gets of pace.batch
// messages on the site's subjects. Each batch is collected whole, up to its
// end, before fn sees it, and the next batch is asked for before that: the
// server sends it while fn works. *next (the stream seq to read from) is
// advanced past every batch passed to fn, so that after an error wrapping
// errNoDirect (the server does not answer such requests) the ordered
// consumer goes on from exactly there. The stream seq passed to fn is 0
// (not sent), and the last batch may hold events after stream seq until:
// fn ends the read with errStopRead.
//
// Each request has a reply subject of its own under one subscription, so
// that a batch whose messages stopped coming for pace.wait can be asked
// for again (jsLostRetries times in a row) and a late answer to the lost
// request is told apart and dropped. What came of a lost batch is dropped
// with it: fn never saw it.
// (Reading without a subject filter while the stream held one site alone
// saved 7-15 % of the server's CPU, but needed the stream's configuration,
// which readers may not see: docs/clients.md.)
func readSiteDirect(ctx context.Context, js jetstream.JetStream, site string, next *uint64, until uint64, pace directPace, foreign foreignNear, fn func(streamSeq uint64, e Envelope) error) error {
	nc := js.Conn()
	subject := directGetSubject(js.Options())
	inbox := nc.NewInbox()
	// Room for two batches: the one being collected and the next, asked
	// for before the first is handed to fn.
	msgs := make(chan *nats.Msg, 2*pace.batch+16)
	sub, err := nc.ChanSubscribe(inbox+".*", msgs)
	if err != nil {
		return fmt.Errorf("read stream: %w: %v", ErrUnavailable, err)
	}
	defer sub.Unsubscribe()
	var (
		asked uint64
		reply string // the request whose answers count
	)
	ask := func(from uint64) error {
		asked++
		reply = inbox + "." + strconv.FormatUint(asked, 10)
		req, _ := json.Marshal(directGetRequest{Seq: max(from, 1), NextFor: siteEventsFilter(site), Batch: pace.batch, NoHeader: true})
		if err := nc.PublishRequest(subject, reply, req); err != nil {
			return fmt.Errorf("read stream: direct get: %w: %v", ErrUnavailable, err)
		}
		return nil
	}
	timer := time.NewTimer(pace.wait)
	defer timer.Stop()
	done := ctx.Done()
	batch := make([][]byte, 0, pace.batch)
	empty, busy, lost := 0, 0, 0
	if *next <= until {
		if err := ask(*next); err != nil {
			return err
		}
	}
	for *next <= until {
		// Collect one batch, up to its end.
		batch = batch[:0]
		var last uint64
		for end := false; !end; {
			timer.Reset(pace.wait)
			var m *nats.Msg
			select {
			case <-done:
				return ctx.Err()
			case <-timer.C:
				// Not a server without direct gets (that one says so at
				// once): the batch was lost on its way, or the server is
				// stuck. The ordered consumer would not fare better, and
				// a reader may not make one.
				if lost++; lost > jsLostRetries {
					return fmt.Errorf("read stream: %w: no answer to a direct get in %v, %d times", ErrUnavailable, pace.wait, lost)
				}
				batch = batch[:0]
				if err := ask(*next); err != nil {
					return err
				}
				continue
			case m = <-msgs:
			}
			if m.Subject != reply {
				continue // late, for a request taken for lost
			}
			if len(m.Header) == 0 {
				// The next message of the site (with no_hdr, a stored
				// message comes without headers; only the server's
				// status messages have them). An empty one is not an
				// event: fn's caller is told of it as foreign.
				batch = append(batch, m.Data)
				continue
			}
			last, end, err = directStatus(m)
			if errors.Is(err, errBusy) && len(batch) == 0 {
				// Refused whole, before any message: ask again.
				if err := waitBusy(ctx, busy); err != nil {
					return fmt.Errorf("read stream: %w", err)
				}
				busy++
				if err := ask(*next); err != nil {
					return err
				}
				continue
			}
			if err != nil {
				return err
			}
		}
		busy, lost = 0, 0
		if len(batch) == 0 {
			// Nothing from *next on, though the tail said otherwise: a
			// replica behind the leader may have answered. Ask again.
			if empty++; empty > jsDirectRetries {
				return fmt.Errorf("read stream: %w: no events from stream seq %d to %d", errNoDirect, *next, until)
			}
			if err := ask(*next); err != nil {
				return err
			}
			continue
		}
		empty = 0
		if last < *next {
			return fmt.Errorf("read stream: %w: batch from stream seq %d ended at %d", errNoDirect, *next, last)
		}
		*next = last + 1
		if *next <= until {
			if err := ask(*next); err != nil {
				return err
			}
		}
		for _, raw := range batch {
			select {
			case <-done:
				return ctx.Err()
			default:
			}
			e, err := Decode(raw)
			if err != nil {
				foreign(last) // at stream seq last or before
				continue
			}
			if err := fn(0, e); err != nil {
				return err
			}
		}
	}
	return nil
}

// directStatus reads a status message of a direct get batch: the end of
// the batch (done, with the last stream seq sent), "not found" (done, no
// messages), "too many requests" (errBusy), or anything else (an error
// wrapping errNoDirect).
func directStatus(m *nats.Msg) (last uint64, done bool, err error) {
	switch code := m.Header.Get("Status"); code {
	case "204": // EOB
		last, err = strconv.ParseUint(m.Header.Get("Nats-Last-Sequence"), 10, 64)
		if err != nil {
			return 0, false, fmt.Errorf("read stream: %w: end of batch without last sequence", errNoDirect)
		}
		return last, true, nil
	case "404":
		return 0, true, nil
	case "429":
		return 0, false, errBusy
	case "":
		// A message with headers: a server that ignored no_hdr, and
		// likely batch too.
		return 0, false, fmt.Errorf("read stream: %w: message with headers", errNoDirect)
	default:
		return 0, false, fmt.Errorf("read stream: %w: status %s %s", errNoDirect, code, m.Header.Get("Description"))
	}
}

// directGetSubject is the direct get subject of the events stream for the
// JetStream context's domain or API prefix.
func directGetSubject(o jetstream.JetStreamOptions) string {
	prefix := "$JS.API."
	switch {
	case o.Domain != "":
		prefix = "$JS." + o.Domain + ".API."
	case o.APIPrefix != "":
		prefix = o.APIPrefix
		if !strings.HasSuffix(prefix, ".") {
			prefix += "."
		}
	}
	return prefix + "DIRECT.GET." + EventsStream
}

// directMsg is a message of the events stream read by getDirect.
type directMsg struct {
	Seq     uint64
	Subject string
	Data    []byte
}

// directOne is the JSON of a direct get of one message: by seq, the next
// one on a subject from seq, or the last one on a subject.
type directOne struct {
	Seq     uint64 `json:"seq,omitempty"`
	NextFor string `json:"next_by_subj,omitempty"`
	LastFor string `json:"last_by_subj,omitempty"`
}

// getDirect reads one message of the events stream with a direct get: nil
// when there is none. Readers use it, not the stream's info (which they
// may not read, docs/clients.md). An error wraps errNoDirect when no one
// answers (no such stream, or one without direct gets). Each request
// waits jsDirectWait at most, whatever ctx allows; a busy server is asked
// again (waitBusy).
func getDirect(ctx context.Context, js jetstream.JetStream, req directOne) (*directMsg, error) {
	return getDirectWaiting(ctx, js, req, jsDirectWait)
}

// getDirectWaiting is getDirect waiting wait for each answer. A request
// not answered in time is asked again, jsLostRetries times in a row; each
// has a reply subject of its own (nats.go's), so a late answer to the
// first is not taken for the next one's.
func getDirectWaiting(ctx context.Context, js jetstream.JetStream, req directOne, wait time.Duration) (*directMsg, error) {
	body, _ := json.Marshal(req)
	var m *nats.Msg
	for busy, lost := 0, 0; ; {
		rctx, cancel := context.WithTimeout(ctx, wait)
		var err error
		m, err = js.Conn().RequestWithContext(rctx, directGetSubject(js.Options()), body)
		cancel()
		if errors.Is(err, nats.ErrNoResponders) {
			return nil, fmt.Errorf("direct get: %w: %v", errNoDirect, err)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if errors.Is(err, nats.ErrConnectionClosed) {
				// Closed under the request (a refusal closes a reader's:
				// ledger.Refused says why), not a request left unanswered.
				return nil, fmt.Errorf("direct get: %w: %v", ErrUnavailable, err)
			}
			if lost++; errors.Is(err, context.DeadlineExceeded) && lost <= jsLostRetries {
				continue
			}
			return nil, fmt.Errorf("direct get: %w: no answer in %v, %d times: %v", ErrUnavailable, wait, lost, err)
		}
		if m.Header.Get("Status") != "429" {
			break
		}
		if err := waitBusy(ctx, busy); err != nil {
			return nil, fmt.Errorf("direct get: %w", err)
		}
		busy++
	}
	switch code := m.Header.Get("Status"); code {
	case "":
	case "404":
		return nil, nil
	default:
		return nil, fmt.Errorf("direct get: %w: status %s %s", ErrUnavailable, code, m.Header.Get("Description"))
	}
	seq, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("direct get: %w: no sequence in the answer", ErrUnavailable)
	}
	return &directMsg{Seq: seq, Subject: m.Header.Get(jetstream.SubjectHeader), Data: m.Data}, nil
}
