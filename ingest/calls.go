package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/sync/semaphore"

	"github.com/recledger/recledger/ledger"
)

// maxSignalsPerBatch bounds one call-signal batch.
const maxSignalsPerBatch = 1000

// A signal's number fields are phone numbers or dialed digits: bounded, so
// that no signal makes an event too large to mirror.
const maxSignalNumber = 64

// A signal's at is refused before earliestSignalAt and more than
// maxSignalAhead after it was received: a date from a broken clock would
// date a contact, its day and its retention absurdly (year 9999), while a
// feed resending after an outage sends past times, and one whose clock
// runs a little ahead sends times slightly in the future.
var earliestSignalAt = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

const maxSignalAhead = 24 * time.Hour

// callSignalIn is one call signal as a CTI client sends it (API.md §3).
type callSignalIn struct {
	CallID    string  `json:"call_id"`
	Extension string  `json:"extension"`
	Type      string  `json:"type"`
	Direction string  `json:"direction"`
	ANI       string  `json:"ani"`
	DNIS      string  `json:"dnis"`
	ACD       bool    `json:"acd"`
	At        *string `json:"at"`
}

// callsReply is the answer to an accepted batch.
type callsReply struct {
	Accepted int    `json:"accepted"`
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
	// Ignored lists the signals appended that changed nothing (a resend
	// of an ended call's, an end of a call not active), by their index in
	// the request (the order they are appended in): a feed sees what its
	// resend did.
	Ignored []ignoredSignal `json:"ignored"`
}

// ignoredSignal is one signal of a batch that changed nothing.
type ignoredSignal struct {
	Index  int    `json:"index"`
	Seq    uint64 `json:"seq"`
	CallID string `json:"call_id"`
	Type   string `json:"type"`
	Reason string `json:"reason"` // projections.Ignored*: late, unknown_call
}

// parseSignals reads one signal object or an array of them and checks
// every one. The feed is all or nothing: one bad signal refuses the batch
// (400 naming its index and field) and nothing is appended, because a CTI
// feed retries and a half-taken batch would be replayed twice.
//
// The signals are appended in the order given, not sorted by time:
// sorted, a call whose feed dated its ended before its answered (a clock
// step) was split in two, the second never ending (a CTI walk). A call's
// signals listed out of order are late, or for an unknown call, instead,
// and the answer names them (callsReply.Ignored).
func parseSignals(body []byte, received time.Time, transport, principal string) ([]ledger.Event, error) {
	// A byte order mark, as some JSON writers put first, is taken as the
	// command path takes it (RFC 8259 lets a parser ignore it).
	body = bytes.TrimSpace(bytes.TrimPrefix(bytes.TrimSpace(body), []byte("\ufeff")))
	if !utf8.Valid(body) {
		// JSON is UTF-8 (RFC 8259): a call id with a stray byte would be
		// read as U+FFFD, and two calls could become one.
		return nil, newError(ledger.ReasonInvalidInput, "the body is not UTF-8 text")
	}
	ins, ok := quickSignals(body)
	if !ok {
		var err error
		if ins, err = decodeSignals(body); err != nil {
			e := newError(ledger.ReasonInvalidInput, err.Error())
			var se *signalError
			if errors.As(err, &se) {
				e = e.with("index", se.index)
				if se.field != "" {
					e = e.with("field", se.field)
				}
			}
			return nil, e
		}
	}
	if len(ins) == 0 {
		return nil, newError(ledger.ReasonInvalidInput, "no call signals in the body")
	}
	if len(ins) > maxSignalsPerBatch {
		return nil, newError(ledger.ReasonInvalidInput,
			fmt.Sprintf("at most %d call signals per batch, got %d", maxSignalsPerBatch, len(ins)))
	}
	at := ledger.T(received)
	events := make([]ledger.Event, 0, len(ins))
	for i, in := range ins {
		sig, field, msg := checkSignal(in, at)
		if field != "" {
			return nil, newError(ledger.ReasonInvalidInput,
				fmt.Sprintf("signal %d: %s: %s", i, field, msg)).with("index", i).with("field", field)
		}
		sig.Transport, sig.Principal = transport, principal
		events = append(events, ledger.Event{Type: ledger.TypeCallSignal, Data: sig})
	}
	return events, nil
}

