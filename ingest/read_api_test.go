package ingest_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/recledger/recledger/ingest"
	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/ledger/ledgertest"
)

func TestEventsPaging(t *testing.T) {
	s := newStack(t, nil)
	s.configure()
	var batch []string
	for i := range 25 {
		batch = append(batch, fmt.Sprintf(`{"call_id":"c-%d","extension":"3420","type":"ringing"}`, i))
	}
	r := s.signal("[" + strings.Join(batch, ",") + "]")
	if r.JSON["accepted"] != 25.0 || r.JSON["first_seq"] != 2.0 || r.JSON["last_seq"] != 26.0 {
		t.Fatalf("batch: %s", r.Raw)
	}
	var seqs []uint64
	after := uint64(0)
	for {
		r := s.must(200, "GET", fmt.Sprintf("/v1/events?after_seq=%d&limit=10", after), "", "")
		var page struct {
			Events []json.RawMessage `json:"events"`
			Next   uint64            `json:"next_after_seq"`
		}
		if err := json.Unmarshal([]byte(r.Raw), &page); err != nil {
			t.Fatal(err)
		}
		for _, raw := range page.Events {
			var e struct {
				Seq  uint64 `json:"seq"`
				Hash string `json:"hash"`
			}
			json.Unmarshal(raw, &e)
			seqs = append(seqs, e.Seq)
			// the bytes are the stored ones
			stored, err := s.store.Get(t.Context(), e.Seq)
			if err != nil || string(stored.Raw) != string(raw) {
				t.Fatalf("seq %d: served bytes differ from the ledger's", e.Seq)
			}
		}
		if len(page.Events) == 0 {
			if page.Next != after {
				t.Fatalf("empty page moved next_after_seq to %d", page.Next)
			}
			break
		}
		after = page.Next
	}
	if len(seqs) != 26 || seqs[0] != 1 || seqs[25] != 26 {
		t.Fatalf("seqs %v", seqs)
	}
	// A bad cursor or limit is refused with the parameter named; numbers
	// are decimal (0x1 is no seq).
	for q, field := range map[string]string{"after_seq=-1": "after_seq", "after_seq=0x1": "after_seq",
		"limit=x": "limit", "limit=0x5": "limit", "limit=0": "limit"} {
		if r := s.must(400, "GET", "/v1/events?"+q, "", ""); r.str("reason") != "invalid_input" || r.str("field") != field {
			t.Errorf("GET /v1/events?%s: %s, want invalid_input in %s", q, r.Raw, field)
		}
	}
	// At the head: an empty page that stays there; past it, a cursor of
	// another ledger, refused.
	if r := s.must(200, "GET", "/v1/events?after_seq=26", "", ""); r.Raw != "{\"events\":[],\"next_after_seq\":26}\n" {
		t.Errorf("page at the head: %s", r.Raw)
	}
	if r := s.must(400, "GET", "/v1/events?after_seq=27", "", ""); r.str("field") != "after_seq" {
		t.Errorf("page past the head: %s", r.Raw)
	}
	// The chain checked ends at the ledger's head.
	_, hash := s.store.Head()
	if r := s.must(200, "GET", "/v1/verify", "", ""); r.JSON["ok"] != true || r.JSON["events"] != 26.0 || r.str("head") != hash {
		t.Errorf("verify: %s, want ok, 26 events, head %s", r.Raw, hash)
	}
}

// A page holds 1,000 events unless asked for fewer, and at most 10,000
// whatever it is asked for.
func TestEventsPageLimits(t *testing.T) {
	s := newStack(t, nil)
	for first := 0; first < 10050; first += 1000 {
		var evs []ledger.Event
		for i := first; i < min(first+1000, 10050); i++ {
			evs = append(evs, ledger.Event{Type: ledger.TypeCallSignal,
				Data: ledger.CallSignal{CallID: fmt.Sprintf("c-%d", i), Extension: "3420", Type: "ringing", Transport: "http"}})
		}
		if _, err := s.store.Append(t.Context(), evs...); err != nil {
			t.Fatal(err)
		}
	}
	for query, want := range map[string]int{"": 1000, "?limit=20000": 10000, "?limit=10000": 10000, "?limit=3": 3} {
		var page struct {
			Events []json.RawMessage `json:"events"`
			Next   uint64            `json:"next_after_seq"`
		}
		if err := json.Unmarshal([]byte(s.must(200, "GET", "/v1/events"+query, "", "").Raw), &page); err != nil {
			t.Fatal(err)
		}
		if len(page.Events) != want || page.Next != uint64(want) {
			t.Errorf("GET /v1/events%s: %d events, next %d; want %d", query, len(page.Events), page.Next, want)
		}
	}
}

