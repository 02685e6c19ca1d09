package ingest_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

// TestCardNumbersTypedAnyWayAreMasked sends card numbers as an agent may
// paste them: separated by tabs or no-break spaces, in full-width
// digits, or run together with the expiry date. Each is rejected as a card number, and none reaches the ledger
// in clear.
func TestCardNumbersTypedAnyWayAreMasked(t *testing.T) {
	s := newStack(t, nil)
	s.configure()
	s.signal(`{"call_id":"c-1","extension":"3420","type":"ringing","direction":"inbound","ani":"+13125550100"}`)
	clear := []string{"4111\t1111\t1111\t1111", "4111\u00a01111\u00a01111\u00a01111", "\uff14111111111111111",
		"41111111111111111225"} // the card's expiry after it, with nothing between
	for _, v := range clear {
		r := s.form("metadata", "sender_id=jdoe&agentname="+url.QueryEscape(v))
		s.outcome(r, 400, "rejected", "invalid_metadata")
		if rk, _ := r.JSON["rejected_keys"].(map[string]any); rk["agentname"] != "card_number" {
			t.Errorf("metadata %q: not rejected as a card number: %s", v, r.Raw)
		}
	}
	ev := s.must(200, "GET", "/v1/events?after_seq=0&limit=100", "", "")
	for _, v := range clear {
		enc, _ := json.Marshal(v) // as the events' data holds it
		if strings.Contains(ev.Raw, v) || strings.Contains(ev.Raw, string(enc[1:len(enc)-1])) {
			t.Errorf("the ledger holds %q in clear", v)
		}
	}
	// The card and its expiry run together: every digit starred.
	if got := strings.Count(ev.Raw, "411111*") + strings.Count(ev.Raw, strings.Repeat("*", 20)); got != len(clear) {
		t.Errorf("%d masked values in the ledger, want %d", got, len(clear))
	}

	// What is typed beside a card number (its expiry, its code) is
	// masked with it; a value without one keeps its digits.
	s.form("metadata", "sender_id=jdoe&agentname="+url.QueryEscape("4111 1111 1111 1111 exp 12/27 cvv 123")+"&note="+url.QueryEscape("ok 12/27 cvv 123"))
	ev = s.must(200, "GET", "/v1/events?after_seq=0&limit=100", "", "")
	if !strings.Contains(ev.Raw, "411111******1111 exp **/** cvv ***") || strings.Contains(ev.Raw, "1111 exp 12/27") || !strings.Contains(ev.Raw, "ok 12/27 cvv 123") {
		t.Errorf("the expiry and code beside a card number are in the ledger, or a value without one lost its digits: %s", ev.Raw)
	}
	s.verified(3 + len(clear))
}
