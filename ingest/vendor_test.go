package ingest_test

import (
	"strings"
	"testing"
)

// TestVendorExamples sends the vendor guide's CAD and Finesse requests, as
// the desktops send them, and follows their effect on the read API.
func TestVendorExamples(t *testing.T) {
	s := newStack(t, nil)
	s.configure()
	s.signal(`{"call_id":"c-77","extension":"3420","type":"ringing","direction":"inbound","ani":"+13125550100","dnis":"8001","acd":true,"at":"2026-11-23T14:02:11.120Z"}`)
	s.signal(`[{"call_id":"c-77","extension":"3420","type":"answered","at":"2026-11-23T14:02:15Z"}]`)

	// Finesse "QM Record Start": the call is already recorded by the workflow.
	r := s.finesse("start", `{"sender_id":"jdoe","peripheral_id":"5001"}`)
	s.outcome(r, 200, "no_effect", "already_recording")
	if r.str("command") != "startsegment" || r.str("call_id") != "c-77" || r.str("recording") != "recording" {
		t.Fatalf("start: %s", r.Raw)
	}

	// CAD metadata: the metadata fields, then sender_id and peripheral_id, in this order.
	r = s.form("metadata", "agentname=Jane+Doe&sender_id=jdoe&peripheral_id=5001")
	s.outcome(r, 200, "applied", "")
	if keys, _ := r.JSON["applied_keys"].([]any); len(keys) != 1 || keys[0] != "agentname" {
		t.Fatalf("metadata applied_keys: %s", r.Raw)
	}

	// Finesse metadata: a metadata object; an unknown key is ignored, a card number rejected.
	r = s.finesse("metadata", `{"sender_id":"jdoe","peripheral_id":"5001","metadata":{"account":"10.70","nickname":"x","callback":"4111 1111 1111 1111"}}`)
	s.outcome(r, 200, "applied", "")
	if rk, _ := r.JSON["rejected_keys"].(map[string]any); rk["callback"] != "card_number" {
		t.Fatalf("card number not rejected: %s", r.Raw)
	}
	if ik, _ := r.JSON["ignored_keys"].([]any); len(ik) != 1 || ik[0] != "nickname" {
		t.Fatalf("ignored_keys: %s", r.Raw)
	}
	contactID := r.str("contact_id")

	// CAD Stop: extension=3420, then sender_id and peripheral_id.
	r = s.form("stop", "extension=3420&sender_id=jdoe&peripheral_id=5001")
	s.outcome(r, 200, "applied", "")
	if r.str("recording") != "not_recording" {
		t.Fatalf("stop: %s", r.Raw)
	}

	// Finesse start again, without a Content-Type: a new segment, a new contact.
	r = s.do("POST", "/recordingcontrols/rest/start", "", `{"sender_id":"jdoe","peripheral_id":"5001"}`)
	s.outcome(r, 200, "applied", "")
	if r.str("recording") != "recording" || r.str("contact_id") == contactID {
		t.Fatalf("start without content type: %s", r.Raw)
	}

	// The read side: the first contact closed with its metadata, the card masked away.
	c := s.must(200, "GET", "/v1/contacts/"+contactID, "", "")
	md, _ := c.JSON["metadata"].(map[string]any)
	if md["agentname"] != "Jane Doe" || md["account"] != "10.70" || len(md) != 2 {
		t.Fatalf("contact metadata: %s", c.Raw)
	}
	if c.JSON["disposition"] != "upload" {
		t.Fatalf("contact disposition: %s", c.Raw)
	}
	a := s.must(200, "GET", "/v1/agents/jdoe", "", "")
	calls, _ := a.JSON["active_calls"].([]any)
	if len(calls) != 1 || calls[0].(map[string]any)["recording"] != "recording" {
		t.Fatalf("agent: %s", a.Raw)
	}

	// The ledger holds the command as received: masked, with its transport.
	ev := s.must(200, "GET", "/v1/events?after_seq=0&limit=10000", "", "")
	for _, want := range []string{`"transport":"finesse"`, `"transport":"cad"`, `411111******1111`, `"masked":["callback"]`} {
		if !strings.Contains(ev.Raw, want) {
			t.Errorf("events lack %s", want)
		}
	}
	if strings.Contains(ev.Raw, "4111 1111 1111 1111") || strings.Contains(ev.Raw, "4111111111111111") {
		t.Fatal("a card number reached the ledger in clear")
	}
	s.verified(8) // config, 2 signals, 5 commands
}
