package ingest_test

import (
	"encoding/json"
	"testing"
)

// TestHTTPSignalsAreStoredAsHTTP: a call signal posted to /v1/calls/events
// is stored with transport "http", so that
// an engineer tracing a call can tell the feed it came from (NATS signals
// are "nats": TestCTIOverNATS).
func TestHTTPSignalsAreStoredAsHTTP(t *testing.T) {
	s := newStack(t, nil)
	s.configure()
	before := s.must(200, "GET", "/v1/events?after_seq=0&limit=1000", "", "")
	var page struct {
		Events []struct {
			Type string `json:"type"`
			Data struct {
				CallID    string `json:"call_id"`
				Transport string `json:"transport"`
			} `json:"data"`
		} `json:"events"`
	}
	if err := json.Unmarshal([]byte(before.Raw), &page); err != nil {
		t.Fatal(err)
	}
	configured := len(page.Events)
	s.signal(`[{"call_id":"h-1","extension":"3420","type":"ringing"},{"call_id":"h-1","extension":"3420","type":"answered"}]`)
	after := s.must(200, "GET", "/v1/events?after_seq=0&limit=1000", "", "")
	page.Events = nil
	if err := json.Unmarshal([]byte(after.Raw), &page); err != nil {
		t.Fatal(err)
	}
	signals := page.Events[configured:]
	if len(signals) != 2 {
		t.Fatalf("%d events after the signals, want 2: %s", len(signals), after.Raw)
	}
	for _, e := range signals {
		if e.Type != "call_signal" || e.Data.CallID != "h-1" || e.Data.Transport != "http" {
			t.Errorf("stored signal: %+v", e)
		}
	}
	s.verified(configured + 2)
}
