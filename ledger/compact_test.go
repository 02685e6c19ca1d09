package ledger

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// compactReference is what compactData must agree with: json.Valid, and
// json.Marshal of the RawMessage gives the same bytes.
func compactReference(data []byte) bool {
	if !json.Valid(data) {
		return false
	}
	out, err := json.Marshal(json.RawMessage(data))
	return err == nil && bytes.Equal(out, data)
}

// FuzzCompactData checks that the hand-written validator never accepts
// what the reference refuses; it may refuse only deep nesting.
func FuzzCompactData(f *testing.F) {
	for _, s := range []string{`{"call_id":"c-1","at":null,"acd":true,"n":-1.5e+3}`, `[]`, `{}`, `"a\u00e9\n"`,
		`{"a":[1,{"b":"<"}]}`, `0`, `-0.0`, `01`, `"\u2028"`, "\"\u2028\"", `{"a" :1}`, `[1,]`, `"\x"`, `1e`, `tru`,
		strings.Repeat("[", 70) + strings.Repeat("]", 70)} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, want := compactData(data), compactReference(data)
		if got && !want {
			t.Fatalf("compactData accepts %q, which json.Marshal would not write", data)
		}
		if want && !got && bytes.Count(data, []byte("["))+bytes.Count(data, []byte("{")) <= maxCompactDepth {
			t.Fatalf("compactData refuses %q", data)
		}
	})
}
