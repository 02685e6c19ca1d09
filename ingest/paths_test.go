package ingest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// A path with doubled slashes or dot segments, as a desktop's base URL
// ending in "/" joined to "/recordingcontrols/..." gives, is served as its
// clean form, not redirected: a desktop's HTTP action may not follow a
// redirect, and its body would be HTML. A command's path typed with a
// trailing slash is the command.
func TestUncleanPathsAreServed(t *testing.T) {
	s := newStack(t, nil)
	s.configure()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for i, c := range []struct{ method, path, reason string }{
		{"POST", "//recordingcontrols/rest/tag?sender_id=jdoe", "no_last_call"},
		{"GET", "/recordingcontrols/rest//tag?sender_id=jdoe", "no_last_call"},
		{"GET", "/recordingcontrols/./rest/tag?sender_id=jdoe", "no_last_call"},
		{"GET", "/recordingcontrols/rest/TAG/?sender_id=jdoe", "no_last_call"},
		{"GET", "/recordingcontrols/rest/tag//?sender_id=jdoe", "no_last_call"},
		{"GET", "//v1/agents/jdoe", ""},
		{"GET", "/recordingcontrols/rest//", "unknown_command"},
		{"GET", "/recordingcontrols/rest/tag/x/?sender_id=jdoe", "unknown_command"},
	} {
		req, err := http.NewRequest(c.method, s.srv.URL+c.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var body map[string]any
		if err := json.Unmarshal(b, &body); err != nil || (c.reason != "" && body["reason"] != c.reason) ||
			(c.reason == "" && resp.StatusCode != http.StatusOK) {
			t.Errorf("%s %s: %d %s", c.method, c.path, resp.StatusCode, strings.TrimSpace(string(b)))
		}
		if i < 5 {
			s.verified(2 + i) // the command was appended once
		}
	}
	// Each command, however its path was typed, is counted under the
	// commands' route; the catch-all counts what names no command.
	m := s.must(200, "GET", "/metrics", "", "")
	for _, want := range []string{
		`recledger_http_requests_total{code="200",route="/recordingcontrols/rest/{command}"} 5`,
		`recledger_http_requests_total{code="404",route="/recordingcontrols/rest/"} 2`,
	} {
		if !strings.Contains(m.Raw, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
