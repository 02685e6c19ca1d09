package ingest

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/recledger/recledger/ledger"
)

const testTokens = `{"tokens":[
  {"name":"finesse","token":"finesse-token-0123456789","roles":["command"]},
  {"name":"ops","token":"admin-token-0123456789ab","roles":["admin"]},
  {"name":"audit","token":"audit-token-0123456789ab","roles":["auditor"]}],
 "networks":[{"name":"cad-floor","cidr":"10.1.0.0/16","roles":["command"]},
  {"cidr":"192.168.7.0/24","roles":["auditor"]},
  {"name":"quality-desks","cidr":"192.168.7.128/25","roles":["command"]},
  {"name":"ops-desk","cidr":"10.9.0.0/16","roles":["admin"]}]}`

func TestAuthorize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	if err := os.WriteFile(path, []byte(testTokens), 0o600); err != nil {
		t.Fatal(err)
	}
	tok, err := LoadTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	// A file others may write is refused (any user could add a token of
	// their own); one they may read is taken with a warning.
	if err := os.Chmod(path, 0o646); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadTokens(path); err == nil || !strings.Contains(err.Error(), "other users of this machine may write it") {
		t.Errorf("a tokens file others may write: %v", err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if t2, err := LoadTokens(path); err != nil || len(t2.warnings) != 1 {
		t.Errorf("a tokens file others may read: %v %v", err, t2)
	}
	for _, tc := range []struct {
		name, remote, header string
		role                 Role
		status               int
		principal            string
	}{
		{"token with role", "203.0.113.9:5000", "Bearer finesse-token-0123456789", RoleCommand, 200, "finesse"},
		{"token without role", "203.0.113.9:5000", "Bearer finesse-token-0123456789", RoleAdmin, 403, ""},
		{"admin reads", "203.0.113.9:5000", "Bearer admin-token-0123456789ab", RoleAuditor, 200, "ops"},
		{"auditor cannot admin", "203.0.113.9:5000", "Bearer audit-token-0123456789ab", RoleAdmin, 403, ""},
		{"wrong token", "10.1.2.3:5000", "Bearer nope", RoleCommand, 401, ""},
		{"not bearer", "10.1.2.3:5000", "Basic abc", RoleCommand, 401, ""},
		{"a token under another scheme", "203.0.113.9:5000", "Basic finesse-token-0123456789", RoleCommand, 401, ""},
		{"admin sends no commands", "203.0.113.9:5000", "Bearer admin-token-0123456789ab", RoleCommand, 403, ""},
		{"the scheme in any case", "203.0.113.9:5000", "bearer finesse-token-0123456789", RoleCommand, 200, "finesse"},
		{"spaces around the token", "203.0.113.9:5000", "Bearer  finesse-token-0123456789 ", RoleCommand, 200, "finesse"},
		{"CAD network", "10.1.2.3:5000", "", RoleCommand, 200, "net:cad-floor"},
		{"CAD network, IPv4-mapped", "[::ffff:10.1.2.3]:5000", "", RoleCommand, 200, "net:cad-floor"},
		{"CAD network lacks admin", "10.1.2.3:5000", "", RoleAdmin, 403, ""},
		{"unnamed network", "192.168.7.20:1", "", RoleAuditor, 200, "net:192.168.7.0/24"},
		{"unknown network", "172.16.0.1:5000", "", RoleCommand, 401, ""},
		// in two networks: either may grant the role, named by the first that does
		{"second network grants", "192.168.7.200:1", "", RoleCommand, 200, "net:quality-desks"},
		{"first network grants", "192.168.7.200:1", "", RoleAuditor, 200, "net:192.168.7.0/24"},
		{"address without a port", "10.1.2.3", "", RoleCommand, 200, "net:cad-floor"},
		{"admin network reads", "10.9.1.1:5000", "", RoleAuditor, 200, "net:ops-desk"},
		{"in two networks, neither grants", "192.168.7.200:1", "", RoleAdmin, 403, ""},
		// two headers (one per line here): neither counts
		{"two headers", "203.0.113.9:5000", "Bearer audit-token-0123456789ab\nBearer finesse-token-0123456789", RoleCommand, 401, ""},
		{"two headers, granted network", "10.1.2.3:5000", "Bearer finesse-token-0123456789\nBearer finesse-token-0123456789", RoleCommand, 401, ""},
		// an empty header is a header: judged alone, not by the network
		{"empty header, granted network", "10.1.2.3:5000", "(empty)", RoleCommand, 401, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.remote
			if tc.header != "" {
				for h := range strings.SplitSeq(tc.header, "\n") {
					r.Header.Add("Authorization", strings.TrimSuffix(h, "(empty)"))
				}
			}
			p, err := tok.authorize(r, tc.role)
			if got := statusOf(err); got != tc.status || p != tc.principal {
				t.Errorf("authorize = %q, %v (status %d); want %q, status %d", p, err, got, tc.principal, tc.status)
			}
		})
	}
	// A desktop that cannot send headers is told which address was judged.
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "172.16.0.1:5000"
	if _, err := tok.authorize(r, RoleCommand); err == nil || !strings.Contains(err.Error(), "the client address 172.16.0.1 is in no network the tokens file grants") {
		t.Errorf("unknown network: %v", err)
	}
	var open *Tokens
	if p, err := open.authorize(httptest.NewRequest("GET", "/", nil), RoleAdmin); p != "" || err != nil {
		t.Errorf("open API: %q, %v", p, err)
	}
}

