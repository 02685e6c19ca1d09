package ledger

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/oklog/ulid/v2"
)

// Type names the kind of an event. The set is closed: see the constants.
type Type string

// The event types. Each has a data struct (Command, CallSignal, ConfigChange,
// DayClosed, TimerFired) and a version; a reader meeting an unknown type or a
// newer version than it knows must stop rather than guess.
const (
	TypeCommand    Type = "command"     // a Recording Controls command was received
	TypeCallSignal Type = "call_signal" // a CTI call signal was received
	TypeConfig     Type = "config"      // the configuration changed
	TypeDayClosed  Type = "day_closed"  // a day was sealed (manifest cut)
	TypeTimer      Type = "timer"       // a server timer fired (pause expiry)
)

// CurrentVersion is the version this code writes for every event: of its
// data, and of the recording rules the projections fold it with. The fold
// applies to each event the rules of its own version, so the history of a
// ledger folds the same under every later build: a sealed manifest, and
// an answer a client was given, never change with an upgrade.
//
//   - 1: the rules until 2026-11-30.
//   - 2 (2026-11-30): a login's extension must be one a user could be
//     configured with (rejected invalid_extension); metadata that changes
//     nothing is no_effect (unchanged) and adds no manifest update; a
//     retention is at most MaxRetentionDays; a user configured again
//     after its removal has no last call, even one its former self's
//     call became by ending after the removal.
//   - 3: a stopsegment ends a deleted segment (its contact
//     closes basic_only), and the call can be recorded again by a new
//     segment, as an outbound dialer's next customer is; metadata sent
//     while the active call is between segments goes to the call's last
//     segment; metadata on a gateway call that nothing can record is
//     no_effect (excluded or not_recording), not kept to be lost; a user
//     configured again does not take over its former self's calls still
//     active; a gateway tag asks the archiving of the contact's team; a
//     tag on a last call whose team was deleted is no_effect
//     (team_deleted).
//   - 4: a call signal whose time is not after the end of the call with
//     its id on its extension (remembered for an hour of ledger time, not
//     before the call's start or latest signal; also an end that came
//     before its call's start) is a late signal of that call, ignored: it
//     neither starts a call nor touches a later one that reuses the id.
//   - 5 (2026-12-01): a call signal whose time is after the envelope's
//     (its sender's clock ahead of the server's: nothing is received
//     before it happens) happens at the envelope time. A contact started
//     by a feed running ahead began after a pause the agent gave during
//     the call, and the manifest silenced none of it. A call started
//     under an earlier version keeps its feed's times to its end.
//   - 6 (2026-12-02): a call started by a dialing signal without a
//     direction is outbound (the agent placed it): its other party, for
//     the exclusion list and the classifiers, is the DNIS. It was read as
//     inbound, and a number on the Don't Record list was recorded.
//
// A build reads the versions up to its own and refuses later ones
// (ErrUnknownVersion): a ledger written by a newer build is not folded by
// an older one.
const CurrentVersion = 6

// TimeLayout is how every time in the ledger and the API is written:
// RFC 3339 in UTC with milliseconds.
const TimeLayout = "2006-01-02T15:04:05.000Z07:00"

// Time is a time.Time that encodes as RFC 3339 UTC with milliseconds, so
// that the same instant always gives the same bytes.
type Time struct{ time.Time }

// T wraps t, truncated to milliseconds and in UTC.
func T(t time.Time) Time { return Time{t.UTC().Truncate(time.Millisecond)} }

// MarshalJSON writes the time with TimeLayout, or null when zero.
func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return []byte(`"` + t.UTC().Format(TimeLayout) + `"`), nil
}

// UnmarshalJSON reads any RFC 3339 time (or null) and normalises it.
func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*t = Time{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	p, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return err
	}
	*t = T(p)
	return nil
}

// String formats like MarshalJSON, without quotes.
func (t Time) String() string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(TimeLayout)
}

// Event is what a caller hands to Append: a type and its data. The store
// gives it a seq, an id, a time and its place in the hash chain.
type Event struct {
	Type Type
	Data any // one of the data structs of this package; encoded with json.Marshal
}

