package ledger

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
)

// sealedSeeds are valid stored envelopes for the fuzzers' corpus.
func sealedSeeds(t testing.TB) [][]byte {
	var out [][]byte
	prev := ""
	for i, d := range []string{`{"command":"start","transport":"cad"}`, `{"x":"<&>"}`, `null`, `[1,2.5,"\u2028"]`} {
		e := Envelope{Seq: uint64(i + 1), ID: ulid.MustNew(uint64(1700000000000+i), bytes.NewReader(make([]byte, 16))),
			Type: TypeCommand, Version: CurrentVersion, Data: json.RawMessage(d)}
		e.Time = idTime(e.ID)
		raw, err := e.Seal(prev)
		if err != nil {
			t.Fatal(err)
		}
		out, prev = append(out, raw), e.Hash
	}
	return out
}

func FuzzDecode(f *testing.F) {
	for _, raw := range sealedSeeds(f) {
		f.Add(raw)
	}
	f.Add([]byte(`{"seq":1}`))
	f.Add([]byte(`{"seq":1,"prev":"zz"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		e, err := Decode(raw)
		if err != nil {
			return
		}
		if !bytes.Equal(e.Raw, raw) {
			t.Fatal("Raw not set to the input")
		}
		b, err := e.Body()
		if err != nil {
			t.Fatal(err)
		}
		if h, err := ChainHash(e.Prev, b); err != nil || h != e.Hash {
			t.Fatalf("decoded an envelope whose hash does not recompute: %v", err)
		}
		if Canonical(e, raw) {
			again := e
			again.Raw = nil
			out, err := again.Seal(e.Prev)
			if err != nil || !bytes.Equal(out, raw) {
				t.Fatalf("canonical envelope does not reseal to itself:\n%s\n%s", raw, out)
			}
		}
	})
}

// FuzzSealer holds the writer's hand-written encoder to (*Envelope).Seal.
func FuzzSealer(f *testing.F) {
	f.Add(uint64(1), uint64(1700000000000), "command", []byte(`{"command":"start"}`), []byte{})
	f.Add(uint64(1<<63), uint64(0), "odd \"type\" <&>", []byte(`{"x" : "\u003c<"}`), bytes.Repeat([]byte{7}, 32))
	f.Add(uint64(99), uint64(253402300799999), "\u2028", []byte(`"é"`), []byte{1})
	f.Fuzz(func(t *testing.T, seq, ms uint64, typ string, data, prevSeed []byte) {
		ms %= 253402300800000 // up to year 9999: the layout has four year digits
		p, err := prepare(Event{Type: Type(typ), Data: json.RawMessage(data)})
		if err != nil {
			return
		}
		var prev [sha256.Size]byte
		hasPrev := len(prevSeed) > 0
		copy(prev[:], prevSeed)
		prevHex := ""
		if hasPrev {
			prevHex = hex.EncodeToString(prev[:])
		}
		var id ulid.ULID
		if err := id.SetTime(ms); err != nil {
			t.Fatal(err)
		}
		copy(id[6:], data)

		var sl sealer
		_, fast := sl.seal(make([]byte, 0, 8), seq, id, p, &prev, hasPrev)

		ref := Envelope{Seq: seq, ID: id, Time: T(ulid.Time(ms)), Type: Type(typ), Version: CurrentVersion, Data: p.data}
		raw, err := ref.Seal(prevHex)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(fast.Raw, raw) || fast.Hash != ref.Hash || fast.Prev != ref.Prev {
			t.Fatalf("sealer differs from Seal:\n fast %s\n seal %s", fast.Raw, raw)
		}
		if hex.EncodeToString(prev[:]) != fast.Hash {
			t.Fatal("sealer did not advance prev to the new hash")
		}
		d, err := Decode(fast.Raw)
		if err != nil || !Canonical(d, fast.Raw) || d.Type != fast.Type || !bytes.Equal(d.Data, fast.Data) || !d.Time.Equal(fast.Time.Time) {
			t.Fatalf("sealed envelope does not decode to itself: %+v %v", d, err)
		}
	})
}

func TestTimeEncoding(t *testing.T) {
	tm := T(time.Date(2026, 11, 23, 19, 4, 5, 123456789, time.FixedZone("x", 3600)))
	b, err := json.Marshal(tm)
	if err != nil || string(b) != `"2026-11-23T18:04:05.123Z"` {
		t.Fatalf("%s %v", b, err)
	}
	var back Time
	if err := json.Unmarshal(b, &back); err != nil || !back.Equal(tm.Time) {
		t.Fatalf("%v %v", back, err)
	}
}

func TestQuoteTypeMatchesMarshal(t *testing.T) {
	for _, ty := range []Type{TypeCommand, TypeCallSignal, TypeConfig, TypeDayClosed, TypeTimer, "other <&>"} {
		want, _ := json.Marshal(string(ty))
		if got, err := quoteType(ty); err != nil || got != string(want) {
			t.Errorf("%s: %s, want %s (%v)", ty, got, want, err)
		}
	}
}

// A time is one spelling of its instant: written in UTC with milliseconds
// however it was built, read back normalised to that, and the zero time is
// null in JSON and empty as text. What is not an RFC 3339 time is refused.
func TestTimeIsOneSpellingOfAnInstant(t *testing.T) {
	at := time.Date(2026, 11, 23, 19, 4, 5, 123456789, time.FixedZone("x", 3600))
	if b, err := json.Marshal(Time{at.Truncate(time.Millisecond)}); err != nil || string(b) != `"2026-11-23T18:04:05.123Z"` {
		t.Errorf("a time built in another zone: %s %v", b, err)
	}
	var back Time
	if err := json.Unmarshal([]byte(`"2026-11-23T19:04:05.123456789+01:00"`), &back); err != nil ||
		!back.Equal(T(at).Time) || back.Location() != time.UTC {
		t.Errorf("read back as %v (%v), want %v in UTC", back.Time, err, T(at))
	}
	for _, bad := range []string{`"yesterday"`, `"2026-11-23"`, `1764000000`} {
		if err := json.Unmarshal([]byte(bad), &back); err == nil {
			t.Errorf("%s read as the time %v", bad, back)
		}
	}
	var zero Time
	if b, err := json.Marshal(zero); err != nil || string(b) != "null" || zero.String() != "" {
		t.Errorf("the zero time: %s %v, text %q", b, err, zero.String())
	}
	back = T(at)
	if err := json.Unmarshal([]byte("null"), &back); err != nil || !back.IsZero() {
		t.Errorf("null read as %v %v", back, err)
	}
}

// Decode refuses, as corrupt, bytes that are not an envelope, and an
// envelope whose prev is not a hash even when its hash is its body's
// alone: the chain cannot be checked through a prev that names nothing.
func TestDecodeRefusesWhatIsNotAChainLink(t *testing.T) {
	for _, raw := range []string{`not json`, `{"seq":"one"}`} {
		if _, err := Decode([]byte(raw)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", raw, err)
		}
	}
	e := Envelope{Seq: 1, ID: ulid.MustNew(1700000000000, bytes.NewReader(make([]byte, 16))), Type: TypeCommand,
		Version: CurrentVersion, Data: json.RawMessage(`{"command":"tag","transport":"cad"}`)}
	e.Time = idTime(e.ID)
	body, err := e.Body()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ChainHash("not a hash", body); err == nil {
		t.Error("ChainHash took a prev that is not hex")
	}
	sum := sha256.Sum256(body)
	e.Prev, e.Hash = "not a hash", hex.EncodeToString(sum[:])
	raw, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Decode(raw); !errors.Is(err, ErrCorrupt) {
		t.Errorf("an envelope whose prev is not a hash: %v, want ErrCorrupt", err)
	}
}

// An event written by a newer build is refused, not folded by guesswork;
// data that does not fit its type is corrupt.
func TestUnmarshalChecksVersionAndData(t *testing.T) {
	e := Envelope{Seq: 7, Type: TypeCallSignal, Version: CurrentVersion,
		Data: json.RawMessage(`{"call_id":"c-1","extension":"3420","type":"ringing","at":null,"transport":"http"}`)}
	var s CallSignal
	if err := e.Unmarshal(&s); err != nil || s.CallID != "c-1" {
		t.Fatalf("this build's event: %+v %v", s, err)
	}
	e.Version = CurrentVersion + 1
	if err := e.Unmarshal(&s); !errors.Is(err, ErrUnknownVersion) {
		t.Errorf("version %d: %v, want ErrUnknownVersion", e.Version, err)
	}
	e.Version, e.Data = CurrentVersion, json.RawMessage(`{"call_id":5}`)
	if err := e.Unmarshal(&s); !errors.Is(err, ErrCorrupt) {
		t.Errorf("a call id that is a number: %v, want ErrCorrupt", err)
	}
}