func TestAgentsList(t *testing.T) {
	s := newStack(t, nil)
	s.configure()
	ids := func(r reply) (out []string) {
		as, _ := r.JSON["agents"].([]any)
		for _, a := range as {
			m, _ := a.(map[string]any)
			out = append(out, fmt.Sprint(m["user_id"], ":", m["logged_in"]))
		}
		return out
	}
	r := s.must(200, "GET", "/v1/agents", "", "")
	if got := ids(r); !slices.Equal(got, []string{"gwuser:false", "jdoe:false"}) {
		t.Fatalf("agents: %v", got)
	}
	// Every member API.md lists, an empty list as [] (not null).
	if !strings.Contains(r.Raw, `"active_calls":[]`) {
		t.Fatalf("agents without calls: %s", r.Raw)
	}
	if r := s.must(200, "GET", "/v1/agents/jdoe", "", ""); !strings.Contains(r.Raw, `"active_calls":[]`) {
		t.Fatalf("an agent without calls: %s", r.Raw)
	}
	if r := s.form("login", "sender_id=jdoe&extension=3421&peripheral_id=5001"); r.Status != 200 {
		t.Fatalf("login: %d %s", r.Status, r.Raw)
	}
	for q, want := range map[string][]string{
		"":                 {"gwuser:false", "jdoe:true"},
		"?logged_in=true":  {"jdoe:true"},
		"?logged_in=false": {"gwuser:false"},
	} {
		if got := ids(s.must(200, "GET", "/v1/agents"+q, "", "")); !slices.Equal(got, want) {
			t.Errorf("agents%s: %v, want %v", q, got, want)
		}
	}
	if r := s.must(400, "GET", "/v1/agents?logged_in=maybe", "", ""); r.str("field") != "logged_in" {
		t.Errorf("bad filter: %s", r.Raw)
	}
	one := s.must(200, "GET", "/v1/agents/jdoe", "", "")
	all := s.must(200, "GET", "/v1/agents?logged_in=true", "", "")
	if !strings.Contains(all.Raw, strings.TrimSpace(one.Raw)) {
		t.Errorf("the list's jdoe %s is not GET /v1/agents/jdoe's %s", all.Raw, one.Raw)
	}
}

func TestManifestsAndDigest(t *testing.T) {
	s := newStack(t, nil)
	s.configure()
	s.signal(`[{"call_id":"c-1","extension":"3420","type":"ringing","direction":"inbound","ani":"+13125550100","at":"2026-11-23T09:00:00Z"},
	           {"call_id":"c-1","extension":"3420","type":"ended","at":"2026-11-23T09:05:00Z"}]`)
	s.must(404, "GET", "/v1/manifests/2026-11-23", "", "")
	s.must(400, "POST", "/v1/manifests/2026-13-01/close", "", "")
	r := s.must(200, "POST", "/v1/manifests/2026-11-23/close", "", "")
	if r.Header.Get("Content-Type") != "application/json" || r.JSON["day"] != "2026-11-23" {
		t.Fatalf("close: %s", r.Raw)
	}
	g := s.must(200, "GET", "/v1/manifests/2026-11-23", "", "")
	if g.Raw != r.Raw {
		t.Fatalf("GET manifest differs from the close answer")
	}
	again := s.must(409, "POST", "/v1/manifests/2026-11-23/close", "", "")
	if again.str("reason") != "already_sealed" {
		t.Fatalf("second close: %s", again.Raw)
	}
	s.must(409, "POST", "/v1/manifests/2026-11-20/close", "", "")
	s.verified(4)

	d := s.must(200, "GET", "/v1/digest", "", "")
	seq, digest := s.live.Digest()
	if d.JSON["seq"] != float64(seq) || d.str("digest") != digest || seq != 4 {
		t.Fatalf("digest %s, live %d %s", d.Raw, seq, digest)
	}
}

