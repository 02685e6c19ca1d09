package ingest_test

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/recledger/recledger/ingest"
	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/ledger/ledgertest"
)

// TestBadInput: refused requests get the right status and body; those that
// name a known command and pass auth and size are still in the ledger.
func TestBadInput(t *testing.T) {
	s := newStack(t, nil)
	s.configure()
	events := 1
	check := func(r reply, status int, reason string, appended bool) {
		t.Helper()
		if r.Status != status || r.str("reason") != reason || (status != 200 && r.str("message") == "") {
			t.Fatalf("got %d %q, want %d %q: %s", r.Status, r.str("reason"), status, reason, r.Raw)
		}
		if r.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("content type %q", r.Header.Get("Content-Type"))
		}
		if appended {
			events++
		}
		s.verified(events)
	}

	check(s.finesse("pause", `{"sender_id":"jdoe",`), 400, "invalid_input", true)
	r := s.do("GET", "/recordingcontrols/rest/Frobnicate?sender_id=jdoe", "", "")
	check(r, 404, "unknown_command", false)
	if cmds, _ := r.JSON["commands"].([]any); len(cmds) != 15 || !strings.Contains(r.str("message"), "pauseurl") {
		t.Fatalf("unknown command body: %s", r.Raw)
	}
	for _, p := range []string{"/recordingcontrols/rest", "/recordingcontrols/rest/"} {
		check(s.do("POST", p, "application/x-www-form-urlencoded", "sender_id=jdoe"), 404, "unknown_command", false)
	}
	check(s.form("pause", "sender_id=nobody"), 404, "unknown_user", true)
	check(s.form("login", "sender_id=jdoe&peripheral_id=5001"), 400, "missing_extension", true)
	check(s.form("login", "sender_id=jdoe&peripheral_id=5001&extension=3450%20"), 400, "invalid_extension", true)
	check(s.form("login", "sender_id=jdoe&peripheral_id=5001&extension=4111111111111111"), 400, "invalid_extension", true) // a card number, masked
	r = s.finesse("tag", `{"sender_id":"jdoe","peripheral_id":"${peripheralId}"}`)
	check(r, 400, "invalid_input", true)
	if !strings.Contains(r.str("message"), "peripheral_id") {
		t.Fatalf("message does not name the parameter: %s", r.Raw)
	}
	check(s.finesse("tag", `{"sender_id":"jdoe","peripheral_id":"`+strings.Repeat("9", 17<<10)+`"}`), 413, "too_large", false)
	check(s.do("GET", "/recordingcontrols/rest/tag?sender_id=jdoe&x="+strings.Repeat("9", 17<<10), "", ""), 414, "too_large", false)
	// The limit's edge, 16 KiB (mutation testing: moving it by a byte,
	// or the comparisons by one, went unnoticed): a body or a query of
	// exactly 16,384 bytes is taken, one more byte is refused, whether
	// the body's length is declared or it comes chunked.
	pad := func(prefix string, n int) string { return prefix + strings.Repeat("9", n-len(prefix)) }
	const limit = 16 << 10
	form := "sender_id=jdoe&peripheral_id=5001&x="
	check(s.form("tag", pad(form, limit)), 200, "no_last_call", true)
	r = s.form("tag", pad(form, limit+1))
	check(r, 413, "too_large", false)
	if r.JSON["limit"] != float64(limit) { // the client is told the limit (docs/clients.md)
		t.Fatalf("413 without the limit: %s", r.Raw)
	}
	check(s.chunked("tag", pad(form, limit)), 200, "no_last_call", true)
	check(s.chunked("tag", pad(form, limit+1)), 413, "too_large", false)
	check(s.do("GET", "/recordingcontrols/rest/tag?"+pad(form, limit), "", ""), 200, "no_last_call", true)
	check(s.do("GET", "/recordingcontrols/rest/tag?"+pad(form, limit+1), "", ""), 414, "too_large", false)
	check(s.form("tag", "sender_id=jdoe&peripheral_id=9999"), 400, "wrong_peripheral", true)
	check(s.do("DELETE", "/recordingcontrols/rest/tag", "", ""), 405, "method_not_allowed", false)
	// Methods: GET and PUT work like POST.
	check(s.do("GET", "/recordingcontrols/rest/TAG?sender_id=jdoe&peripheral_id=5001", "", ""), 200, "no_last_call", true)
	check(s.do("PUT", "/recordingcontrols/rest/tag", "application/x-www-form-urlencoded", "sender_id=jdoe"), 200, "no_last_call", true)

	check(s.do("PUT", "/v1/config/teams/sales", "application/json", `{"classifiers":[{"percent":120}]}`), 400, "invalid_config", false)
	check(s.do("POST", "/v1/calls/events", "application/json", `[{"call_id":"c-1","extension":"3420","type":"ringing"},{"call_id":"c-1","extension":"3420","type":"rang"}]`), 400, "invalid_input", false)
	check(s.do("GET", "/v1/contacts?day=23-11-2026", "", ""), 400, "invalid_input", false)
	check(s.do("GET", "/v1/agents/nobody", "", ""), 404, "not_found", false)
	check(s.do("GET", "/v1/nothing", "", ""), 404, "not_found", false)
}

