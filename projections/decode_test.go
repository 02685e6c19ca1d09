package projections

import (
	"bytes"
	"encoding/json"
	"math/rand"
	"reflect"
	"testing"

	"github.com/recledger/recledger/ledger"
)

// FuzzDecode checks the fast decoders against encoding/json: the same
// bytes must give the same struct, or the same failure.
func FuzzDecode(f *testing.F) {
	seeds := []any{
		ledger.Command{Command: "metadata", SenderID: "jdoe", Extension: "3420", PeripheralID: "5001",
			Params: []ledger.Param{{Key: "account", Value: "12"}, {Key: "note", Value: "a&b <x> \"q\" Zoë\u2028"}},
			Masked: []string{"card"}, Invalid: "invalid_input", Message: "m", Transport: "finesse", Method: "POST", Client: "10.0.0.1", Principal: "tok"},
		ledger.Command{Command: "tag", Transport: "cad"},
		ledger.CallSignal{CallID: "c-1", Extension: "3420", Type: "ringing", Direction: "inbound", ANI: "+1312", DNIS: "8001", ACD: true,
			At: ledger.T(scriptDay), Transport: "nats", Principal: "p"},
		ledger.CallSignal{CallID: "c-1", Extension: "3420", Type: "ended", Transport: "http"},
	}
	for _, v := range seeds {
		b, _ := json.Marshal(v)
		f.Add(b)
	}
	f.Add([]byte(`{"command":"tag","params":null}`))
	f.Add([]byte(` { "call_id" : "c" , "acd" : false , "at" : "2026-11-23T10:00:00+01:00" } `))
	f.Add([]byte(`{"Call_ID":"c","extra":1}`))
	// What the fast path must refuse, or read, exactly as encoding/json
	// does (each once let a mutant of the decoder through).
	for _, b := range []string{
		"{\"sender_id\":\"\xff\"}",                              // invalid UTF-8: replaced, not refused
		"{\"sender_id\":\"a\x01b\"}",                            // a raw control character: refused
		`{"command":"tag" "sender_id":"x"}`,                     // a missing comma
		`{"command":"tag"} x`,                                   // something after the object
		`{"command":"tag","masked":[]}`,                         // an empty list, not nil
		`{"call_id":"c","at":nope}`,                             // not a value
		`{"call_id":"c","at":"2026-11-23T10:00:00"}`,            // a time without its offset
		`{"command":"tag","params":[{"key":"a"}]}`,              // a param without its value
		`{"command":"tag","params":[{"key":"a","value":"b"},]}`, // a trailing comma
		"{\"sender_id\":\"a\\n\x01\"}",                          // a control character after an escape
		"{\"sender\x01id\":\"x\"}",                              // a control character in a key
		`{"command" "tag"}`, `{"command`, `{"command":"ta`,      // no colon, cut short
		`{"acd":tru}`, `{"acd":"true"}`, `{"command":"\u00e9\ud800"}`, `[]`, `null`, ``,
		// Off the encoder's shape,
		`{"command":"tag""sender_id":"x"}`, // a missing comma, no space
		`{"command":"tag","masked":["a"}`,  // a list not closed
		`{"extension":"1","call_id":"c"}`,  // members out of the struct's order
		`{"call_id":"c","ani":"+1312","dnis":"8001","acd":true}`,
		// in it but for a byte or two,
		`{"command":"tag","transport":"http"}x`,
		`{"call_id":"c","extension":"1","type":"ended","at":null,"transport":"http"}x`,
		`{"call_id":"c","extension":"1","type":"ended","at":"noon","transport":"http"}`,
		`{"call_id":"c","extension":"1","type":"ended","at":"2026-11-23T10:00:00.000Z,,"transport":"http"}`,
		`{"command":"tag" "peripheral_id":"5","transport":"http"}`,
		`{"command":"tag","params":[{"k":"a","v":"b"x],"transport":"http"}`,
		`{"command":"tag","params":[{"k":"a","v":"b"}x,"transport":"http"}`,
		"{\"command\":\"tag\",\"sender_id\":\"a\x01,\"transport\":\"http\"}",
		"{\"command\":\"tag\",\"sender_id\":\"a\x01b\",\"transport\":\"http\"}",
		"{\"command\":\"tag\",\"sender_id\":\"\xff\xfe\",\"transport\":\"http\"}",
		`{"command":"tag","sender_id":"a\","transport":"http"}`,
		// and a string near the end, where plainRun reads a byte at a time.
		`{"sender_id":"a\"}`, "{\"sender_id\":\"\x80\"}", `{"sender_id":"a"é"}`,
	} {
		f.Add([]byte(b))
	}
	in := &interner{} // shared by every input, as a State's is by every event
	f.Fuzz(func(t *testing.T, b []byte) {
		var c1, c2, c3 ledger.Command
		e1 := json.Unmarshal(b, &c1)
		e2 := decodeCommand(&ledger.Envelope{Data: b, Version: 1}, &c2, nil)
		if (e1 == nil) != (e2 == nil) || (e1 == nil && !reflect.DeepEqual(c1, c2)) {
			t.Fatalf("command %q: json %+v (%v), fast %+v (%v)", b, c1, e1, c2, e2)
		}
		if e3 := decodeCommand(&ledger.Envelope{Data: b, Version: 1}, &c3, in); (e3 == nil) != (e2 == nil) || !reflect.DeepEqual(c2, c3) {
			t.Fatalf("command %q: interned %+v (%v), fast %+v (%v)", b, c3, e3, c2, e2)
		}
		var s1, s2, s3 ledger.CallSignal
		e1 = json.Unmarshal(b, &s1)
		e2 = decodeSignal(&ledger.Envelope{Data: b, Version: 1}, &s2, nil)
		if (e1 == nil) != (e2 == nil) || (e1 == nil && !reflect.DeepEqual(s1, s2)) {
			t.Fatalf("signal %q: json %+v (%v), fast %+v (%v)", b, s1, e1, s2, e2)
		}
		if e3 := decodeSignal(&ledger.Envelope{Data: b, Version: 1}, &s3, in); (e3 == nil) != (e2 == nil) || !reflect.DeepEqual(s2, s3) {
			t.Fatalf("signal %q: interned %+v (%v), fast %+v (%v)", b, s3, e3, s2, e2)
		}
	})
}

