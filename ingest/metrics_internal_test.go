package ingest

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// The requests counter counts the status the client got: 200 for an
// answer the handler wrote nothing of, or whose body came before a
// status; the first status when a handler writes two. A request no route
// matched is counted as unmatched.
func TestRequestsAreCountedByTheStatusSent(t *testing.T) {
	m, err := newMetrics(nil, nil, nil, func() uint64 { return 0 })
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /nothing", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc("GET /body-first", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok"))
		w.WriteHeader(http.StatusInternalServerError) // too late: the client got 200
	})
	mux.HandleFunc("GET /twice", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		w.WriteHeader(http.StatusOK) // too late: the client got 503
	})
	for _, c := range []struct {
		h           http.Handler
		path        string
		status      int
		route, code string
	}{
		{m.instrument(mux), "/nothing", 200, "GET /nothing", "200"},
		{m.instrument(mux), "/body-first", 200, "GET /body-first", "200"},
		{m.instrument(mux), "/twice", 503, "GET /twice", "503"},
		{m.instrument(http.NotFoundHandler()), "/anything", 404, "unmatched", "404"},
	} {
		rec := httptest.NewRecorder()
		c.h.ServeHTTP(rec, httptest.NewRequest("GET", c.path, nil))
		if rec.Code != c.status {
			t.Fatalf("%s: the client got %d, want %d", c.path, rec.Code, c.status)
		}
	}
	mfs, err := m.gatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "recledger_http_requests_total" {
			continue
		}
		for _, c := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range c.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			got[labels["route"]+" "+labels["code"]] = c.GetCounter().GetValue()
		}
	}
	want := map[string]float64{"GET /nothing 200": 1, "GET /body-first 200": 1, "GET /twice 503": 1, "unmatched 404": 1}
	if len(got) != len(want) {
		t.Errorf("requests counted %v, want %v", got, want)
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("requests counted %v, want %v", got, want)
			break
		}
	}
}