// TestCloseRefusesADayNotBegun: a day after the site's today is refused
// and appends nothing. Days are sealed in order, so a mistyped future day
// would stop every seal until it came.
func TestCloseRefusesADayNotBegun(t *testing.T) {
	// 23:30 UTC on the 23rd is already the 24th in Paris.
	s := newStackClock(t, nil, func() time.Time { return time.Date(2026, 11, 23, 23, 30, 0, 0, time.UTC) })
	s.configure()
	s.must(200, "PUT", "/v1/config/site", "application/json", `{"upload_time":"23:00","timezone":"Europe/Paris"}`)
	s.verified(2)
	r := s.must(409, "POST", "/v1/manifests/2026-11-25/close", "", "")
	if r.str("reason") != "future_day" || !strings.Contains(r.str("message"), "today is 2026-11-24 in Europe/Paris") {
		t.Fatalf("close of a day not begun: %s", r.Raw)
	}
	s.verified(2)
	s.must(200, "POST", "/v1/manifests/2026-11-24/close", "", "")
	s.verified(3)
}

// TestCloseRefusesADayBeforeItsContacts: a seal files every contact
// closed since the last one under the day it seals; a day before all of
// them (a mistyped year) is refused and appends nothing, as a day not
// begun is (a walk's 2025-12-02 took the day's calls for good).
func TestCloseRefusesADayBeforeItsContacts(t *testing.T) {
	s := newStackClock(t, nil, func() time.Time { return time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC) })
	s.configure()
	// No contact waits: an empty past day may be sealed.
	s.must(200, "POST", "/v1/manifests/2026-11-01/close", "", "")
	s.signal(`[{"call_id":"c-1","extension":"3420","type":"ringing","direction":"inbound","ani":"+13125550100","at":"2026-11-22T09:00:00Z"},
	           {"call_id":"c-1","extension":"3420","type":"ended","at":"2026-11-22T09:05:00Z"}]`)
	seq := s.live.Seq()
	r := s.must(409, "POST", "/v1/manifests/2026-11-21/close", "", "")
	if r.str("reason") != "before_contacts" || !strings.Contains(r.str("message"), "the earliest is of 2026-11-22 in UTC") {
		t.Fatalf("close of a day before every contact waiting: %s", r.Raw)
	}
	if s.live.Seq() != seq {
		t.Fatalf("the refused close appended: seq %d → %d", seq, s.live.Seq())
	}
	m := s.must(200, "POST", "/v1/manifests/2026-11-22/close", "", "")
	if !strings.Contains(m.Raw, `"call_id":"c-1"`) {
		t.Fatalf("the day of the contact: %s", m.Raw)
	}
}

