package ingest_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/recledger/recledger/ingest"
	"github.com/recledger/recledger/projections"
)

// recledger_http_open_connections counts the connections open, idle
// keep-alive ones included, until they close.
func TestOpenConnectionsAreCounted(t *testing.T) {
	s := newStack(t, nil)
	srv := httptest.NewUnstartedServer(s.api.Handler())
	srv.Config.ConnState = s.api.ConnState
	srv.Start()
	defer srv.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	get := func(path string) string {
		t.Helper()
		resp, err := client.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	get("/healthz")
	// The second request comes on the same connection, idle between the
	// two: it is still counted while the metrics are gathered.
	if m := get("/metrics"); !strings.Contains(m, "recledger_http_open_connections 1\n") {
		t.Fatalf("one connection open, idle between two requests:\n%s", m)
	}
	tr.CloseIdleConnections()
	deadline := time.Now().Add(30 * time.Second)
	for gauge(t, s, "recledger_http_open_connections") != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the closed connection is still counted: %v", gauge(t, s, "recledger_http_open_connections"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A second Server on the registry of the first is refused, and the error
// says why.
func TestOneServerPerRegistry(t *testing.T) {
	s := newStack(t, nil)
	live := projections.NewLive(projections.New())
	_, err := ingest.New(ingest.Options{Appender: s.store, Views: live, Events: s.store, Site: "test", Registry: s.reg})
	if err == nil || !strings.Contains(err.Error(), "one Server per registry") {
		t.Fatalf("a second Server on one registry: %v", err)
	}
}

// A batch counts each of its events, in the events appended and in the
// batch sizes.
func TestAppendedEventsAreCountedByBatch(t *testing.T) {
	s := newStack(t, nil)
	s.configure() // one event
	s.signal(`[{"call_id":"c-1","extension":"3420","type":"ringing"},{"call_id":"c-2","extension":"3420","type":"ringing"},{"call_id":"c-3","extension":"3420","type":"ringing"}]`)
	s.metricsHold(t, "recledger_events_appended_total 4\n", "recledger_append_batch_size_sum 4\n", "recledger_append_batch_size_count 2\n")
}

// recledger_append_seconds is by what asked for the append: the
// configuration (a --config file), a seal asked for over the API, a
// command, a batch of call signals; each under its own source, with the
// time it took.
func TestAppendsAreCountedBySource(t *testing.T) {
	s := newStack(t, nil)
	s.configure()
	s.must(200, "POST", "/v1/manifests/2026-11-23/close", "", "")
	s.form("tag", "sender_id=jdoe")
	s.signal(`[{"call_id":"c-1","extension":"3420","type":"ringing"}]`)
	s.metricsHold(t,
		`recledger_append_seconds_count{source="config"} 1`+"\n",
		`recledger_append_seconds_count{source="seal"} 1`+"\n",
		`recledger_append_seconds_count{source="command"} 1`+"\n",
		`recledger_append_seconds_count{source="calls"} 1`+"\n",
	)
	// What each took is recorded: a durable append takes some time.
	mfs, err := s.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "recledger_append_seconds" {
			continue
		}
		for _, h := range mf.GetMetric() {
			if h.GetHistogram().GetSampleSum() <= 0 {
				t.Errorf("recledger_append_seconds %v: sum %v, want the time the appends took", h.GetLabel(), h.GetHistogram().GetSampleSum())
			}
		}
	}
}

// One route answering two status codes counts each under its own code.
func TestRequestsAreCountedByRouteAndCode(t *testing.T) {
	s := newStack(t, nil)
	s.must(400, "GET", "/v1/contacts?disposition=archived", "", "")
	s.must(200, "GET", "/v1/contacts", "", "")
	s.must(200, "GET", "/v1/contacts", "", "")
	s.metricsHold(t,
		`recledger_http_requests_total{code="400",route="GET /v1/contacts"} 1`+"\n",
		`recledger_http_requests_total{code="200",route="GET /v1/contacts"} 2`+"\n",
	)
}

// A connection a handler takes over (hijacks) is no longer the HTTP
// server's: it leaves recledger_http_open_connections as a closed one does.
func TestHijackedConnectionsAreNotCounted(t *testing.T) {
	s := newStack(t, nil)
	s.api.ConnState(nil, http.StateNew)
	s.api.ConnState(nil, http.StateActive)
	if n := gauge(t, s, "recledger_http_open_connections"); n != 1 {
		t.Fatalf("one connection open: %v", n)
	}
	s.api.ConnState(nil, http.StateHijacked)
	if n := gauge(t, s, "recledger_http_open_connections"); n != 0 {
		t.Errorf("a hijacked connection is still counted: %v", n)
	}
}

// recledger_commands_total counts each outcome of one command apart.
func TestCommandsAreCountedByOutcome(t *testing.T) {
	s := newStack(t, nil)
	s.configure()
	s.form("tag", "sender_id=jdoe")   // no call: nothing to tag
	s.form("tag", "sender_id=nobody") // no such user
	s.form("tag", "sender_id=jdoe")
	s.metricsHold(t,
		`recledger_commands_total{command="tag",outcome="no_effect"} 2`+"\n",
		`recledger_commands_total{command="tag",outcome="rejected"} 1`+"\n",
	)
}

// recledger_call_signals_ignored_total counts each reason apart: a late
// signal of an ended call, a signal of no call.
func TestIgnoredSignalsAreCountedByReason(t *testing.T) {
	s := newStack(t, nil)
	s.configure()
	s.signal(`[{"call_id":"c-1","extension":"3420","type":"ringing","at":"2026-11-23T09:00:00Z"},
	           {"call_id":"c-1","extension":"3420","type":"ended","at":"2026-11-23T09:05:00Z"}]`)
	s.signal(`[{"call_id":"c-1","extension":"3420","type":"ringing","at":"2026-11-23T09:01:00Z"}]`)
	s.signal(`[{"call_id":"zz","extension":"3420","type":"held"}]`)
	s.signal(`[{"call_id":"zz","extension":"3420","type":"held"}]`)
	s.metricsHold(t,
		`recledger_call_signals_ignored_total{reason="late"} 1`+"\n",
		`recledger_call_signals_ignored_total{reason="unknown_call"} 2`+"\n",
	)
}

// A registry that holds another metric of one of the server's names is
// refused: the server's metric would not be served.
func TestNewRefusesARegistryHoldingOneOfItsNames(t *testing.T) {
	s := newStack(t, nil)
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "recledger_ledger_head_seq", Help: "another meaning"}))
	live := projections.NewLive(projections.New())
	_, err := ingest.New(ingest.Options{Appender: s.store, Views: live, Events: s.store, Site: "test", Registry: reg})
	if err == nil || !strings.Contains(err.Error(), "recledger_ledger_head_seq") {
		t.Fatalf("a registry holding another recledger_ledger_head_seq: %v", err)
	}
}

// metricsHold checks that s's /metrics holds each of lines.
func (s *stack) metricsHold(t *testing.T, lines ...string) {
	t.Helper()
	m := s.must(200, "GET", "/metrics", "", "").Raw
	for _, want := range lines {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q:\n%s", want, m)
		}
	}
}
