package ingest

import (
	"bytes"
	"reflect"
	"testing"
	"time"
)

// TestParsersDoNotRetainTheBody checks what the pooled body buffers rely
// on: once parsed, a request's parameters and signals hold copies, so
// overwriting the body (the next request reusing the buffer) changes
// nothing.
func TestParsersDoNotRetainTheBody(t *testing.T) {
	params := []struct{ ctype, body string }{
		{"application/x-www-form-urlencoded", "sender_id=agent7&extension=5007&note=hello&ref=4111+1111+1111+1111"},
		{"", "senderId=agent7&metadata=%7B%22note%22%3A%22hi%22%7D"},
		{"text/json", `{"senderId":"agent7","peripheralId":"5000","amount":12.5,"ok":true,"metadata":{"note":"h\u00e9","ref":"4111 1111 1111 1111"}}`},
		{"application/json", `{"sender_id":"agent7","note":"plain"}`},
	}
	for _, c := range params {
		body := []byte(c.body)
		got := parseParams("", c.ctype, body)
		want := parseParams("", c.ctype, []byte(c.body))
		for i := range body {
			body[i] = 'X'
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s %s: after the body was overwritten: %+v, want %+v", c.ctype, c.body, got, want)
		}
	}

	signals := `[{"call_id":"c1","extension":"5007","type":"ringing","direction":"inbound","ani":"+13125550100","at":"2026-11-23T08:00:00Z"}]`
	body := []byte(signals)
	now := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	got, err := parseSignals(body, now, "http", "p")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := parseSignals([]byte(signals), now, "http", "p")
	copy(body, bytes.Repeat([]byte("X"), len(body)))
	if !reflect.DeepEqual(got, want) {
		t.Errorf("signals after the body was overwritten: %+v, want %+v", got, want)
	}
}