// TestAuth: tokens and client networks (CAD cannot send headers).
func TestAuth(t *testing.T) {
	tok, err := ingest.ParseTokens([]byte(`{"tokens":[
	  {"name":"finesse","token":"finesse-token-0123456789","roles":["command"]},
	  {"name":"ops","token":"admin-token-0123456789ab","roles":["admin"]},
	  {"name":"audit","token":"audit-token-0123456789ab","roles":["auditor"]}],
	 "networks":[{"name":"local","cidr":"127.0.0.0/8","roles":["command"]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	s := newStack(t, tok)
	s.configure()
	events := 1
	bearer := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

	// The test client is on 127.0.0.1: the network grants command, like a CAD floor.
	r := s.form("tag", "sender_id=jdoe")
	s.outcome(r, 200, "no_effect", "no_last_call")
	events++
	r = s.do("POST", "/recordingcontrols/rest/tag", "text/json", `{"sender_id":"jdoe"}`, bearer("finesse-token-0123456789")...)
	s.outcome(r, 200, "no_effect", "no_last_call")
	events++
	for _, c := range []struct {
		method, path string
		hdr          []string
		status       int
	}{
		{"POST", "/recordingcontrols/rest/tag", bearer("wrong-token"), 401},
		{"POST", "/recordingcontrols/rest/tag", bearer("audit-token-0123456789ab"), 403},
		{"GET", "/v1/config", nil, 403}, // the network has no admin role
		{"GET", "/v1/config", bearer("finesse-token-0123456789"), 403},
		{"GET", "/v1/agents/jdoe", bearer("wrong-token"), 401},
		{"PUT", "/v1/config/metadata/zip", bearer("audit-token-0123456789ab"), 403},
		{"GET", "/v1/config", bearer("admin-token-0123456789ab"), 200},
		{"GET", "/v1/agents/jdoe", bearer("audit-token-0123456789ab"), 200},
		{"GET", "/v1/agents/jdoe", bearer("admin-token-0123456789ab"), 200},
	} {
		r := s.do(c.method, c.path, "", "", c.hdr...)
		if r.Status != c.status {
			t.Errorf("%s %s %v: %d, want %d: %s", c.method, c.path, c.hdr, r.Status, c.status, r.Raw)
		}
	}
	r = s.must(200, "GET", "/v1/verify", "", "", bearer("audit-token-0123456789ab")...)
	if r.JSON["events"] != float64(events) {
		t.Fatalf("refused requests were appended: %s", r.Raw)
	}
	// The principal is recorded, of a seal asked for too.
	s.must(200, "POST", "/v1/manifests/2026-01-05/close", "", "", bearer("admin-token-0123456789ab")...)
	ev := s.must(200, "GET", "/v1/events", "", "", bearer("audit-token-0123456789ab")...)
	if !strings.Contains(ev.Raw, `"principal":"net:local"`) || !strings.Contains(ev.Raw, `"principal":"finesse"`) ||
		!strings.Contains(ev.Raw, `"day":"2026-01-05","by":"request","principal":"ops"`) {
		t.Fatalf("principals: %s", ev.Raw)
	}
}

func TestWrongMethodIsJSON(t *testing.T) {
	s := newStack(t, nil)
	r := s.do("DELETE", "/v1/config", "", "")
	if r.Status != 405 || r.str("reason") != "method_not_allowed" || r.Header.Get("Allow") != "GET, HEAD" {
		t.Fatalf("%d %v %s", r.Status, r.Header, r.Raw)
	}
	// What Allow names is served: a GET route answers HEAD.
	if r := s.do("HEAD", "/v1/config", "", ""); r.Status != 200 {
		t.Fatalf("HEAD /v1/config: %d", r.Status)
	}
	if r := s.do("OPTIONS", "/v1/contacts", "", ""); r.Status != 405 || r.Header.Get("Allow") != "GET, HEAD" {
		t.Fatalf("OPTIONS /v1/contacts: %d %v", r.Status, r.Header)
	}
	r = s.do("GET", "/v1/config/users/jdoe", "", "")
	if r.Status != 405 || r.Header.Get("Allow") != "PUT, DELETE" {
		t.Fatalf("%d %v %s", r.Status, r.Header, r.Raw)
	}
	s.must(404, "GET", "/v2/nothing", "", "")
	if r := s.do("DELETE", "/recordingcontrols/rest/tag", "", ""); r.Status != 405 || r.Header.Get("Allow") != "GET, POST, PUT" {
		t.Fatalf("DELETE of a command: %d %v %s", r.Status, r.Header, r.Raw)
	}
}

// TestTokenAsParameterIsRedacted: a desktop set up with its token in the
// URL (CAD's HTTP actions send no headers) must not put the secret into
// the ledger, where it could never be removed.
func TestTokenAsParameterIsRedacted(t *testing.T) {
	tok, err := ingest.ParseTokens([]byte(`{"tokens":[
	  {"name":"finesse","token":"finesse-token-0123456789","roles":["command"]},
	  {"name":"audit","token":"audit-token-0123456789ab","roles":["auditor"]}],
	 "networks":[{"name":"local","cidr":"127.0.0.0/8","roles":["command"]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	var logs ledgertest.Buffer
	s := newStackWith(t, nil, func(o *ingest.Options, _ *ledger.Store) {
		o.Tokens = tok
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	s.configure()
	// The second in mixed case: a copy differing in a letter's case
	// gives the token away (a security walk's was stored in clear).
	r := s.do("GET", "/recordingcontrols/rest/tag?sender_id=jdoe&token=finesse-token-0123456789&agentname=Bearer+Audit-Token-0123456789AB", "", "")
	s.outcome(r, 200, "no_effect", "no_last_call")
	ev := s.must(200, "GET", "/v1/events", "", "", "Authorization", "Bearer audit-token-0123456789ab")
	if strings.Contains(strings.ToLower(ev.Raw), "token-0123456789") {
		t.Fatalf("a token is in the ledger: %s", ev.Raw)
	}
	if !strings.Contains(ev.Raw, `"[token finesse redacted]"`) || !strings.Contains(ev.Raw, `"Bearer [token audit redacted]"`) {
		t.Fatalf("the redaction does not name the tokens: %s", ev.Raw)
	}
	// The administrator is told, by the entries' names, to rotate them.
	if out := logs.String(); !strings.Contains(out, "carried a bearer token as a parameter") || !strings.Contains(out, "tokens=finesse,audit") ||
		strings.Contains(strings.ToLower(out), "token-0123456789") {
		t.Fatalf("the log of tokens sent as parameters:\n%s", out)
	}

	// A token with characters a URL decodes, sent unencoded: '+' is read
	// as a space, '%41' as 'A'; the decoded forms are redacted too. So is
	// a token's '+' read as a space where its '%' is no escape (a client
	// that escaped the '%' alone).
	tok, err = ingest.ParseTokens([]byte(`{"tokens":[{"name":"b64","token":"Plus+Secret+1234567890","roles":["command"]},{"name":"pct","token":"Pct%41Secret1234567890","roles":["command"]},{"name":"half","token":"Half+Pct%zz1234567890","roles":["command"]},{"name":"audit","token":"audit-token-0123456789ab","roles":["auditor"]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	s = newStack(t, tok)
	s.configure()
	s.do("GET", "/recordingcontrols/rest/metadata?sender_id=jdoe&note=Plus+Secret+1234567890&other=Pct%41Secret1234567890&third=Half+Pct%25zz1234567890", "", "", "Authorization", "Bearer Plus+Secret+1234567890")
	ev = s.must(200, "GET", "/v1/events", "", "", "Authorization", "Bearer audit-token-0123456789ab")
	if strings.Contains(ev.Raw, "1234567890") || !strings.Contains(ev.Raw, "[token b64 redacted]") || !strings.Contains(ev.Raw, "[token pct redacted]") || !strings.Contains(ev.Raw, "[token half redacted]") {
		t.Fatalf("decoded forms of tokens: %s", ev.Raw)
	}
}

// A call signal holding a bearer token is refused and not stored (a
// walk's call_id and ani were kept in clear), and no refusal quotes a
// token back (a signal's type was).
func TestTokenInCallSignalIsRefused(t *testing.T) {
	tok, err := ingest.ParseTokens([]byte(`{"tokens":[
	  {"name":"feed","token":"feed-token-0123456789ab","roles":["command"]},
	  {"name":"audit","token":"audit-token-0123456789ab","roles":["auditor"]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	s := newStack(t, tok)
	s.configure()
	before := head(s)
	feed := []string{"Authorization", "Bearer feed-token-0123456789ab"}
	for body, field := range map[string]string{
		`{"call_id":"c-audit-token-0123456789ab","extension":"3420","type":"ringing"}`:                                                                   "call_id",
		`[{"call_id":"c-1","extension":"3420","type":"ringing"},{"call_id":"c-1","extension":"3420","type":"ringing","ani":"audit-token-0123456789ab"}]`: "ani",
		`{"call_id":"c-1","extension":"3420","type":"audit-token-0123456789ab"}`:                                                                         "type",
	} {
		r := s.do("POST", "/v1/calls/events", "application/json", body, feed...)
		if r.Status != 400 || r.JSON["field"] != field || strings.Contains(r.Raw, "token-0123456789") {
			t.Errorf("%s: %d %s, want 400 naming %s, no token quoted", body, r.Status, r.Raw, field)
		}
	}
	if head(s) != before {
		t.Errorf("refused signals appended: head %d → %d", before, head(s))
	}
}

// A compressed body, or one in a charset whose bytes are not ASCII, is
// refused naming what was sent (a walk's gzip body was "not UTF-8 text",
// its UTF-16 form "names no sender_id"), and recorded as any refusal.
func TestEncodedBodyIsNamed(t *testing.T) {
	s := newStack(t, nil)
	s.configure()
	before := head(s)
	// Refused, and recorded with the query's parameters: the refusal
	// names its user.
	r := s.do("POST", "/recordingcontrols/rest/tag?sender_id=jdoe", "application/json", "\x1f\x8b\x08\x00garbage", "Content-Encoding", "gzip")
	if r.Status != 400 || r.str("reason") != "invalid_input" || !strings.Contains(r.str("message"), `Content-Encoding "gzip"`) || r.str("user_id") != "jdoe" {
		t.Errorf("gzip body: %d %s", r.Status, r.Raw)
	}
	utf16 := "s\x00e\x00n\x00d\x00e\x00r\x00_\x00i\x00d\x00=\x00j\x00d\x00o\x00e\x00"
	r = s.do("POST", "/recordingcontrols/rest/tag", "application/x-www-form-urlencoded; charset=UTF-16LE", utf16)
	if r.Status != 400 || r.str("reason") != "invalid_input" || !strings.Contains(r.str("message"), `charset is "UTF-16LE"`) {
		t.Errorf("UTF-16 form: %d %s", r.Status, r.Raw)
	}
	// A charset whose bytes are ASCII's is read as before.
	s.outcome(s.do("POST", "/recordingcontrols/rest/tag", "application/x-www-form-urlencoded; charset=ISO-8859-1", "sender_id=jdoe"), 200, "no_effect", "no_last_call")
	// Content-Encoding identity is no encoding.
	s.outcome(s.do("POST", "/recordingcontrols/rest/tag", "application/x-www-form-urlencoded", "sender_id=jdoe", "Content-Encoding", "Identity"), 200, "no_effect", "no_last_call")
	if head(s) != before+4 {
		t.Errorf("head %d → %d, want the four commands recorded", before, head(s))
	}
}

// Configuration holding a bearer token is refused, not stored (it is
// kept as written, for good), and no answer quotes a token back, in any
// case (a walk's 404 of a contact id quoted one upper-cased).
func TestTokenInConfigurationIsRefused(t *testing.T) {
	tok, err := ingest.ParseTokens([]byte(`{"tokens":[
	  {"name":"ops","token":"admin-token-0123456789ab","roles":["admin","auditor"]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	s := newStack(t, tok)
	admin := []string{"Authorization", "Bearer admin-token-0123456789ab"}
	s.must(200, "PUT", "/v1/config/teams/t", "application/json", `{}`, admin...)
	before := head(s)
	for path, body := range map[string]string{
		"/v1/config/users/admin-token-0123456789ab": `{"name":"x","team":"t","recording":"desktop"}`,
		"/v1/config/users/u1":                       `{"name":"admin-token-0123456789ab","team":"t","recording":"desktop"}`,
		"/v1/config/site":                           `{"server_host":"ADMIN-TOKEN-0123456789AB"}`,
	} {
		r := s.do("PUT", path, "application/json", body, admin...)
		if r.Status != 400 || r.str("reason") != "invalid_config" || strings.Contains(strings.ToLower(r.Raw), "token-0123456789") {
			t.Errorf("PUT %s %s: %d %s", path, body, r.Status, r.Raw)
		}
	}
	if head(s) != before {
		t.Errorf("refused configuration appended: head %d → %d", before, head(s))
	}
	if r := s.do("GET", "/v1/contacts/admin-token-0123456789ab", "", "", admin...); r.Status != 404 || strings.Contains(strings.ToLower(r.Raw), "token-0123456789") {
		t.Errorf("404 of a contact id holding a token: %d %s", r.Status, r.Raw)
	}
	// A --config file holding a token is refused too, checked or applied,
	// and nothing of it is appended.
	path := filepath.Join(t.TempDir(), "config.json")
	writeFile(t, path, `{"teams":{"t":{}},"users":{"u1":{"name":"admin-token-0123456789ab","team":"t","recording":"desktop"}}}`)
	if err := ingest.CheckConfigFile(path, tok); err == nil || strings.Contains(strings.ToLower(err.Error()), "token-0123456789") {
		t.Errorf("check of a config file holding a token: %v", err)
	}
	if err := s.api.ApplyConfigFile(t.Context(), path); err == nil || strings.Contains(strings.ToLower(err.Error()), "token-0123456789") {
		t.Errorf("a config file holding a token applied: %v", err)
	}
	if head(s) != before {
		t.Errorf("a refused config file appended: head %d → %d", before, head(s))
	}
}

// TestSlowBodyIsATimeout: a body that does not arrive whole within the
// server's read timeout is answered 408, not "cannot read", and nothing
// is appended.
func TestSlowBodyIsATimeout(t *testing.T) {
	s := newStack(t, nil)
	srv := httptest.NewUnstartedServer(s.api.Handler())
	srv.Config.ReadTimeout = 300 * time.Millisecond
	srv.Start()
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("POST /v1/calls/events HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n[{")); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(b), `"reason":"timeout"`) {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	s.verified(0)
}

// Size first, auth second (API.md): an oversize command without a token
// is answered 413, before its body is read or its token looked at, one
// byte over the 16 KiB limit as well as far over it.
func TestSizeIsCheckedBeforeAuth(t *testing.T) {
	tok, err := ingest.ParseTokens([]byte(`{"tokens":[{"name":"desk","token":"command-token-0123456789","roles":["command"]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	s := newStack(t, tok)
	before := head(s)
	const prefix = "sender_id=jdoe&note="
	for _, size := range []int{16<<10 + 1, 17 << 10} {
		if r := s.do("POST", "/recordingcontrols/rest/tag", "application/x-www-form-urlencoded", prefix+strings.Repeat("x", size-len(prefix))); r.Status != 413 || r.str("reason") != "too_large" {
			t.Fatalf("an oversize command of %d bytes without a token: %d %s", size, r.Status, r.Raw)
		}
	}
	if r := s.do("POST", "/recordingcontrols/rest/tag", "application/x-www-form-urlencoded", "sender_id=jdoe"); r.Status != 401 {
		t.Fatalf("a command without a token: %d %s", r.Status, r.Raw)
	}
	if head(s) != before {
		t.Errorf("refused commands appended: head %d → %d", before, head(s))
	}
}