// TestAFileWithoutNetworksTellsAHeaderlessRequestSo: a tokens file that
// grants no client network admits no request by its address. Without an
// Authorization header a request is 401, told that the file grants no
// network, not that its address is outside the file's networks (which
// would send an operator looking for a CIDR typo).
func TestAFileWithoutNetworksTellsAHeaderlessRequestSo(t *testing.T) {
	tok, err := ParseTokens([]byte(`{"tokens":[{"name":"ops","token":"admin-token-0123456789ab","roles":["admin"]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "10.1.2.3:5000"
	p, err := tok.authorize(r, RoleAuditor)
	if statusOf(err) != 401 || p != "" || !strings.Contains(err.Error(), "the tokens file grants no client network") || strings.Contains(err.Error(), "10.1.2.3") {
		t.Errorf("authorize = %q, %v (status %d); want 401, the file granting no network", p, err, statusOf(err))
	}
}

func TestParseTokensRejects(t *testing.T) {
	for name, doc := range map[string]string{
		"tokens[0].token":    `{"tokens":[{"name":"a","token":"short","roles":["command"]}]}`,
		"tokens[0].roles[0]": `{"tokens":[{"name":"a","token":"0123456789abcdef0","roles":["root"]}]}`,
		"tokens[1].token":    `{"tokens":[{"name":"a","token":"0123456789abcdef0","roles":["admin"]},{"name":"b","token":"0123456789abcdef0","roles":["admin"]}]}`,
		"networks[0].cidr":   `{"networks":[{"cidr":"10.1.0.0/33","roles":["command"]}]}`,
		"networks[0].roles":  `{"networks":[{"cidr":"10.1.0.0/16"}]}`,
		"tokens[1].name":     `{"tokens":[{"name":"a","token":"0123456789abcdef0","roles":["admin"]},{"name":"a","token":"0123456789abcdef1","roles":["admin"]}]}`,
		"tokens":             `{"tokens":[],"networks":[]}`,
		"tokens[0].role":     `{"tokens":[{"name":"a","token":"0123456789abcdef0","role":["admin"]}]}`, // misspelt: named where it is
		"token":              `{"token":[]}`,
		// a name holding a token, its own or another's (the ledger and
		// the log carry the name)
		"tokens[0].name":   `{"tokens":[{"name":"  ","token":"0123456789abcdef0","roles":["admin"]}]}`, // blank
		"tokens[0].name#":  `{"tokens":[{"name":"nameSECRET-12345678","token":"nameSECRET-12345678","roles":["admin"]}]}`,
		"tokens[1].name##": `{"tokens":[{"name":"a","token":"0123456789abcdef0","roles":["admin"]},{"name":"x0123456789ABCDEF0","token":"0123456789abcdef1","roles":["admin"]}]}`,
		// given twice: encoding/json keeps the last (a walk)
		"tokens[0].roles": `{"tokens":[{"name":"a","token":"0123456789abcdef0","roles":["admin"],"roles":["auditor"]}]}`,
		"tokens#":         `{"tokens":[{"name":"a","token":"0123456789abcdef0","roles":["admin"]}],` + "\n" + `"tokens":[{"name":"b","token":"0123456789abcdef1","roles":["command"]}]}`,
	} {
		name = strings.TrimRight(name, "#")
		_, err := ParseTokens([]byte(doc))
		var fe *ledger.FieldError
		if !errors.As(err, &fe) || fe.Field != name {
			t.Errorf("%s: got %v", name, err)
		}
	}
	// The shortest token taken, and one shorter.
	if tk, err := ParseTokens([]byte(`{"tokens":[{"name":"a","token":"0123456789abcdef","roles":["admin"]}]}`)); err != nil || len(tk.Warnings()) != 0 {
		t.Errorf("a token of 16 characters: %v %v", err, tk)
	}
	var fe *ledger.FieldError
	if _, err := ParseTokens([]byte(`{"tokens":[{"name":"a","token":"0123456789abcde","roles":["admin"]}]}`)); !errors.As(err, &fe) || fe.Field != "tokens[0].token" {
		t.Errorf("a token of 15 characters: %v, want it refused", err)
	}
	// Characters a URL splits a token at: taken, with a warning.
	for _, c := range "&=#?;" {
		tk, err := ParseTokens([]byte(`{"tokens":[{"name":"a","token":"0123456789abcdef` + string(c) + `x","roles":["admin"]}]}`))
		if err != nil || len(tk.Warnings()) != 1 || !strings.Contains(tk.Warnings()[0], "tokens[0].token") {
			t.Errorf("a token holding %q: %v, warnings %q", c, err, tk.Warnings())
		}
	}
	for _, tok := range []string{"0123456789 abcdef0", "0123456789\u00a0abcdef0", "0123456789\u200babcdef0", "0123456789\u0085abcdef0",
		"0123456789\\u0001abcdef0", "0123456789\xffabcdef0"} { // a control character, a byte that is not UTF-8
		if _, err := ParseTokens([]byte(`{"tokens":[{"name":"a","token":"` + tok + `","roles":["admin"]}]}`)); err == nil || !strings.Contains(err.Error(), "spaces") {
			t.Errorf("a token with a space %q: %v", tok, err)
		}
	}
	if _, err := ParseTokens([]byte(`{"token":[]}`)); !errors.Is(err, ledger.ErrInvalid) {
		t.Errorf("unknown field: got %v", err)
	}
	for _, cut := range []string{`{"tokens":[{"name":"a"`, ``} {
		if _, err := ParseTokens([]byte(cut)); !errors.Is(err, ledger.ErrInvalid) || !strings.Contains(err.Error(), "ends before") {
			t.Errorf("a file cut short (%q): got %v", cut, err)
		}
	}
}

func TestStatusOf(t *testing.T) {
	for err, want := range map[error]int{
		ledger.ErrClosed:                             http.StatusServiceUnavailable,
		ledger.ErrUnavailable:                        http.StatusServiceUnavailable,
		ledger.ErrNotFound:                           http.StatusNotFound,
		ledger.ErrConflict:                           http.StatusConflict,
		&ledger.FieldError{Field: "x", Message: "y"}: http.StatusBadRequest,
		errors.New("boom"):                           http.StatusInternalServerError,
		tooLarge(10):                                 http.StatusRequestEntityTooLarge,
		context.Canceled:                             http.StatusServiceUnavailable, // a stop cut the request short
		context.DeadlineExceeded:                     http.StatusServiceUnavailable,
	} {
		if got := statusOf(err); got != want {
			t.Errorf("statusOf(%v) = %d, want %d", err, got, want)
		}
	}
	for _, tc := range []struct {
		outcome, reason string
		want            int
	}{
		{ledger.OutcomeApplied, "", 200},
		{ledger.OutcomeNoEffect, "not_recording", 200},
		{ledger.OutcomeUnsupported, "gateway", 409},
		{ledger.OutcomeRejected, "unknown_user", 404},
		{ledger.OutcomeRejected, "invalid_input", 400},
	} {
		if got := statusOfResult(ledger.CommandResult{Outcome: tc.outcome, Reason: tc.reason}); got != tc.want {
			t.Errorf("statusOfResult(%s, %s) = %d, want %d", tc.outcome, tc.reason, got, tc.want)
		}
	}
}

// TestTokensFileAmbiguities: the ledger records who by name, so names
// that could be read as another principal are refused; a network written
// with host bits is refused (a typo for one address would grant 65,536);
// a network of every address is allowed, with a warning.
func TestTokensFileAmbiguities(t *testing.T) {
	for doc, want := range map[string]string{
		`{"tokens":[{"name":"net:cad","token":"0123456789abcdefgh","roles":["command"]}]}`:                                               "would read as a network",
		`{"networks":[{"name":"cad","cidr":"10.1.0.0/16","roles":["command"]},{"name":"cad","cidr":"10.2.0.0/16","roles":["command"]}]}`: "is used twice",
		`{"networks":[{"cidr":"10.1.2.3/16","roles":["command"]}]}`:                                                                      "host bits set",
	} {
		if _, err := ParseTokens([]byte(doc)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", doc, err, want)
		}
	}
	mapped, err := ParseTokens([]byte(`{"networks":[{"name":"lo","cidr":"::ffff:127.0.0.0/104","roles":["command"]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "127.0.0.1:5555"
	if who, err := mapped.authorize(r, RoleCommand); err != nil || who != "net:lo" {
		t.Fatalf("an IPv4-mapped network and an IPv4 client: %q %v", who, err)
	}
	tok, err := ParseTokens([]byte(`{"networks":[{"cidr":"0.0.0.0/0","roles":["admin"]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if w := tok.Warnings(); len(w) != 1 || !strings.Contains(w[0], "grants admin to every client address") {
		t.Fatalf("warnings %q", w)
	}
	// ::ffff:0.0.0.0/96, every IPv4 address written as IPv6, is 0.0.0.0/0:
	// it admits an IPv4 client, and is warned of.
	every4, err := ParseTokens([]byte(`{"networks":[{"name":"all","cidr":"::ffff:0.0.0.0/96","roles":["command"]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	r.RemoteAddr = "10.9.9.9:5555"
	if who, err := every4.authorize(r, RoleCommand); err != nil || who != "net:all" {
		t.Errorf("every IPv4 address written as IPv6, and an IPv4 client: %q %v", who, err)
	}
	if w := every4.Warnings(); len(w) != 1 || !strings.Contains(w[0], "grants command to every client address") {
		t.Errorf("every IPv4 address written as IPv6: warnings %q", w)
	}
}

// TestTokensFileSyntaxErrorHasItsPlace: a tokens file that does not parse
// says where, so an administrator finds the stray comma.
func TestTokensFileSyntaxErrorHasItsPlace(t *testing.T) {
	_, err := ParseTokens([]byte("{\"tokens\":[\n  {\"name\":\"a\",\"token\":\"0123456789abcdefgh\",\"roles\":[\"admin\"],}\n]}"))
	if err == nil || !strings.Contains(err.Error(), "line 2, column") {
		t.Fatalf("%v", err)
	}
}

// Refusals are logged, paced, without the token (a security walk's 300
// wrong tokens were seen only by a counter).
func TestRefusedTokensAreLogged(t *testing.T) {
	tok, err := ParseTokens([]byte(testTokens))
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	s := &Server{tokens: tok, log: slog.New(slog.NewTextHandler(&logs, nil))}
	s.authRefusedLog.Interval = time.Minute
	for range 3 {
		r := httptest.NewRequest("GET", "/v1/agents/4111111111111111", nil)
		r.Header.Set("Authorization", "Bearer wrong-token-0123456789")
		if _, err := s.authorize(r, RoleAuditor); statusOf(err) != 401 {
			t.Fatalf("a wrong token: %v", err)
		}
	}
	got := logs.String()
	if strings.Count(got, "requests refused for their token or network") != 1 || strings.Contains(got, "wrong-token") || strings.Contains(got, "4111111111111111") {
		t.Fatalf("the log of refusals:\n%s", got)
	}
}