// signalMembers are the members of a call signal, as API.md §3 names them.
var signalMembers = [...]string{"call_id", "extension", "type", "direction", "ani", "dnis", "acd", "at"}

// signalError is a call signal that could not be read: which one of the
// batch, which member, and why.
type signalError struct {
	index int
	field string
	msg   string
}

func (e *signalError) Error() string {
	if e.field == "" {
		return fmt.Sprintf("signal %d: %s", e.index, e.msg)
	}
	return fmt.Sprintf("signal %d: %s: %s", e.index, e.field, e.msg)
}

// decodeSignals reads one signal object or an array of them with
// json.Decoder: members named exactly as API.md §3 does (not in another
// case), each once, each of its type. Its errors name the signal and the
// member at fault.
func decodeSignals(body []byte) ([]callSignalIn, error) {
	var raws []json.RawMessage
	switch firstByte(body) {
	case '{':
		raws = []json.RawMessage{body}
	case '[':
		if err := decodeStrict(body, &raws); err != nil {
			return nil, fmt.Errorf("the body is not a JSON array of call signals: %v", err)
		}
	default:
		return nil, errors.New("the body must be a JSON object or an array of objects")
	}
	ins := make([]callSignalIn, len(raws))
	for i, raw := range raws {
		if err := signalMembersOK(raw); err != nil {
			err.index = i
			return nil, err
		}
		if err := decodeStrict(raw, &ins[i]); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) && te.Field != "" {
				want := "a string"
				switch te.Field {
				case "acd":
					want = "true or false"
				case "at":
					want = "an RFC 3339 time as a string, or null"
				}
				return nil, &signalError{index: i, field: te.Field, msg: "must be " + want + ", got a JSON " + te.Value}
			}
			return nil, &signalError{index: i, msg: "not a JSON object: " + err.Error()}
		}
	}
	return ins, nil
}

// signalMembersOK checks that raw is an object whose members are call
// signal members, each named once and exactly (encoding/json would take
// "Type" for "type", and the last of two).
func signalMembersOK(raw []byte) *signalError {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return &signalError{msg: "must be a JSON object"}
	}
	var seen uint8
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return &signalError{msg: "not a JSON object: " + err.Error()}
		}
		k, _ := t.(string)
		bit := signalMemberBit(k)
		switch {
		case bit == 0:
			return &signalError{field: k, msg: "is not a member of a call signal (" + strings.Join(signalMembers[:], ", ") + ")"}
		case seen&bit != 0:
			return &signalError{field: k, msg: "is given twice"}
		}
		seen |= bit
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return &signalError{field: k, msg: "not a JSON value: " + err.Error()}
		}
	}
	return nil
}