// The earliest contact waiting for a seal is dated in the site's zone:
// in Auckland, a call ended at 20:00 UTC on the 22nd is of the 23rd, and
// a close of the 22nd would misfile it. A seal asked for is logged at
// info, as the scheduler's are, with who asked; a manifest read names a
// day not sealed yet, and refuses a day that is no day.
func TestCloseDatesContactsInTheSitesZone(t *testing.T) {
	logs := new(ledgertest.Buffer)
	s := newStackWith(t, func() time.Time { return time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC) }, func(o *ingest.Options, _ *ledger.Store) {
		o.Logger = slog.New(slog.NewTextHandler(logs, nil))
	})
	s.configure()
	s.must(200, "PUT", "/v1/config/site", "", `{"timezone":"Pacific/Auckland","upload_time":"23:00"}`)
	s.signal(`[{"call_id":"c-1","extension":"3420","type":"ringing","direction":"inbound","ani":"+13125550100","at":"2026-11-22T19:00:00Z"},
	           {"call_id":"c-1","extension":"3420","type":"ended","at":"2026-11-22T20:00:00Z"}]`)
	r := s.must(409, "POST", "/v1/manifests/2026-11-22/close", "", "")
	if r.str("reason") != "before_contacts" || !strings.Contains(r.str("message"), "the earliest is of 2026-11-23 in Pacific/Auckland") {
		t.Fatalf("close of the contact's UTC day: %s", r.Raw)
	}
	if r := s.must(404, "GET", "/v1/manifests/2026-11-23", "", ""); r.str("reason") != "not_found" || r.str("message") != "day 2026-11-23 is not sealed" {
		t.Errorf("manifest of a day not sealed: %s", r.Raw)
	}
	if r := s.must(400, "GET", "/v1/manifests/2026-11-31", "", ""); r.str("field") != "day" {
		t.Errorf("manifest of no day: %s", r.Raw)
	}
	m := s.must(200, "POST", "/v1/manifests/2026-11-23/close", "", "")
	if !strings.Contains(m.Raw, `"call_id":"c-1"`) {
		t.Fatalf("the day of the contact: %s", m.Raw)
	}
	if l := logs.String(); !strings.Contains(l, `level=INFO msg="day sealed" day=2026-11-23 by=request`) {
		t.Errorf("the seal asked for is not logged at info:\n%s", l)
	}
}

