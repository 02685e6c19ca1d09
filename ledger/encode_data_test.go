package ledger

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// FuzzEncodeData checks that the hand encoders of commands and call
// signals write exactly json.Marshal's bytes.
func FuzzEncodeData(f *testing.F) {
	f.Add("pauserecording", "agent-0042", "5000", "4711", "reason", "card", "", "finesse", "POST", "10.1.2.3", "", int64(1764000000123), true, 2)
	f.Add("tag", "", "", "", "", "", "1234", "cad", "", "", "p<&>", int64(0), false, 0)
	f.Add("m\u2028", "é", "\x00", "\xff", "k\"", "v\\", "x", "", "GET", "", "", int64(-1), true, 1)
	f.Fuzz(func(t *testing.T, cmd, sender, periph, ext, k, v, masked, transport, method, client, principal string, ms int64, acd bool, nparams int) {
		c := Command{Command: cmd, SenderID: sender, PeripheralID: periph, Extension: ext,
			Transport: transport, Method: method, Client: client, Principal: principal}
		for i := range nparams % 4 {
			c.Params = append(c.Params, Param{Key: k + strings.Repeat("x", i), Value: v})
		}
		if masked != "" {
			c.Masked, c.Invalid, c.Message = []string{masked, k}, k, v
		}
		s := CallSignal{CallID: cmd, Extension: ext, Type: sender, Direction: periph, ANI: k, DNIS: v,
			ACD: acd, Transport: transport, Principal: principal}
		if ms != 0 {
			s.At = T(time.UnixMilli(ms % 1e14))
		}
		for _, d := range []any{c, &c, s, &s} {
			want, err := json.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			got, err := EncodeData(d)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("EncodeData(%T)\n got %s\nwant %s", d, got, want)
			}
		}
	})
}

// The hand encoders write json.Marshal's bytes where the fuzzer's seeds do
// not look: one masked key; a text whose only character json.Marshal
// escapes is one HTML character or a control character; a time built in
// another zone; a nil command or call signal.
func TestEncodeDataMatchesMarshalAtTheEdges(t *testing.T) {
	at := Time{time.Date(2026, 11, 23, 15, 2, 11, 120e6, time.FixedZone("x", 3600))}
	var cases []any
	for _, s := range []string{"a<b", "a>b", "a&b", "a\x1fb", "a\x7fb", "a;b", "a b=c"} {
		cases = append(cases,
			Command{Command: "metadata", Params: []Param{{Key: "k", Value: s}}, Masked: []string{"k"}, Transport: TransportCAD},
			&CallSignal{CallID: s, Extension: "3420", Type: SignalRinging, At: at, Transport: TransportHTTP})
	}
	cases = append(cases, (*Command)(nil), (*CallSignal)(nil))
	for _, d := range cases {
		want, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := EncodeData(d); err != nil || !bytes.Equal(got, want) {
			t.Errorf("EncodeData(%#v)\n got %s %v\nwant %s", d, got, err, want)
		}
	}
}