// checkSignal validates one signal; field names the first bad field.
func checkSignal(in callSignalIn, received ledger.Time) (sig ledger.CallSignal, field, msg string) {
	runes := utf8.RuneCountInString
	switch {
	case in.CallID == "":
		return sig, "call_id", "is required"
	case runes(in.CallID) > 128:
		return sig, "call_id", "is longer than 128 characters"
	case in.Extension == "":
		return sig, "extension", "is required"
	case runes(in.Extension) > 64:
		return sig, "extension", "is longer than 64 characters"
	case runes(in.ANI) > maxSignalNumber:
		return sig, "ani", fmt.Sprintf("is longer than %d characters", maxSignalNumber)
	case runes(in.DNIS) > maxSignalNumber:
		return sig, "dnis", fmt.Sprintf("is longer than %d characters", maxSignalNumber)
	case strings.ContainsFunc(in.CallID, unicode.IsControl):
		return sig, "call_id", "holds a control character"
	case strings.ContainsFunc(in.Extension, unicode.IsControl):
		return sig, "extension", "holds a control character"
	case strings.TrimSpace(in.Extension) != in.Extension:
		// "3420 " matches no agent's extension: its calls would be call
		// data only, without a word (a CTI walk).
		return sig, "extension", fmt.Sprintf("%q begins or ends with a space, so it could match no agent's extension", in.Extension)
	case strings.TrimSpace(in.CallID) != in.CallID:
		return sig, "call_id", fmt.Sprintf("%q begins or ends with a space (the same call sent without it would be another)", in.CallID)
	case strings.ContainsRune(in.CallID, utf8.RuneError):
		// From an escape of a lone surrogate (\ud800) or of U+FFFD itself:
		// two such ids would read as one, and end each other's calls.
		return sig, "call_id", "holds U+FFFD, a character that stands for one that could not be read"
	case strings.ContainsRune(in.Extension, utf8.RuneError):
		return sig, "extension", "holds U+FFFD, a character that stands for one that could not be read"
	}
	// A feed built from a template that left a variable unfilled: every
	// call would share the id "${callId}" (a walk's was taken).
	for _, m := range [...]struct{ field, v string }{{"call_id", in.CallID}, {"extension", in.Extension}, {"ani", in.ANI}, {"dnis", in.DNIS}} {
		if holdsFinesseVariable(m.v) {
			return sig, m.field, fmt.Sprintf("%q holds an unexpanded variable (${...}): the template that wrote it did not fill it", m.v)
		}
	}
	switch in.Type {
	case ledger.SignalRinging, ledger.SignalDialing, ledger.SignalAnswered,
		ledger.SignalHeld, ledger.SignalRetrieved, ledger.SignalEnded:
	default:
		return sig, "type", fmt.Sprintf("must be ringing, dialing, answered, held, retrieved or ended, got %q", in.Type)
	}
	switch in.Direction {
	case "", ledger.DirectionInbound, ledger.DirectionOutbound, ledger.DirectionInternal:
	default:
		return sig, "direction", fmt.Sprintf("must be inbound, outbound or internal, got %q", in.Direction)
	}
	at := received
	if in.At != nil && *in.At != "" {
		t, err := ledger.ParseRFC3339(*in.At)
		if err != nil {
			return sig, "at", fmt.Sprintf("must be an RFC 3339 time, got %q", *in.At)
		}
		if t.Before(earliestSignalAt) || t.After(received.Add(maxSignalAhead)) {
			return sig, "at", fmt.Sprintf("%s is not a time this call can have: at must not be before %s and at most %d hours after the server's clock (%s); leave it out to have the server stamp the signal",
				*in.At, earliestSignalAt.Format(time.DateOnly), int(maxSignalAhead/time.Hour), received.Format(time.RFC3339))
		}
		at = ledger.T(t)
	}
	// Not masked: a call's ids and numbers are identities, and a long
	// call id or an international number can hold a 13–15 digit window
	// that passes Luhn by chance; masked, two calls could become one, or
	// a number escape its team's inclusion list (docs/rules-decisions.md).
	return ledger.CallSignal{
		CallID: in.CallID, Extension: in.Extension, Type: in.Type, Direction: in.Direction,
		ANI: in.ANI, DNIS: in.DNIS, ACD: in.ACD, At: at,
	}, "", ""
}

// decodeStrict decodes exactly one JSON value with no unknown fields.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("unexpected data after the JSON value")
	}
	return nil
}

// acceptSignals parses, checks and appends one batch in one Append call.
func (s *Server) acceptSignals(ctx context.Context, source string, body []byte, transport, principal string) (callsReply, error) {
	res, err := s.takeSignals(ctx, source, body, transport, principal)
	switch {
	case err == nil:
		s.met.countBatch(source, batchAccepted, res.Ignored)
	case statusOf(err) >= 500:
		s.met.countBatch(source, batchFailed, nil)
	default:
		s.met.countBatch(source, batchRefused, nil)
	}
	return res, err
}

