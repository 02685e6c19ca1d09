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
