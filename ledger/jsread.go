package ledger

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"
)

// jsReadBatch is how many messages the ordered consumer keeps buffered.
const jsReadBatch = 4096

// ScanJetStream calls fn with every event of site in the stream with
// seq > after, in order, up to the site's last message at the time of the
// call, decoded with Decode (Raw = the message bytes, fn's to keep). It
// reads the messages on recledger.events.{site}.> with batched direct gets
// (jsdirect.go), or with an ordered consumer where the server has none.
//
// The events must form the ledger: seqs from 1 without gap or repeat, each
// prev the hash of the one before; otherwise the scan stops with an error
// wrapping ErrChainBroken. Messages that are not events (jsforeign.go)
// are stepped over; ScanJetStreamNoting tells of them. An error from fn
// stops the scan and is returned as is.
func ScanJetStream(ctx context.Context, js jetstream.JetStream, site string, after uint64, fn func(Envelope) error) error {
	return ScanJetStreamNoting(ctx, js, site, after, fn, nil)
}

// ScanJetStreamNoting is ScanJetStream calling foreign, when not nil, for
// each message on the site's event subjects that is not an event: a
// client had JetStream store it (docs/clients.md), or its bytes were
// damaged. near is its stream seq, or that of a later message.
func ScanJetStreamNoting(ctx context.Context, js jetstream.JetStream, site string, after uint64, fn func(Envelope) error, foreign func(near uint64)) error {
	if err := validSite(site); err != nil {
		return fmt.Errorf("scan jetstream: %w", err)
	}
	tail, err := readTail(ctx, js, site)
	if err != nil {
		return fmt.Errorf("scan jetstream: %w", err)
	}
	if tail.seq == 0 || tail.seq <= after {
		return nil
	}
	// Start at the event numbered after, found by bisection, when there is
	// one: it is read only to continue the chain from its hash.
	var from uint64
	if after > 0 {
		if from, err = seekSite(ctx, js, site, after, tail.streamSeq); err != nil {
			return fmt.Errorf("scan jetstream: %w", err)
		}
	}
	var prev Envelope
	return readSite(ctx, js, site, from, tail.streamSeq, foreign, func(_ uint64, e Envelope) error {
		if prev.Seq == tail.seq && prev.Seq > 0 {
			return errStopRead // appended after the scan began
		}
		if from > 0 && prev.Seq == 0 && e.Seq == after {
			prev = Envelope{Seq: e.Seq, Hash: e.Hash}
			return nil
		}
		if e.Seq != prev.Seq+1 {
			return fmt.Errorf("scan jetstream: %w: seq %d after %d", ErrChainBroken, e.Seq, prev.Seq)
		}
		if e.Prev != prev.Hash {
			return fmt.Errorf("scan jetstream: seq %d: %w: prev is not the hash of seq %d", e.Seq, ErrChainBroken, prev.Seq)
		}
		prev = Envelope{Seq: e.Seq, Hash: e.Hash}
		if e.Seq > after {
			return fn(e)
		}
		return nil
	})
}

// seekSite returns the stream seq of the site's event numbered seq, by
// bisection over the stream with "next message on the site's subjects"
// lookups (the site's events are in ledger order in the stream). It
// returns 0 when there is no such event, and the caller reads from the
// start, where the chain check names the fault.
func seekSite(ctx context.Context, js jetstream.JetStream, site string, seq, last uint64) (uint64, error) {
	// at returns the site's first event at stream seq >= p, stepping over
	// foreign messages (jsforeign.go); last holds an event.
	var api jetstream.Stream // for a stream without direct gets
	next := func(p uint64) (*directMsg, error) {
		if api == nil {
			m, err := getDirect(ctx, js, directOne{Seq: p, NextFor: siteEventsFilter(site)})
			if !errors.Is(err, errNoDirect) {
				return m, err
			}
			if api, err = js.Stream(ctx, EventsStream); err != nil {
				return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
			}
		}
		m, err := api.GetMsg(ctx, p, jetstream.WithGetMsgSubject(siteEventsFilter(site)))
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		return &directMsg{Seq: m.Sequence, Subject: m.Subject, Data: m.Data}, nil
	}
	at := func(p uint64) (uint64, Envelope, error) {
		for {
			m, err := next(p)
			if err != nil {
				return 0, Envelope{}, fmt.Errorf("seek: %w", err)
			}
			if m == nil {
				return 0, Envelope{}, fmt.Errorf("seek: %w: no event from stream seq %d", ErrUnavailable, p)
			}
			if e, err := Decode(m.Data); err == nil || m.Seq >= last {
				return m.Seq, e, err
			}
			p = m.Seq + 1
		}
	}
	// Invariant: the site's events before stream seq lo number < seq, and
	// the first one at or after hi numbers >= seq.
	lo, hi := uint64(1), last
	for lo < hi {
		mid := lo + (hi-lo)/2
		p, e, err := at(mid)
		if err != nil {
			return 0, err
		}
		if e.Seq < seq {
			lo = p + 1
		} else {
			hi = mid
		}
	}
	p, e, err := at(lo)
	if err != nil {
		return 0, err
	}
	if e.Seq != seq {
		return 0, nil
	}
	return p, nil
}