func TestHealthAndMetrics(t *testing.T) {
	s := newStack(t, nil)
	s.configure()
	s.form("tag", "sender_id=jdoe")
	s.must(200, "GET", "/healthz", "", "")
	r := s.must(200, "GET", "/readyz", "", "")
	if r.JSON["ready"] != true || r.JSON["head_seq"] != 2.0 || r.JSON["outbox_lag"] != 0.0 {
		t.Fatalf("readyz: %s", r.Raw)
	}
	m := s.must(200, "GET", "/metrics", "", "")
	for _, want := range []string{
		`recledger_commands_total{command="tag",outcome="no_effect"} 1`,
		`recledger_http_requests_total{code="200",route="/recordingcontrols/rest/{command}"} 1`,
		`recledger_events_appended_total 2`,
		`recledger_append_batch_size_count 2`,
		`recledger_append_seconds_count{source="command"} 1`,
		`recledger_ledger_head_seq 2`,
	} {
		if !strings.Contains(m.Raw, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// Every disposition and format an auditor may ask for is taken.
	for _, path := range []string{"/v1/contacts?disposition=discard", "/v1/contacts?disposition=upload",
		"/v1/contacts?disposition=basic_only", "/v1/pauses?format=json", "/v1/pauses?format=csv"} {
		s.must(200, "GET", path, "", "")
	}
	if r := s.must(400, "GET", "/v1/contacts?disposition=archived", "", ""); r.str("reason") != "invalid_input" || r.str("field") != "disposition" {
		t.Fatalf("an unknown disposition: %s", r.Raw)
	}
	// A batch of call signals that is no JSON is refused (a 4xx), counted
	// by its result.
	if r := s.do("POST", "/v1/calls/events", "application/json", "{"); r.Status != 400 {
		t.Fatalf("a batch that is no JSON: %d %s", r.Status, r.Raw)
	}
	// A stopping server is not ready: a load balancer sends new work
	// elsewhere while it drains.
	s.api.Stopping()
	if r := s.must(503, "GET", "/readyz", "", ""); r.JSON["ready"] != false || r.JSON["stopping"] != true || !strings.Contains(r.str("problem"), "stopping") {
		t.Fatalf("readyz while stopping: %s", r.Raw)
	}
	// A closed ledger: writes are refused with 503, readiness fails.
	s.store.Close()
	w := s.form("tag", "sender_id=jdoe")
	if w.Status != 503 || w.str("reason") != "unavailable" {
		t.Fatalf("append on a closed ledger: %d %s", w.Status, w.Raw)
	}
	if r := s.do("POST", "/v1/calls/events", "application/json", `[{"call_id":"c-1","extension":"3420","type":"ringing"}]`); r.Status != 503 {
		t.Fatalf("call signals on a closed ledger: %d %s", r.Status, r.Raw)
	}
	s.must(200, "GET", "/healthz", "", "")
	if r := s.must(503, "GET", "/readyz", "", ""); r.JSON["ready"] != false {
		t.Fatalf("readyz on a closed ledger: %s", r.Raw)
	}
	// The failed append is counted apart, not in the histograms (a full
	// disk made appends look faster).
	m = s.must(200, "GET", "/metrics", "", "")
	for _, want := range []string{
		`recledger_append_failures_total{source="command"} 1`,
		`recledger_append_failures_total{source="calls"} 1`,
		`recledger_call_signal_batches_total{result="refused",source="calls"} 1`,
		`recledger_call_signal_batches_total{result="failed",source="calls"} 1`,
		`recledger_append_batch_size_count 2`,
		`recledger_append_seconds_count{source="command"} 1`,
		`recledger_events_appended_total 2`,
	} {
		if !strings.Contains(m.Raw, want) {
			t.Errorf("metrics after a failed append lack %s", want)
		}
	}
}

// A read query with a parameter its endpoint does not take, or one given
// twice, is refused with the parameter named: a misspelt filter would
// otherwise be ignored and the answer look like a filtered one.
func TestReadQueriesRefuseUnknownParameters(t *testing.T) {
	s := newStack(t, nil)
	s.configure()
	for _, c := range []struct{ path, field string }{
		{"/v1/contacts?userid=jdoe", "userid"},
		{"/v1/contacts?user_id=jdoe&user_id=asmith", "user_id"},
		{"/v1/contacts?day=2026-11-23&format=csv", "format"},
		{"/v1/pauses?user=jdoe", "user"},
		{"/v1/events?after=5", "after"},
		{"/v1/agents?loggedin=true", "loggedin"},
		{"/v1/agents/jdoe?x=1", "x"},
		{"/v1/contacts/01JD000000000000000000000A?verbose=1", "verbose"},
		{"/v1/manifests/2026-11-23?format=json", "format"},
		{"/v1/verify?full=1", "full"},
		{"/v1/digest?seq=3", "seq"},
		{"/v1/config?part=site", "part"},
		// What url.Values drops silently: a ; separator, a bad escape.
		{"/v1/contacts?user_id=jdoe;", "query"},
		{"/v1/agents?logged_in=true;", "query"},
		{"/v1/events?limit=1;after_seq=5", "query"},
		{"/v1/pauses?user_id=%zz", "query"},
		// A cursor beyond the head is not from this ledger.
		{"/v1/events?after_seq=999999", "after_seq"},
	} {
		r := s.must(400, "GET", c.path, "", "")
		if r.JSON["reason"] != "invalid_input" || r.JSON["field"] != c.field || !strings.Contains(fmt.Sprint(r.JSON["message"]), c.field) {
			t.Fatalf("%s: %s", c.path, r.Raw)
		}
	}
	for _, ok := range []string{"/v1/contacts?user_id=jdoe&day=2026-11-23&disposition=upload", "/v1/pauses?user_id=jdoe&format=csv",
		"/v1/events?after_seq=0&limit=5", "/v1/agents?logged_in=true", "/v1/digest", "/v1/verify",
		// API.md's template: an empty filter is no filter.
		"/v1/contacts?user_id=&day=2026-11-23&disposition="} {
		s.must(200, "GET", ok, "", "")
	}
}

// The refusal of unknown parameters says what the endpoint takes, and of
// several unknown ones always names the same: the first in order.
func TestReadQueriesSayWhatTheyTake(t *testing.T) {
	s := newStack(t, nil)
	for path, want := range map[string]string{
		"/v1/verify?full=1":  `unknown query parameter "full": GET /v1/verify takes no query parameters`,
		"/v1/events?after=5": `unknown query parameter "after": GET /v1/events takes only after_seq, limit`,
	} {
		if r := s.must(400, "GET", path, "", ""); r.str("message") != want {
			t.Errorf("%s: %q, want %q", path, r.str("message"), want)
		}
	}
	for range 20 {
		if r := s.must(400, "GET", "/v1/events?e=1&c=1&a=1&d=1&b=1", "", ""); r.str("field") != "a" {
			t.Fatalf("several unknown parameters: %s, want a named", r.Raw)
		}
	}
}
