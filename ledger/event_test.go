package ledger

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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
