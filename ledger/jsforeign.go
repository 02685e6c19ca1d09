package ledger

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// A foreign message is one on a site's event subjects that is not an
// event: bytes that do not decode as an envelope. Only the outbox
// publishes there, and no client may (nats_access.go), but JetStream
// itself stores what it is told to send on a stream's subject: its answer
// to an API request whose reply subject a reading client chose, or a push
// consumer's deliveries from the other stream. Such messages cannot be
// told from the events by NATS permissions, and they cannot pass for
// events (an event is a chain link the outbox wrote), so every reader of
// the stream steps over them and says so, and the outbox removes those
// it finds at the tail. A stored event whose bytes were damaged is
// stepped over too; the chain check then names the seq it lacks.

// maxForeignTail bounds the walk back over foreign messages at the end of
// a site's events before the stream is called unreadable.
const maxForeignTail = 10_000

// foreignNear is called by the stream readers for each foreign message,
// with its stream seq, or the stream seq of a later message when the
// reader does not know it (batched direct gets).
type foreignNear func(streamSeq uint64)

// siteSubject reports whether subject is one of site's event subjects.
func siteSubject(subject, site string) bool {
	rest, ok := strings.CutPrefix(subject, "recledger.events.")
	if !ok {
		return false
	}
	rest, ok = strings.CutPrefix(rest, site)
	return ok && len(rest) > 1 && rest[0] == '.'
}

// readTail reads the last event of site in the stream, stepping back over
// foreign messages after it (listed in the result). Past maxForeignTail of
// them it fails, listing those it stepped over. It reads with direct
// gets, as readers may; a stream without them is read through the stream
// API (apiMsgs), which readers of the embedded server may not use.
func readTail(ctx context.Context, js jetstream.JetStream, site string) (streamTail, error) {
	var msgs tailMsgs = directMsgs{js}
	m, err := msgs.last(ctx, siteEventsFilter(site))
	if errors.Is(err, errNoDirect) {
		s, serr := js.Stream(ctx, EventsStream)
		if serr != nil { // none at all: an error wrapping jetstream.ErrStreamNotFound
			return streamTail{}, fmt.Errorf("stream tail: %w: %w", ErrUnavailable, serr)
		}
		msgs = apiMsgs{s}
		m, err = msgs.last(ctx, siteEventsFilter(site))
	}
	if err != nil {
		return streamTail{}, fmt.Errorf("stream tail: %w", err)
	}
	if m == nil {
		return streamTail{}, nil
	}
	tail := streamTail{last: m.Seq}
	for {
		if e, err := Decode(m.Data); err == nil {
			tail.seq, tail.streamSeq, tail.raw = e.Seq, m.Seq, m.Data
			return tail, nil
		}
		tail.foreign = append(tail.foreign, m.Seq)
		if len(tail.foreign) >= maxForeignTail {
			// The outbox removes these and looks again.
			return streamTail{foreign: tail.foreign}, fmt.Errorf("stream tail: %w: %d messages that are not events and more before stream seq %d", ErrCorrupt, len(tail.foreign), m.Seq)
		}
		if m, err = prevSiteMsg(ctx, msgs, site, m.Seq); err != nil || m == nil {
			return tail, err
		}
	}
}

// tailMsgs reads single messages of the events stream for readTail: the
// last one on a subject filter, and one by stream seq; nil when there is
// none.
type tailMsgs interface {
	last(ctx context.Context, filter string) (*directMsg, error)
	at(ctx context.Context, seq uint64) (*directMsg, error)
}

// directMsgs reads with direct gets.
type directMsgs struct{ js jetstream.JetStream }

func (d directMsgs) last(ctx context.Context, filter string) (*directMsg, error) {
	return getDirect(ctx, d.js, directOne{LastFor: filter})
}

func (d directMsgs) at(ctx context.Context, seq uint64) (*directMsg, error) {
	return getDirect(ctx, d.js, directOne{Seq: seq})
}

// apiMsgs reads through the stream API, for a stream without direct gets.
type apiMsgs struct{ s jetstream.Stream }

func (a apiMsgs) last(ctx context.Context, filter string) (*directMsg, error) {
	return apiMsg(a.s.GetLastMsgForSubject(ctx, filter))
}

func (a apiMsgs) at(ctx context.Context, seq uint64) (*directMsg, error) {
	return apiMsg(a.s.GetMsg(ctx, seq))
}

func apiMsg(m *jetstream.RawStreamMsg, err error) (*directMsg, error) {
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return &directMsg{Seq: m.Sequence, Subject: m.Subject, Data: m.Data}, nil
}

// prevSiteMsg returns the site's message before stream seq seq, nil when
// there is none.
//
// In a stream several sites share, the site's previous message may lie
// far back: a walk one stream seq at a time took longer than a session's
// patience and stalled the outbox for good (a cluster walk: one foreign
// message on a new site's subjects in a stream of 18,790). So the last
// message of each event type's subject is asked first; when all of them
// lie before seq, the newest is the site's previous event (foreign
// messages between it and seq, on other subjects of the site, are left:
// readers step over them). Otherwise the walk.
func prevSiteMsg(ctx context.Context, msgs tailMsgs, site string, seq uint64) (*directMsg, error) {
	var best *directMsg
	fast := true
	for _, t := range []Type{TypeCommand, TypeCallSignal, TypeConfig, TypeDayClosed, TypeTimer} {
		m, err := msgs.last(ctx, EventSubject(site, t))
		if err != nil {
			return nil, fmt.Errorf("stream tail: %w", err)
		}
		if m != nil && m.Seq >= seq {
			fast = false // this subject's last is the one found, or after it
			break
		}
		if m != nil && (best == nil || m.Seq > best.Seq) {
			best = m
		}
	}
	if fast {
		return best, nil
	}
	for p := seq - 1; p >= 1 && p < seq; p-- {
		m, err := msgs.at(ctx, p)
		switch {
		case err != nil:
			return nil, fmt.Errorf("stream tail: %w", err)
		case m == nil:
			continue // deleted, or removed by limits
		case siteSubject(m.Subject, site):
			return m, nil
		}
	}
	return nil, nil
}

// removeForeign deletes the foreign messages tail lists, with the outbox's
// own connection; it returns how many went. A stream the connection may
// not delete from keeps them: the readers step over them anyway.
func (o *Outbox) removeForeign(ctx context.Context, js jetstream.JetStream, tail streamTail) int {
	if len(tail.foreign) == 0 {
		return 0
	}
	s, err := js.Stream(ctx, EventsStream)
	if err != nil {
		return 0
	}
	n := 0
	for _, seq := range tail.foreign {
		if err := s.DeleteMsg(ctx, seq); err == nil || errors.Is(err, jetstream.ErrMsgNotFound) {
			n++
		}
	}
	o.log.Warn("outbox: messages that are not events follow the stream's last event; a client had JetStream store them (docs/clients.md)",
		jsLogKeyFound, len(tail.foreign), jsLogKeyRemoved, n, jsLogKeyStreamSeqs, tail.foreign[:min(len(tail.foreign), 10)])
	return n
}
