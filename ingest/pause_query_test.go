package ingest_test

import (
	"strings"
	"testing"
	"time"
)

// An auditor asks for a site's day by its date: the site's midnight to
// midnight, in its time zone, as its contacts' days and manifests are.
// A query that can match nothing, or a format not served, is refused.
func TestPauseQueryDatesAreTheSites(t *testing.T) {
	// 2026-11-29 21:00 in Chicago is 2026-11-30 03:00 UTC.
	s := newStackClock(t, nil, tickClock(time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)))
	s.configure()
	s.must(200, "PUT", "/v1/config/site", "", `{"upload_time":"23:00","timezone":"America/Chicago"}`)
	s.signal(`{"call_id":"c-1","extension":"3420","type":"ringing","direction":"inbound","ani":"+13125550100"}`)
	s.outcome(s.form("pause", "sender_id=jdoe"), 200, "applied", "")
	s.outcome(s.form("resume", "sender_id=jdoe"), 200, "applied", "")

	rows := func(query string) int {
		t.Helper()
		r := s.must(200, "GET", "/v1/pauses?"+query, "", "")
		ps, _ := r.JSON["pauses"].([]any)
		return len(ps)
	}
	if n := rows("from=2026-11-29&to=2026-11-30"); n != 1 {
		t.Errorf("the site's 2026-11-29: %d pauses, want its 1", n)
	}
	if n := rows("from=2026-11-30&to=2026-12-01"); n != 0 {
		t.Errorf("the site's 2026-11-30: %d pauses, want none (the pause is on the 29th there)", n)
	}
	if n := rows("from=2026-11-30T00:00:00Z"); n != 1 {
		t.Errorf("from a time with its zone: %d pauses, want 1", n)
	}
	for query, field := range map[string]string{
		"from=2026-11-30&to=2026-11-29":  "to",
		"from=2026-11-29&to=2026-11-29":  "to", // one instant: the day is to=2026-11-30
		"from=2026-11-30T03:00:00+05:00": "from",
		"format=xml":                     "format",
	} {
		r := s.do("GET", "/v1/pauses?"+query, "", "")
		if r.Status != 400 || r.JSON["field"] != field || !strings.Contains(r.str("message"), field) {
			t.Errorf("%s: %d %s, want 400 naming %s", query, r.Status, r.Raw, field)
		}
	}
	if r := s.do("GET", "/v1/pauses?from=2026-11-29&to=2026-11-29", "", ""); !strings.Contains(r.str("message"), "for the whole day give to=2026-11-30") {
		t.Errorf("the same day as both bounds: %s, want the day's to", r.Raw)
	}
	if r := s.do("GET", "/v1/pauses?from=2026-11-30T03:00:00+05:00", "", ""); !strings.Contains(r.str("message"), "%2B") {
		t.Errorf("an offset's + unescaped: %s, want the hint", r.Raw)
	}
	// A user id that names no agent is 404, not "never paused" (an
	// auditor's walk typed JDOE for jdoe).
	for _, path := range []string{"/v1/pauses?user_id=JDOE", "/v1/pauses?user_id=JDOE&format=csv", "/v1/contacts?user_id=JDOE"} {
		r := s.do("GET", path, "", "")
		if r.Status != 404 || r.JSON["field"] != "user_id" || !strings.Contains(r.str("message"), `agent "jdoe" differs only in case`) {
			t.Errorf("%s: %d %s, want 404 naming jdoe", path, r.Status, r.Raw)
		}
	}
	if r := s.do("GET", "/v1/agents/JDOE", "", ""); r.Status != 404 || !strings.Contains(r.str("message"), `agent "jdoe" differs only in case`) {
		t.Errorf("/v1/agents/JDOE: %d %s, want 404 naming jdoe", r.Status, r.Raw)
	}
	if n := rows("user_id=jdoe"); n != 1 {
		t.Errorf("jdoe's pauses: %d, want 1", n)
	}
	// Two equal times are taken (200): they ask which pauses were in
	// force then.
	rows("from=2026-11-30T03:00:00.5Z&to=2026-11-30T03:00:00.5Z")
}