// errStopRead, returned by readSite's fn, ends the read without an error.
var errStopRead = errors.New("stop reading")

// readSite calls fn with the site's events in the stream, decoded, from
// stream seq from (0: the first) through at least stream seq until, which
// must hold one of them: with batched direct gets (jsdirect.go), or with
// an ordered consumer when the server does not answer those. fn is given
// the event's stream seq when it is known, else 0, and may be given
// events after until: it ends the read by returning errStopRead. Any other
// error of fn is returned as is.
func readSite(ctx context.Context, js jetstream.JetStream, site string, from, until uint64, foreign foreignNear, fn func(streamSeq uint64, e Envelope) error) error {
	return readSitePaced(ctx, js, site, from, until, defaultPace(), foreign, fn)
}

// readSitePaced is readSite with direct gets at pace.
func readSitePaced(ctx context.Context, js jetstream.JetStream, site string, from, until uint64, pace directPace, foreign foreignNear, fn func(streamSeq uint64, e Envelope) error) error {
	if foreign == nil {
		foreign = func(uint64) {}
	}
	next := from
	err := readSiteDirect(ctx, js, site, &next, until, pace, foreign, fn)
	if errors.Is(err, errNoDirect) {
		direct := err
		err = readSiteConsumer(ctx, js, site, next, until, foreign, fn)
		if errors.Is(err, ErrUnavailable) && ctx.Err() == nil {
			// Most often a reader of the embedded server, which may
			// not make consumers: the direct get's failure says why.
			err = fmt.Errorf("%w (after %v)", err, direct)
		}
	}
	if errors.Is(err, errStopRead) {
		return nil
	}
	return err
}

// readSiteConsumer is readSite with an ordered consumer; it stops at
// stream seq until.
func readSiteConsumer(ctx context.Context, js jetstream.JetStream, site string, from, until uint64, foreign foreignNear, fn func(streamSeq uint64, e Envelope) error) error {
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{siteEventsFilter(site)},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	}
	if from > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, from
	}
	cons, err := js.OrderedConsumer(ctx, EventsStream, cfg)
	if err != nil {
		return fmt.Errorf("read stream: consumer: %w: %v", ErrUnavailable, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(jsReadBatch))
	if err != nil {
		return fmt.Errorf("read stream: messages: %w: %v", ErrUnavailable, err)
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	done := ctx.Done()
	for {
		// Stopping the iterator (on cancel) does not empty its buffer, so
		// look at ctx before each message, not only when Next fails.
		select {
		case <-done:
			return ctx.Err()
		default:
		}
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("read stream: next: %w: %v", ErrUnavailable, err)
		}
		md, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("read stream: metadata: %w: %v", ErrUnavailable, err)
		}
		if e, err := Decode(m.Data()); err != nil {
			foreign(md.Sequence.Stream)
		} else if err := fn(md.Sequence.Stream, e); err != nil {
			return err
		}
		if md.Sequence.Stream >= until {
			return nil
		}
	}
}

