package ingest_test

import (
	"fmt"
	"strings"
	"testing"
)

// TestCommandTable drives each command of RULES.md's table over HTTP and
// checks status, outcome and reason, then the state on the read API.
func TestCommandTable(t *testing.T) {
	s := newStack(t, nil)
	s.configure()
	events := 1
	n := 0
	call := func(ext, typ, at string) {
		t.Helper()
		n++
		s.signal(fmt.Sprintf(`{"call_id":"c-%d","extension":%q,"type":%q,"direction":"inbound","ani":"+13125550100","at":%q}`, n, ext, typ, at))
		events++
	}
	end := func(ext, at string) {
		t.Helper()
		s.signal(fmt.Sprintf(`{"call_id":"c-%d","extension":%q,"type":"ended","at":%q}`, n, ext, at))
		events++
	}
	cmd := func(command, body string, status int, outcome, reason string) reply {
		t.Helper()
		r := s.form(command, body)
		events++
		s.outcome(r, status, outcome, reason)
		return r
	}
	jdoe := "sender_id=jdoe&peripheral_id=5001"

	// No call yet.
	cmd("pause", jdoe, 200, "no_effect", "no_active_call")
	cmd("tag", jdoe, 200, "no_effect", "no_last_call")

	call("3420", "ringing", "2026-11-23T09:00:00Z")
	cmd("pauseurl", jdoe, 200, "applied", "")
	cmd("pause", jdoe, 200, "no_effect", "already_paused")
	p := s.must(200, "GET", "/v1/pauses?user_id=jdoe", "", "")
	if rows, _ := p.JSON["pauses"].([]any); len(rows) != 1 {
		t.Fatalf("pauses: %s", p.Raw)
	}
	cmd("resume", jdoe, 200, "applied", "")
	cmd("resume", jdoe, 200, "no_effect", "not_paused")
	cmd("recordtag", jdoe, 200, "applied", "")
	r := cmd("restart", jdoe, 200, "applied", "")
	contact := r.str("contact_id")
	cmd("stopsegment", jdoe, 200, "applied", "")
	cmd("stop", jdoe, 200, "no_effect", "not_recording")
	cmd("startsegment", jdoe, 200, "applied", "")
	cmd("delete", jdoe, 200, "applied", "")
	cmd("tag", jdoe, 200, "no_effect", "deleted")
	end("3420", "2026-11-23T09:10:00Z")

	// The pause, closed by resume, is in the PCI history, as CSV too.
	csv := s.must(200, "GET", "/v1/pauses?user_id=jdoe&format=csv", "", "")
	if !strings.HasPrefix(csv.Raw, "contact_id,call_id,user_id,extension,start,end,ended_by,seconds,") || !strings.Contains(csv.Raw, ",resume,") {
		t.Fatalf("pauses CSV: %q", csv.Raw)
	}
	if c := s.must(200, "GET", "/v1/contacts/"+contact, "", ""); c.JSON["deleted"] != false || c.JSON["disposition"] != "upload" {
		t.Fatalf("restarted contact: %s", c.Raw)
	}
	del := s.must(200, "GET", "/v1/contacts?user_id=jdoe&disposition=basic_only", "", "")
	if cs, _ := del.JSON["contacts"].([]any); len(cs) != 1 {
		t.Fatalf("deleted contacts: %s", del.Raw)
	}

	// Hot desking.
	cmd("login", "sender_id=jdoe&extension=3421&peripheral_id=5001", 200, "applied", "")
	if a := s.must(200, "GET", "/v1/agents/jdoe", "", ""); a.JSON["extension"] != "3421" || a.JSON["logged_in"] != true || a.JSON["last_call"] != nil {
		t.Fatalf("agent after login: %s", a.Raw)
	}
	call("3421", "ringing", "2026-11-23T10:00:00Z")
	cmd("logout", jdoe, 200, "applied", "")
	if a := s.must(200, "GET", "/v1/agents/jdoe", "", ""); a.JSON["logged_in"] != false {
		t.Fatalf("agent after logout: %s", a.Raw)
	}

	// config returns the user's configuration.
	r = cmd("config", jdoe, 200, "applied", "")
	cfg, _ := r.JSON["config"].(map[string]any)
	if cfg["team"] != "sales" || cfg["recording"] != "desktop" || cfg["peripheral_id"] != "5001" {
		t.Fatalf("config: %s", r.Raw)
	}

	// Gateway recording: what it does not support is 409.
	for _, c := range []string{"restart", "login", "logout", "startsegment", "stopsegment"} {
		cmd(c, "sender_id=gwuser&extension=3500", 409, "unsupported", "gateway")
	}
	s.verified(events)
}
