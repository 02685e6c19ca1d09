package ingest_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/recledger/recledger/ingest"
	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/ledger/ledgertest"
	"github.com/recledger/recledger/projections"
)

var _ ingest.Views = (*projections.Live)(nil)
var _ ingest.Events = (*ledger.Store)(nil)
var _ ingest.Appender = (*ledger.Store)(nil)

// stack is the real thing: a bbolt store, the live projections fed by its
// commit hook, the API and an HTTP server in front of it.
type stack struct {
	t     testing.TB
	store *ledger.Store
	live  *projections.Live
	api   *ingest.Server
	srv   *httptest.Server
	reg   *prometheus.Registry
}

func newStack(t testing.TB, tokens *ingest.Tokens) *stack {
	t.Helper()
	return newStackClock(t, tokens, nil)
}

// tickClock is a clock that starts at start and moves one second per reading.
func tickClock(start time.Time) func() time.Time {
	var n atomic.Int64
	return func() time.Time { return start.Add(time.Duration(n.Add(1)) * time.Second) }
}

// newStackClock is newStack with the ledger's clock (nil = wall clock).
func newStackClock(t testing.TB, tokens *ingest.Tokens, now func() time.Time) *stack {
	t.Helper()
	return newStackWith(t, now, func(o *ingest.Options, _ *ledger.Store) { o.Tokens = tokens })
}

// newStackWith is newStackClock whose API options edit changes (the store
// given, for parts made on it) before the API is made.
func newStackWith(t testing.TB, now func() time.Time, edit func(*ingest.Options, *ledger.Store)) *stack {
	t.Helper()
	return newStackAt(t, filepath.Join(t.TempDir(), "ledger.db"), now, edit)
}

// newStackAt is newStackWith on the ledger file at path, made there when
// there is none; its live projections start empty.
func newStackAt(t testing.TB, path string, now func() time.Time, edit func(*ingest.Options, *ledger.Store)) *stack {
	t.Helper()
	store, err := ledger.Open(path, ledger.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	live := projections.NewLive(projections.New())
	store.Subscribe(live.OnCommit)
	reg := prometheus.NewRegistry()
	opts := ingest.Options{Appender: store, Views: live, Events: store, Site: "test", Registry: reg, Now: now}
	edit(&opts, store)
	api, err := ingest.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(func() {
		srv.Close()
		store.Close()
	})
	return &stack{t: t, store: store, live: live, api: api, srv: srv, reg: reg}
}

// reply is an HTTP answer with its JSON body decoded.
type reply struct {
	Status int
	Header http.Header
	Raw    string
	JSON   map[string]any
}

// str is a top-level string member of the body ("" when absent).
func (r reply) str(k string) string { s, _ := r.JSON[k].(string); return s }

// do sends a request; hdr holds header pairs.
// noRedirects is a client that does not follow redirects, as a desktop's
// HTTP action may not: a redirect is an answer of its own in these tests.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// chunked posts a form body to command cmd without its length, as a
// client streaming it sends it.
func (s *stack) chunked(cmd, body string) reply {
	s.t.Helper()
	req, err := http.NewRequest("POST", s.srv.URL+"/recordingcontrols/rest/"+cmd, io.MultiReader(strings.NewReader(body)))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if req.ContentLength != 0 {
		s.t.Fatal("the body would be sent with its length")
	}
	return s.send(req)
}

func (s *stack) do(method, path, ctype, body string, hdr ...string) reply {
	s.t.Helper()
	req, err := http.NewRequest(method, s.srv.URL+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return s.send(req)
}

// send sends req and reads its answer.
func (s *stack) send(req *http.Request) reply {
	s.t.Helper()
	resp, err := noRedirects.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := reply{Status: resp.StatusCode, Header: resp.Header, Raw: string(b)}
	_ = json.Unmarshal(b, &r.JSON)
	return r
}

// must sends a request and fails unless it gets status.
func (s *stack) must(status int, method, path, ctype, body string, hdr ...string) reply {
	s.t.Helper()
	r := s.do(method, path, ctype, body, hdr...)
	if r.Status != status {
		s.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.Status, status, r.Raw)
	}
	return r
}

// form posts a CAD-style form command.
func (s *stack) form(command, body string) reply {
	s.t.Helper()
	return s.do("POST", "/recordingcontrols/rest/"+command, "application/x-www-form-urlencoded", body)
}

// finesse posts a Finesse-style JSON command.
func (s *stack) finesse(command, body string) reply {
	s.t.Helper()
	return s.do("POST", "/recordingcontrols/rest/"+command, "text/json", body)
}

// signal posts call signals.
func (s *stack) signal(body string) reply {
	s.t.Helper()
	return s.must(200, "POST", "/v1/calls/events", "application/json", body)
}

// outcome checks a command answer.
func (s *stack) outcome(r reply, status int, outcome, reason string) {
	s.t.Helper()
	if r.Status != status || r.str("outcome") != outcome || r.str("reason") != reason {
		s.t.Fatalf("got %d %s/%s, want %d %s/%s: %s", r.Status, r.str("outcome"), r.str("reason"), status, outcome, reason, r.Raw)
	}
}

// verified checks the chain through the API and the number of events.
func (s *stack) verified(events int) {
	s.t.Helper()
	r := s.must(200, "GET", "/v1/verify", "", "")
	if r.JSON["ok"] != true || r.JSON["events"] != float64(events) {
		s.t.Fatalf("verify: %s, want ok with %d events", r.Raw, events)
	}
}

// siteConfig is the configuration of the vendor examples.
const siteConfig = `{"site":{"upload_time":"23:00","timezone":"UTC","max_pause_seconds":0,"server_host":"qm-base-1"},
 "metadata":{"account":{"type":"number"},"agentname":{"type":"text"},"callback":{"type":"date"}},
 "teams":{"sales":{"archive":false,"inclusion":[],"exclusion":["+1800555*"],
   "classifiers":[{"direction":"inbound","number_pattern":"*","percent":100}],
   "retention_days":90,"tagged_retention_days":365},
  "gw":{"archive":true,"retention_days":30,"tagged_retention_days":30}},
 "users":{"jdoe":{"name":"Jane Doe","team":"sales","recording":"desktop","extension":"3420","peripheral_id":"5001"},
  "gwuser":{"name":"Gate Way","team":"gw","recording":"gateway","extension":"3500"}}}`

// newLoggedStack is a stack whose server logs, as text, to the buffer
// returned.
func newLoggedStack(t *testing.T) (*stack, *ledgertest.Buffer) {
	t.Helper()
	logs := new(ledgertest.Buffer)
	s := newStackWith(t, nil, func(o *ingest.Options, _ *ledger.Store) {
		o.Logger = slog.New(slog.NewTextHandler(logs, nil))
	})
	return s, logs
}

// configure applies siteConfig as a --config file (one event).
func (s *stack) configure() {
	s.t.Helper()
	path := filepath.Join(s.t.TempDir(), "config.json")
	writeFile(s.t, path, siteConfig)
	if err := s.api.ApplyConfigFile(s.t.Context(), path); err != nil {
		s.t.Fatal(err)
	}
}

func writeFile(t testing.TB, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// waitLogged waits until the server's log holds text: what the server
// logs can come after the answer a test reads.
func waitLogged(t *testing.T, logs *ledgertest.Buffer, text string) {
	t.Helper()
	if !ledgertest.Waited(func() bool { return strings.Contains(logs.String(), text) }) {
		t.Fatalf("no %q logged in %v:\n%s", text, ledgertest.WaitGuard, logs.String())
	}
}
