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

// jsDirectWait bounds the wait for the next message of a direct get batch.
const jsDirectWait = 10 * time.Second

// jsDirectRetries is how many empty answers in a row (a replica behind the
// leader, say) are retried before the ordered consumer takes over.
const jsDirectRetries = 3

// errNoDirect says that the server did not answer a batched direct get as
// expected; the caller reads with the ordered consumer from *next.
var errNoDirect = errors.New("no batched direct get")

// directGetRequest is the JSON of a batched direct get request.
type directGetRequest struct {
	Seq      uint64 `json:"seq"`
	NextFor  string `json:"next_by_subj,omitempty"`
	Batch    int    `json:"batch"`
	NoHeader bool   `json:"no_hdr"`
}

// errNotSole says that the events stream took another site's subject
// during a read without a subject filter; the caller reads on from *next
// with the filter.
var errNotSole = errors.New("the events stream holds another site's subjects")

// soleSite reports whether every message the events stream holds is
// site's, and no other site's can be stored: its only subject is site's
// filter, and site's subjects hold all its messages. Then direct gets need
// no subject filter, which spares the server matching each message's
// subject against one (the stream has a subject per event type): a read
// takes 7-15 % less CPU. Any doubt (an error, another subject) answers
// false.
func soleSite(ctx context.Context, js jetstream.JetStream, site string) bool {
	st, err := js.Stream(ctx, EventsStream)
	if err != nil || !onlySubject(st.CachedInfo().Config.Subjects, site) {
		return false
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(siteEventsFilter(site)))
	if err != nil || !onlySubject(info.Config.Subjects, site) {
		return false
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n == info.State.Msgs
}

// onlySubject reports whether subjects is site's events filter alone.
func onlySubject(subjects []string, site string) bool {
	return len(subjects) == 1 && subjects[0] == siteEventsFilter(site)
}

// stillSole reports whether the events stream's only subject is still
// site's: checked after each batch read without a filter, before anyone
// sees it, because only then could another site's message have been
// stored since soleSite.
func stillSole(ctx context.Context, js jetstream.JetStream, site string) bool {
	st, err := js.Stream(ctx, EventsStream)
	return err == nil && onlySubject(st.CachedInfo().Config.Subjects, site)
}

// readSiteDirect is readSite with batched direct gets of size messages
// (jsDirectBatch but in tests), without a subject filter when sole
// (soleSite said so: then a batch read after the stream took another
// subject is dropped and errNotSole returned, *next at its start). Each batch is
// collected whole, up to its end, before fn sees it, and the next batch is
// asked for before that: the server sends it while fn works. *next (the
// stream seq to read from) is advanced past every batch passed to fn, so
// that after an error wrapping errNoDirect (the server does not answer
// such requests) the ordered consumer goes on from exactly there. The
// stream seq passed to fn is 0 (not sent), and the last batch may hold
// events after stream seq until: fn ends the read with errStopRead.
func readSiteDirect(ctx context.Context, js jetstream.JetStream, site string, sole bool, next *uint64, until uint64, size int, foreign foreignNear, fn func(streamSeq uint64, e Envelope) error) error {
	nc := js.Conn()
	subject := directGetSubject(js.Options())
	inbox := nc.NewInbox()
	// Room for two batches: the one being collected and the next, asked
	// for before the first is handed to fn.
	msgs := make(chan *nats.Msg, 2*size+16)
	sub, err := nc.ChanSubscribe(inbox, msgs)
	if err != nil {
		return fmt.Errorf("read stream: %w: %v", ErrUnavailable, err)
	}
	defer sub.Unsubscribe()
	ask := func(from uint64) error {
		filter := siteEventsFilter(site)
		if sole {
			filter = "" // every message: no subject to match
		}
		req, _ := json.Marshal(directGetRequest{Seq: max(from, 1), NextFor: filter, Batch: size, NoHeader: true})
		if err := nc.PublishRequest(subject, inbox, req); err != nil {
			return fmt.Errorf("read stream: direct get: %w: %v", ErrUnavailable, err)
		}
		return nil
	}
	timer := time.NewTimer(jsDirectWait)
	defer timer.Stop()
	done := ctx.Done()
	batch := make([][]byte, 0, size)
	empty := 0
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
			timer.Reset(jsDirectWait)
			var m *nats.Msg
			select {
			case <-done:
				return ctx.Err()
			case <-timer.C:
				return fmt.Errorf("read stream: %w: no answer in %v", errNoDirect, jsDirectWait)
			case m = <-msgs:
			}
			if len(m.Header) == 0 && len(m.Data) > 0 {
				batch = append(batch, m.Data) // the next event of the site
				continue
			}
			if last, end, err = directStatus(m); err != nil {
				return err
			}
		}
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
		if sole && !stillSole(ctx, js, site) {
			return fmt.Errorf("read stream: from stream seq %d: %w", *next, errNotSole)
		}
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
			e, ok := decodeFast(raw)
			if !ok {
				if e, err = Decode(raw); err != nil {
					foreign(last) // at stream seq last or before
					continue
				}
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
// messages), or anything else (an error wrapping errNoDirect).
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
