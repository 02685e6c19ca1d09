package ingest

import (
	"slices"
	"testing"
)

// FuzzQuickJSONObject checks that whenever the quick reader takes a body,
// it reads exactly what the json.Decoder path reads.
func FuzzQuickJSONObject(f *testing.F) {
	for _, s := range []string{
		`{}`, ` {"a":"b"} `, `{"senderId":"x","n":-1.5e3,"t":true,"f":false,"z":null}`,
		`{"metadata":{"k":"v","n":1}}`, `{"Metadata":{}}`, `{"metadata":"{\"a\":1}"}`,
		`{"a":"\u00e9\n\"q\"","\u0041":"x"}`, "{\"bad\":\"\xff\xfe\"}", `{"a":{"b":1}}`,
		`{"metadata":{"a":[1]}}`, `{"a":"b",}`, `{"a":"b"} x`, `[1]`, `{"a":1,"a":2}`,
		`{"metadata":{"a":"1"},"metadata":{"b":"2"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		qm, qmd, ok := quickJSONObject(b)
		if !ok {
			return
		}
		dm, dmd, err := decodeJSONObject(b)
		if err != nil {
			t.Fatalf("%q: quick read %v %v, the decoder failed: %v", b, qm, qmd, err)
		}
		if !slices.Equal(qm, dm) || !slices.Equal(qmd, dmd) || (qmd == nil) != (dmd == nil) {
			t.Fatalf("%q: quick read %q %q, the decoder %q %q", b, qm, qmd, dm, dmd)
		}
	})
}