// takeSignals is acceptSignals without the counting.
func (s *Server) takeSignals(ctx context.Context, source string, body []byte, transport, principal string) (callsReply, error) {
	received := s.now()
	events, err := parseSignals(body, received, transport, principal)
	if err != nil {
		return callsReply{}, err
	}
	for i := range events {
		sig := events[i].Data.(ledger.CallSignal)
		if name, field := s.tokens.signalToken(&sig); name != "" {
			return callsReply{}, newError(ledger.ReasonInvalidInput,
				fmt.Sprintf("signal %d: %s holds the bearer token of entry %s: refused, not stored; rotate the token", i, field, name)).
				with("index", i).with("field", field)
		}
	}
	envs, err := s.appendEvents(ctx, source, events...)
	if err != nil {
		return callsReply{}, err
	}
	s.noteAhead(source, events, received)
	ignored := []ignoredSignal{}
	for i := range envs {
		if why := s.views.Ignored(envs[i].Seq); why != "" {
			sig := events[i].Data.(ledger.CallSignal)
			ignored = append(ignored, ignoredSignal{Index: i, Seq: envs[i].Seq, CallID: sig.CallID, Type: sig.Type, Reason: why})
		}
	}
	return callsReply{Accepted: len(envs), FirstSeq: envs[0].Seq, LastSeq: envs[len(envs)-1].Seq, Ignored: ignored}, nil
}

// noteAhead counts the signals of an appended batch dated more than
// aheadTolerance after the server received them, and logs (at most once
// a minute) that the feed's clock runs ahead. Such signals are taken at
// the time the ledger took them (event version 5); before, a pause made
// during a call could fall before its contact and be silenced nowhere
// (the upload-worker walk's gateway pause). The feed's clock is still
// wrong, and its resends are dated by it.
func (s *Server) noteAhead(source string, events []ledger.Event, received time.Time) {
	var n int
	var most time.Duration
	for i := range events {
		sig, ok := events[i].Data.(ledger.CallSignal)
		if !ok {
			continue
		}
		if lead := sig.At.Sub(received); lead > aheadTolerance {
			n++
			most = max(most, lead)
		}
	}
	if n == 0 {
		return
	}
	s.met.ahead.Add(float64(n))
	s.aheadLog.Do(func() {
		s.log.Warn("call signals dated ahead of the server's clock: the feed's clock runs ahead. They are taken at the time the server took them, not at their own; keep the feed's clock in step (NTP), or leave at out of live signals (docs/clients.md, Call signals; repeats are logged every minute, recledger_call_signals_ahead_total counts them)",
			logKeySource, source, logKeyAhead, most.Round(time.Millisecond), logKeyEvents, n)
	})
}

// aheadTolerance is how far after its arrival a signal may be dated
// before noteAhead counts it: a clock in step with the server's dates a
// signal before it arrives.
const aheadTolerance = time.Second

// handleCalls serves POST /v1/calls/events.
func (s *Server) handleCalls(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength > maxFeedBody {
		s.writeError(w, r, tooLarge(maxFeedBody))
		return
	}
	principal, err := s.authorize(r, RoleCommand)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	release := s.holdFeedBody(r)
	body, err := s.readBodyPooled(w, r, maxFeedBody)
	if err != nil {
		release()
		s.writeError(w, r, err)
		return
	}
	reply, err := s.acceptSignals(r.Context(), sourceCalls, body.Bytes(), ledger.TransportHTTP, principal)
	s.releaseBody(body) // the signals hold copies of what they took from the body
	release()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, reply)
}

