package ingest_test

import (
	"strings"
	"testing"
	"time"
)

// Signals dated ahead of the server's clock are counted and logged (once
// a minute): a feed whose clock runs ahead dates contacts after the
// pauses made during them, and nothing showed it.
func TestSignalsAheadAreCounted(t *testing.T) {
	s, logs := newLoggedStack(t)
	s.configure()
	at := func(d time.Duration) string { return time.Now().Add(d).UTC().Format(time.RFC3339Nano) }
	s.signal(`[{"call_id":"c-1","extension":"3420","type":"ringing","at":"` + at(10*time.Second) + `"},
		{"call_id":"c-1","extension":"3420","type":"answered","at":"` + at(12*time.Second) + `"}]`)
	s.signal(`{"call_id":"c-1","extension":"3420","type":"held"}`)                                // stamped by the server
	s.signal(`{"call_id":"c-9","extension":"3420","type":"ended","at":"` + at(-time.Hour) + `"}`) // a resend
	m := s.must(200, "GET", "/metrics", "", "")
	if !strings.Contains(m.Raw, "recledger_call_signals_ahead_total 2\n") {
		t.Errorf("signals ahead not counted 2:\n%s", m.Raw)
	}
	if l := logs.String(); strings.Count(l, "call signals dated ahead of the server's clock") != 1 || !strings.Contains(l, "events=2") {
		t.Errorf("log of signals ahead:\n%s", l)
	}
}