// decodeFast decodes raw like Decode, but only when raw has exactly the
// shape of the canonical encoding (what Seal writes): then the hashed body
// is raw up to ",\"prev\":" plus "}", and no JSON has to be re-encoded.
// For anything else ok is false and the caller uses Decode, which stays the
// authority on errors. When ok, the envelope is the one Decode returns.
func decodeFast(raw []byte) (e Envelope, ok bool) {
	rest, good := bytes.CutPrefix(raw, []byte(`{"seq":`))
	if !good {
		return e, false
	}
	var tok []byte
	if tok, rest, good = cutUntil(rest, ','); !good {
		return e, false
	}
	seq, err := strconv.ParseUint(string(tok), 10, 64)
	if err != nil || strconv.FormatUint(seq, 10) != string(tok) {
		return e, false
	}
	if rest, good = bytes.CutPrefix(rest, []byte(`"id":"`)); !good || len(rest) < ulid.EncodedSize+1 || rest[ulid.EncodedSize] != '"' {
		return e, false
	}
	id, err := ulid.ParseStrict(string(rest[:ulid.EncodedSize]))
	if err != nil || id.String() != string(rest[:ulid.EncodedSize]) {
		return e, false
	}
	rest = rest[ulid.EncodedSize+1:]
	if rest, good = bytes.CutPrefix(rest, []byte(`,"time":"`)); !good {
		return e, false
	}
	if tok, rest, good = cutUntil(rest, '"'); !good {
		return e, false
	}
	at, good := ParseCanonicalTime(tok)
	if !good {
		return e, false
	}
	if rest, good = bytes.CutPrefix(rest, []byte(`,"type":"`)); !good {
		return e, false
	}
	if tok, rest, good = cutUntil(rest, '"'); !good || !plainWord(tok) {
		return e, false
	}
	typ := knownType(tok)
	if rest, good = bytes.CutPrefix(rest, []byte(`,"version":`)); !good {
		return e, false
	}
	if tok, rest, good = cutUntil(rest, ','); !good {
		return e, false
	}
	version, err := strconv.Atoi(string(tok))
	if err != nil || strconv.Itoa(version) != string(tok) {
		return e, false
	}
	if rest, good = bytes.CutPrefix(rest, []byte(`"data":`)); !good {
		return e, false
	}
	// The tail is fixed: ,"prev":"<"" or 64 hex>","hash":"<64 hex>"}.
	const prevKey, hashKey = `,"prev":"`, `","hash":"`
	const hashTail = len(hashKey) + 64 + len(`"}`)
	pi := -1
	for _, n := range [2]int{64, 0} {
		if at := len(rest) - hashTail - n - len(prevKey); at >= 0 && bytes.HasPrefix(rest[at:], []byte(prevKey)) {
			pi = at
			break
		}
	}
	if pi < 0 {
		return e, false
	}
	data, tail := rest[:pi], rest[pi+len(prevKey):]
	prev, hashPart := tail[:len(tail)-hashTail], tail[len(tail)-hashTail:]
	if !bytes.HasPrefix(hashPart, []byte(hashKey)) || !bytes.HasSuffix(hashPart, []byte(`"}`)) || !compactData(data) {
		return e, false
	}
	// The hash is compared with a lower-case hex encoding, so it needs no
	// check of its own; prev is checked by hex.Decode, as ChainHash does.
	hash := hashPart[len(hashKey) : len(hashPart)-2]
	var pb [32]byte
	if _, err := hex.Decode(pb[:len(prev)/2], prev); err != nil {
		return e, false
	}
	h := sha256.New()
	h.Write(pb[:len(prev)/2])
	h.Write(raw[:len(raw)-len(rest)+pi])
	h.Write([]byte{'}'})
	var sum [32]byte
	var hx [64]byte
	hex.Encode(hx[:], h.Sum(sum[:0]))
	if !bytes.Equal(hx[:], hash) {
		return e, false
	}
	// prev and hash as substrings of one copy of the bytes from prev's
	// start to hash's end (`","hash":"` between them): one allocation an
	// event instead of two.
	both := string(tail[:len(tail)-2])
	return Envelope{
		Seq: seq, ID: id, Time: at, Type: typ, Version: version,
		Data: json.RawMessage(data), Prev: both[:len(prev)], Hash: both[len(both)-len(hash):], Raw: raw,
	}, true
}