// holdFeedBody makes r's body, a signal batch's or a configuration's,
// take the bytes it brings from the budget that all such bodies being
// read and parsed share (feedBodyBudget), as they arrive, and returns
// the release to call once the body is let go. Each body may be up to
// maxFeedBody, and the connections are many: without it, slow clients
// each sending a megabyte could make the server hold gigabytes. Taken
// as they arrive, not by the declared length: a first form took the
// declared length up front, and 70 requests declaring a megabyte each,
// sending a byte a second, made every batch wait 27 s (a walk). A body
// whose bytes find the budget taken waits, at most until the client goes
// away or its read timeout ends the body (408).
func (s *Server) holdFeedBody(r *http.Request) func() {
	b := &budgetedBody{ReadCloser: r.Body, ctx: r.Context(), sem: s.feedBytes}
	r.Body = b
	return b.release
}

// budgetedBody is a body that takes each chunk it reads from sem.
type budgetedBody struct {
	io.ReadCloser
	ctx  context.Context
	sem  *semaphore.Weighted
	held int64
}

func (b *budgetedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		if aerr := b.sem.Acquire(b.ctx, int64(n)); aerr != nil {
			return 0, aerr
		}
		b.held += int64(n)
	}
	return n, err
}

// release gives back what the body took.
func (b *budgetedBody) release() {
	if b.held > 0 {
		b.sem.Release(b.held)
		b.held = 0
	}
}

// drainRefusedBody reads and drops what is left of a refused request's
// body (a 413's, a 405's, …), when that is at most maxDrain bytes, before
// the answer is written.
// A client that sends its whole body before reading the answer (most do)
// otherwise had its connection reset under it, the answer unread: a
// walk's 2 MB POST got ECONNRESET in 14 of 30 tries. Beyond maxDrain
// the connection is closed as before. The read timeout bounds the time.
func drainRefusedBody(r *http.Request) {
	if r.Body == nil || r.ContentLength > maxDrain || strings.EqualFold(r.Header.Get("Expect"), "100-continue") {
		return // a client that waits for "100 Continue" reads the 413 instead of sending
	}
	body := r.Body
	if b, ok := body.(*budgetedBody); ok {
		body = b.ReadCloser // dropped bytes take nothing from the budget
	}
	io.CopyN(io.Discard, body, maxDrain)
}

// maxDrain is the most drainRefusedBody reads.
const maxDrain = 4 << 20

// readBody reads at most limit bytes of the body (413 beyond).
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	var buf bytes.Buffer
	if err := readBodyInto(&buf, w, r, limit); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// readBodyInto reads r's body, at most limit bytes, into buf.
func readBodyInto(buf *bytes.Buffer, w http.ResponseWriter, r *http.Request, limit int64) error {
	if r.ContentLength > limit {
		return tooLarge(limit)
	}
	if r.ContentLength > 0 {
		// +1: ReadFrom's probe for the end. Not more than a command's
		// ahead of the bytes: a declared megabyte may never come.
		buf.Grow(int(min(r.ContentLength, DefaultMaxBody)) + 1)
	}
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit)); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return tooLarge(limit)
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			// The server's read timeout: the body did not arrive whole
			// in time (a client that stalls, a link too slow).
			return newError(reasonTimeout, "the request body did not arrive whole in time; send it again")
		}
		return newError(ledger.ReasonInvalidInput, "cannot read the request body")
	}
	return nil
}

// readBodyPooled reads r's body into a reused buffer; hand the buffer to
// releaseBody once nothing refers to the body any more (the parsers copy
// what they keep).
func (s *Server) readBodyPooled(w http.ResponseWriter, r *http.Request, limit int64) (*bytes.Buffer, error) {
	buf, _ := s.bodies.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	buf.Reset()
	if err := readBodyInto(buf, w, r, limit); err != nil {
		s.releaseBody(buf)
		return nil, err
	}
	return buf, nil
}

// releaseBody puts a body buffer of readBodyPooled back for reuse.
func (s *Server) releaseBody(buf *bytes.Buffer) {
	if buf.Cap() <= maxPooledBody {
		s.bodies.Put(buf)
	}
}

// maxPooledBody is the largest body buffer put back for reuse.
const maxPooledBody = 64 << 10
