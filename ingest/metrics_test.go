package ingest_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

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
	m := s.must(200, "GET", "/metrics", "", "").Raw
	for _, want := range []string{"recledger_events_appended_total 4\n", "recledger_append_batch_size_sum 4\n", "recledger_append_batch_size_count 2\n"} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q:\n%s", want, m)
		}
	}
}