// ParseCanonicalTime parses exactly TimeLayout in UTC
// (2006-01-02T15:04:05.000Z), the way the ledger writes every time,
// rejecting any other spelling of an instant; it is several times faster
// than time.Parse. A caller that must also take other spellings falls
// back to time.Parse when ok is false.
func ParseCanonicalTime(b []byte) (Time, bool) {
	if len(b) != len("2006-01-02T15:04:05.000Z") || b[4] != '-' || b[7] != '-' || b[10] != 'T' ||
		b[13] != ':' || b[16] != ':' || b[19] != '.' || b[23] != 'Z' {
		return Time{}, false
	}
	for _, i := range [...]uint8{0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 22} {
		if b[i]-'0' > 9 {
			return Time{}, false
		}
	}
	d2 := func(i int) int64 { return int64(b[i]-'0')*10 + int64(b[i+1]-'0') }
	y, mo, d, h, mi, sec, ms := d2(0)*100+d2(2), d2(5), d2(8), d2(11), d2(14), d2(17), d2(20)*10+int64(b[22]-'0')
	if mo < 1 || mo > 12 || d < 1 || d > daysIn(mo, y) || h > 23 || mi > 59 || sec > 59 {
		return Time{}, false
	}
	// The instant from the fields by integer steps (time.Date, then the
	// round trip that caught Feb 30, cost a thousand instructions, and
	// every event read from the ledger has a time). It is whole
	// milliseconds in UTC already, as T would make it.
	t := time.UnixMilli((daysFromCivil(y, mo, d)*86_400+h*3600+mi*60+sec)*1000 + ms).UTC()
	if t.IsZero() {
		return Time{}, false
	}
	return Time{t}, true
}