// Envelope is an event as stored: the same bytes in bbolt and in JetStream.
// Seq is gapless from 1; ID is a ULID, strictly increasing in seq order;
// Time is the ULID's millisecond timestamp (never decreasing); Hash is
// SHA-256 over Prev's bytes and the canonical body (see Body).
type Envelope struct {
	Seq     uint64          `json:"seq"`
	ID      ulid.ULID       `json:"id"`
	Time    Time            `json:"time"`
	Type    Type            `json:"type"`
	Version int             `json:"version"`
	Data    json.RawMessage `json:"data"`
	Prev    string          `json:"prev"`
	Hash    string          `json:"hash"`

	// Raw is the stored encoding, set by readers; not part of the encoding.
	Raw []byte `json:"-"`
}

// body is the hashed part of an envelope, in a fixed field order.
type body struct {
	Seq     uint64          `json:"seq"`
	ID      ulid.ULID       `json:"id"`
	Time    Time            `json:"time"`
	Type    Type            `json:"type"`
	Version int             `json:"version"`
	Data    json.RawMessage `json:"data"`
}

// Body returns the canonical bytes the hash covers: the envelope without
// prev and hash, as compact JSON with a fixed field order.
func (e *Envelope) Body() ([]byte, error) {
	return json.Marshal(body{e.Seq, e.ID, e.Time, e.Type, e.Version, e.Data})
}

// ChainHash computes hash = SHA-256(prev bytes || body) as lower-case hex.
// The first event's prev is the empty string (no bytes).
func ChainHash(prev string, body []byte) (string, error) {
	p, err := hex.DecodeString(prev)
	if err != nil {
		return "", fmt.Errorf("chain hash: prev: %w", err)
	}
	h := sha256.New()
	h.Write(p)
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Seal fills Prev and Hash, and returns the canonical stored encoding.
func (e *Envelope) Seal(prev string) ([]byte, error) {
	b, err := e.Body()
	if err != nil {
		return nil, err
	}
	e.Prev = prev
	if e.Hash, err = ChainHash(prev, b); err != nil {
		return nil, err
	}
	raw, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	e.Raw = raw
	return raw, nil
}

// Decode parses a stored envelope and checks that its hash matches its own
// body and prev. It does not check that raw is the canonical encoding
// (Canonical does; Store.Verify and Store.Import check both), nor that prev
// is the previous event's hash (Store.Verify does).
//
// Envelopes in the exact form Seal writes (all of them, in a healthy
// ledger) take a fast path: the fields are read at their fixed places, and
// the hash is checked over the stored bytes themselves, which hold the
// canonical body as a prefix; no JSON is re-encoded. Data and Raw then
// share raw's memory. Anything else goes through encoding/json, which stays
// the authority on errors.
func Decode(raw []byte) (Envelope, error) {
	if e, ok := decodeFast(raw); ok {
		return e, nil
	}
	return decodeSlow(raw)
}

// decodeSlow is Decode through encoding/json, for any spelling of an
// envelope: the envelope is parsed, its body re-encoded and hashed.
func decodeSlow(raw []byte) (Envelope, error) {
	var e Envelope
	if err := json.Unmarshal(raw, &e); err != nil {
		return Envelope{}, fmt.Errorf("decode: %w: %v", ErrCorrupt, err)
	}
	b, err := e.Body()
	if err != nil {
		return Envelope{}, fmt.Errorf("decode: %w: %v", ErrCorrupt, err)
	}
	h, err := ChainHash(e.Prev, b)
	if err != nil || h != e.Hash {
		return Envelope{}, fmt.Errorf("decode seq %d: %w: hash mismatch", e.Seq, ErrCorrupt)
	}
	e.Raw = raw
	return e, nil
}

// Canonical reports whether raw is exactly the canonical encoding of e.
func Canonical(e Envelope, raw []byte) bool {
	b, err := json.Marshal(e)
	return err == nil && bytes.Equal(b, raw)
}

// EncodeData returns the canonical JSON of an event's data.
func EncodeData(v any) (json.RawMessage, error) {
	if b, ok := appendData(nil, v); ok {
		return b, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode data: %w", err)
	}
	return b, nil
}

// Unmarshal decodes the envelope's data into v, checking the version.
func (e *Envelope) Unmarshal(v any) error {
	if e.Version > CurrentVersion {
		return fmt.Errorf("seq %d: %w: %s version %d", e.Seq, ErrUnknownVersion, e.Type, e.Version)
	}
	if err := json.Unmarshal(e.Data, v); err != nil {
		return fmt.Errorf("seq %d: %s data: %w: %v", e.Seq, e.Type, ErrCorrupt, err)
	}
	return nil
}