// A contact id is a ULID, read in any case; an events page of no events is
// refused; an unknown contact's error names it once.
func TestReadParams(t *testing.T) {
	s := newStack(t, nil)
	s.configure()
	s.signal(`{"call_id":"c-1","extension":"3420","type":"ringing","direction":"inbound","ani":"+13125550100"}`)
	id := s.form("tag", "sender_id=jdoe").str("contact_id")
	if c := s.must(200, "GET", "/v1/contacts/"+strings.ToLower(id), "", ""); c.str("contact_id") != id {
		t.Errorf("contact by its id in lower case: %s", c.Raw)
	}
	if r := s.do("GET", "/v1/events?limit=0", "", ""); r.Status != 400 || r.JSON["field"] != "limit" {
		t.Errorf("limit=0: %d %s", r.Status, r.Raw)
	}
	r := s.do("GET", "/v1/contacts/01ZZZZZZZZZZZZZZZZZZZZZZZZ", "", "")
	if r.Status != 404 || strings.Count(r.str("message"), "01ZZZZZZZZZZZZZZZZZZZZZZZZ") != 1 {
		t.Errorf("unknown contact: %d %s", r.Status, r.Raw)
	}
}

// An auditor proves one recording's pauses: contact_id (a ULID, in any
// case) and call_id narrow the rows as user_id does; before they were
// taken, asking for them was refused as an unknown parameter.
func TestPauseQueryByContactAndCall(t *testing.T) {
	s := newStack(t, nil)
	s.configure()
	s.signal(`{"call_id":"c-1","extension":"3420","type":"ringing","direction":"inbound","ani":"+13125550100"}`)
	r1 := s.form("pause", "sender_id=jdoe")
	s.outcome(r1, 200, "applied", "")
	c1 := r1.str("contact_id")
	s.signal(`{"call_id":"c-1","extension":"3420","type":"ended"}`)
	s.signal(`{"call_id":"c-2","extension":"3420","type":"ringing","direction":"inbound","ani":"+13125550100"}`)
	r2 := s.form("pause", "sender_id=jdoe")
	s.outcome(r2, 200, "applied", "")
	c2 := r2.str("contact_id")
	if c1 == "" || c2 == "" || c1 == c2 {
		t.Fatalf("contacts %q and %q", c1, c2)
	}
	calls := func(query string) []string {
		t.Helper()
		r := s.must(200, "GET", "/v1/pauses?"+query, "", "")
		var out []string
		ps, _ := r.JSON["pauses"].([]any)
		for _, p := range ps {
			out = append(out, p.(map[string]any)["call_id"].(string))
		}
		return out
	}
	for query, want := range map[string]string{
		"":                                      "c-1 c-2",
		"contact_id=" + strings.ToLower(c1):     "c-1",
		"contact_id=" + c2:                      "c-2",
		"call_id=c-2":                           "c-2",
		"call_id=c-2&contact_id=" + c1:          "",
		"user_id=gwuser&contact_id=" + c1:       "",
		"contact_id=01ZZZZZZZZZZZZZZZZZZZZZZZZ": "",
		"call_id=c-1&from=2026-01-01T00:00:00Z": "c-1",
	} {
		if got := strings.Join(calls(query), " "); got != want {
			t.Errorf("pauses?%s: calls %q, want %q", query, got, want)
		}
	}
	for _, bad := range []string{"garbage", c1[:25], c1 + "X"} {
		if r := s.do("GET", "/v1/pauses?contact_id="+bad, "", ""); r.Status != 400 || r.JSON["field"] != "contact_id" {
			t.Errorf("contact_id=%s: %d %s, want 400 naming it (not an empty list)", bad, r.Status, r.Raw)
		}
	}
	if r := s.do("GET", "/v1/pauses?contact_id="+c1+"&format=csv", "", ""); r.Status != 200 || strings.Count(r.Raw, "\n") != 2 {
		t.Errorf("one contact's pauses as CSV: %d %q, want a header and one row", r.Status, r.Raw)
	}
}