// daysIn is the number of days of month mo (1-12) of year y.
func daysIn(mo, y int64) int64 {
	switch mo {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil is the number of days from 1970-01-01 to the proleptic
// Gregorian date y-mo-d (Howard Hinnant's days_from_civil).
func daysFromCivil(y, mo, d int64) int64 {
	if mo <= 2 {
		y--
	}
	era := y
	if era < 0 {
		era -= 399
	}
	era /= 400
	yoe := y - era*400
	mp := mo - 3
	if mo <= 2 {
		mp = mo + 9
	}
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146_097 + doe - 719_468
}

// knownType returns tok as a Type, without allocating for the types this
// code writes.
func knownType(tok []byte) Type {
	switch Type(tok) {
	case TypeCommand:
		return TypeCommand
	case TypeCallSignal:
		return TypeCallSignal
	case TypeConfig:
		return TypeConfig
	case TypeDayClosed:
		return TypeDayClosed
	case TypeTimer:
		return TypeTimer
	}
	return Type(tok)
}

// cutUntil splits b at the first c, dropping c.
func cutUntil(b []byte, c byte) (before, after []byte, found bool) {
	i := bytes.IndexByte(b, c)
	if i < 0 {
		return nil, nil, false
	}
	return b[:i], b[i+1:], true
}

// plainWord reports whether b is a non-empty [a-z0-9_]+, which JSON
// encodes as itself.
func plainWord(b []byte) bool {
	for _, c := range b {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return len(b) > 0
}

// compactData reports whether data is valid JSON exactly as json.Marshal
// writes a RawMessage: compact (no white space outside strings), with <, >,
// & and U+2028/U+2029 escaped. It is one hand-written pass (json.Valid was
// a quarter of a replay's decoding); it may refuse some valid input (very
// deep nesting), which then takes Decode's encoding/json path.
func compactData(data []byte) bool {
	v := compactValidator{b: data}
	return v.value(0) && v.i == len(data)
}

// compactValidator checks one compact JSON value at b[i:].
type compactValidator struct {
	b []byte
	i int
}

// maxCompactDepth bounds nesting; deeper input goes the slow way.
const maxCompactDepth = 64

func (v *compactValidator) value(depth int) bool {
	if v.i >= len(v.b) || depth > maxCompactDepth {
		return false
	}
	switch c := v.b[v.i]; {
	case c == '{':
		v.i++
		if v.i < len(v.b) && v.b[v.i] == '}' {
			v.i++
			return true
		}
		for {
			if !v.str() || v.i >= len(v.b) || v.b[v.i] != ':' {
				return false
			}
			v.i++
			if !v.value(depth + 1) {
				return false
			}
			if v.i >= len(v.b) {
				return false
			}
			switch v.b[v.i] {
			case ',':
				v.i++
			case '}':
				v.i++
				return true
			default:
				return false
			}
		}
	case c == '[':
		v.i++
		if v.i < len(v.b) && v.b[v.i] == ']' {
			v.i++
			return true
		}
		for {
			if !v.value(depth + 1) {
				return false
			}
			if v.i >= len(v.b) {
				return false
			}
			switch v.b[v.i] {
			case ',':
				v.i++
			case ']':
				v.i++
				return true
			default:
				return false
			}
		}
	case c == '"':
		return v.str()
	case c == 't':
		return v.lit("true")
	case c == 'f':
		return v.lit("false")
	case c == 'n':
		return v.lit("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return v.num()
	}
	return false
}

func (v *compactValidator) lit(w string) bool {
	if !bytes.HasPrefix(v.b[v.i:], []byte(w)) {
		return false
	}
	v.i += len(w)
	return true
}

// str checks a string: no control characters, valid escapes, none of the
// characters json.Marshal would escape.
func (v *compactValidator) str() bool {
	if v.i >= len(v.b) || v.b[v.i] != '"' {
		return false
	}
	for v.i++; v.i < len(v.b); v.i++ {
		switch c := v.b[v.i]; {
		case c == '"':
			v.i++
			return true
		case c < 0x20, c == '<', c == '>', c == '&':
			return false
		case c == 0xe2:
			if v.i+2 < len(v.b) && v.b[v.i+1] == 0x80 && (v.b[v.i+2] == 0xa8 || v.b[v.i+2] == 0xa9) {
				return false // U+2028, U+2029
			}
		case c == '\\':
			v.i++
			if v.i >= len(v.b) {
				return false
			}
			switch v.b[v.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if v.i+4 >= len(v.b) {
					return false
				}
				for _, h := range v.b[v.i+1 : v.i+5] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return false
					}
				}
				v.i += 4
			default:
				return false
			}
		}
	}
	return false
}

// num checks -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?.
func (v *compactValidator) num() bool {
	digits := func() int {
		n := 0
		for v.i < len(v.b) && v.b[v.i] >= '0' && v.b[v.i] <= '9' {
			v.i++
			n++
		}
		return n
	}
	if v.b[v.i] == '-' {
		v.i++
	}
	switch {
	case v.i < len(v.b) && v.b[v.i] == '0':
		v.i++
	case digits() == 0:
		return false
	}
	if v.i < len(v.b) && v.b[v.i] == '.' {
		v.i++
		if digits() == 0 {
			return false
		}
	}
	if v.i < len(v.b) && (v.b[v.i] == 'e' || v.b[v.i] == 'E') {
		v.i++
		if v.i < len(v.b) && (v.b[v.i] == '+' || v.b[v.i] == '-') {
			v.i++
		}
		if digits() == 0 {
			return false
		}
	}
	return true
}

// JetStreamHead returns the ledger seq of site's last event in the stream,
// 0 when it holds none; messages after it that are not events
// (jsforeign.go) are stepped over.
func JetStreamHead(ctx context.Context, js jetstream.JetStream, site string) (uint64, error) {
	if err := validSite(site); err != nil {
		return 0, fmt.Errorf("jetstream head: %w", err)
	}
	tail, err := readTail(ctx, js, site)
	if err != nil {
		return 0, fmt.Errorf("jetstream head: %w", err)
	}
	return tail.seq, nil
}

// MirrorSite returns a site whose events the events stream holds, and the
// ledger seq of that site's last event there; n is 0 when the stream
// holds none, or cannot be read. For the embedded server's stream, which
// holds one data dir's site.
func MirrorSite(ctx context.Context, js jetstream.JetStream) (site string, n uint64) {
	m, err := getDirect(ctx, js, directOne{LastFor: "recledger.events.>"})
	if err != nil || m == nil {
		return "", 0
	}
	rest, _ := strings.CutPrefix(m.Subject, "recledger.events.")
	site, _, _ = strings.Cut(rest, ".")
	if validSite(site) != nil {
		return "", 0
	}
	tail, err := readTail(ctx, js, site)
	if err != nil {
		return "", 0
	}
	return site, tail.seq
}
