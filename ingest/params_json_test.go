package ingest

import (
	"reflect"
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

// FuzzQuickSignals checks that whenever the quick reader takes a
// call-signal body, it reads exactly what the strict Decoder path reads.
func FuzzQuickSignals(f *testing.F) {
	for _, s := range []string{
		`{"call_id":"c-1","extension":"3420","type":"ringing","at":"2026-11-23T14:02:11.120Z"}`,
		`[{"call_id":"c-1","extension":"3420","type":"ended","direction":"inbound","acd":true,"ani":"+1","dnis":"2"},{"call_id":"c\u002d2","at":null}]`,
		`[]`, `[null]`, `{"CALL_ID":"x"}`, `{"acd":null}`, `{"call_id":1}`, `{"x":"y"}`, "{\"ani\":\"\xff\"}",
		`{"at":"a","at":null}`, `{"call_id":"a"} x`, `"s"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		q, ok := quickSignals(b)
		if !ok {
			return
		}
		d, err := decodeSignals(b)
		if err != nil {
			t.Fatalf("%q: quick read %+v, the decoder failed: %v", b, q, err)
		}
		if !reflect.DeepEqual(q, d) {
			t.Fatalf("%q: quick read %+v, the decoder %+v", b, q, d)
		}
	})
}

// TestQuickPathsTakeUsualBodies makes sure the bodies desktops and CTI
// feeds usually send do take the quick paths.
func TestQuickPathsTakeUsualBodies(t *testing.T) {
	for _, b := range []string{
		`{"senderId":"agent7","peripheralId":"5000","metadata":{"Account":"12345","Amount":12.5}}`,
		`{"sender_id":"agent7","extension":"5007"}`,
	} {
		if _, _, ok := quickJSONObject([]byte(b)); !ok {
			t.Errorf("command body %s not read by the quick path", b)
		}
	}
	for _, b := range []string{
		`{"call_id":"c-1","extension":"3420","type":"ringing","direction":"inbound","ani":"+13125550100","acd":true,"at":"2026-11-23T08:00:00Z"}`,
		`[{"call_id":"c-1","extension":"3420","type":"ringing"},{"call_id":"c-1","extension":"3420","type":"answered"}]`,
	} {
		if _, ok := quickSignals([]byte(b)); !ok {
			t.Errorf("signal body %s not read by the quick path", b)
		}
	}
}

// BenchmarkReadSignals compares the two readers of a two-signal batch.
func BenchmarkReadSignals(b *testing.B) {
	body := []byte(`[{"call_id":"c-1","extension":"3420","type":"ringing","direction":"inbound","ani":"+13125550100","acd":true,"at":"2026-11-23T08:00:00Z"},{"call_id":"c-1","extension":"3420","type":"answered","at":"2026-11-23T08:00:04Z"}]`)
	b.Run("quick", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := quickSignals(body); !ok {
				b.Fatal("not quick")
			}
		}
	})
	b.Run("decoder", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeSignals(body); err != nil {
				b.Fatal(err)
			}
		}
	})
}