// TestCanonTakesTheEncodersShape: what ledger.EncodeData writes for the
// commands and signals of a realistic day (and of every seed above but
// the masked one) is read by the canonical decoders, not left to the
// scanner; the struct is the one json.Unmarshal gives. Only data with an
// escape or a card-number mask may be left to the scanner.
func TestCanonTakesTheEncodersShape(t *testing.T) {
	g := newEnvGen(t)
	g.realistic(rand.New(rand.NewSource(1)), 20, 500)
	g.random(rand.New(rand.NewSource(2)), 20, 500)
	g.add(ledger.TypeCallSignal, 0, ledger.CallSignal{CallID: "c-1", Extension: "3420", Type: "ringing", Direction: "inbound",
		ANI: "+1312", DNIS: "8001", ACD: true, At: ledger.T(scriptDay), Transport: "nats", Principal: "p"})
	g.add(ledger.TypeCommand, 0, ledger.Command{Command: "metadata", SenderID: "jdoe", Extension: "3420", PeripheralID: "5001",
		Params: []ledger.Param{{Key: "account", Value: "12"}, {Key: "note", Value: "x"}}, Invalid: "invalid_input", Message: "m",
		Transport: "finesse", Method: "POST", Client: "10.0.0.1", Principal: "tok"})
	in := &interner{}
	n := 0
	for i := range g.out {
		e := &g.out[i]
		if bytes.ContainsRune(e.Data, '\\') || bytes.Contains(e.Data, []byte(`"masked"`)) {
			continue
		}
		switch e.Type {
		case ledger.TypeCallSignal:
			canonReads(t, e.Data, canonSignal, in)
			n++
		case ledger.TypeCommand:
			canonReads(t, e.Data, canonCommand, in)
			n++
		}
	}
	if n < 800 {
		t.Fatalf("only %d commands and signals", n)
	}
}

// canonReads checks that canon takes data and reads what json.Unmarshal
// reads.
func canonReads[T any](t *testing.T, data []byte, canon func([]byte, *T, *interner) bool, in *interner) {
	t.Helper()
	var got, want T
	if !canon(data, &got, in) {
		t.Fatalf("canonical decoder refused %s", data)
	}
	if err := json.Unmarshal(data, &want); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: canon %+v, json %+v (%v)", data, got, want, err)
	}
}

// FuzzInterner: whatever went into the table before, a string from it
// equals the bytes asked for, and so does each of their prefixes.
func FuzzInterner(f *testing.F) {
	for _, s := range []string{"", "a", "a\x00", "call-12345", "+13125550100", "0123456789abcdef", "0123456789abcdefg",
		"01JDB3A1C4E6G8J0K2M4N6P8Q0"} {
		f.Add([]byte(s))
	}
	in := &interner{}
	f.Fuzz(func(t *testing.T, b []byte) {
		for n := len(b); n >= 0; n-- {
			if got := in.str(b[:n]); got != string(b[:n]) {
				t.Fatalf("str(%q) = %q", b[:n], got)
			}
		}
	})
}
