package ingest

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/recledger/recledger/ledger"
)

// Role is what a token or a client network may do (API.md §7).
type Role string

// The roles.
const (
	RoleCommand Role = "command" // Recording Controls and call signals (§2, §3)
	RoleAdmin   Role = "admin"   // configuration and manifest close (§4); may also read
	RoleAuditor Role = "auditor" // the read side (§5)
	// RoleUpload: upload workers, on the embedded NATS server only (the
	// manifests stream's consumers); no HTTP endpoint. An addition to
	// API.md §7 (docs/clients.md).
	RoleUpload Role = "upload"
)

// Tokens maps bearer tokens and client networks to roles. Load it with
// LoadTokens; a nil *Tokens means the API is open.
type Tokens struct {
	tokens   []tokenEntry
	networks []networkEntry
	warnings []string
}

// Warnings are what the file allows that is likely a mistake: a network
// of every address granted a role, a file other users may read.
func (t *Tokens) Warnings() []string { return t.warnings }

type tokenEntry struct {
	name  string
	token []byte
	roles map[Role]bool
	forms []string // the token, and how a URL's decoding turns it when sent unencoded, lower-cased (redactTokens)
}

// tokenForms are the token and what a query string or form decodes it to
// when it was put in a URL as written ('+' read as a space, '%XX' read as
// a byte), in ASCII lower case: redact finds each in any letter case.
func tokenForms(tok string) []string {
	var forms []string
	add := func(f string) {
		if f = asciiLower(f); f != "" && !slices.Contains(forms, f) {
			forms = append(forms, f)
		}
	}
	add(tok)
	add(strings.ReplaceAll(tok, "+", " "))
	if u, err := url.QueryUnescape(tok); err == nil {
		add(u)
	}
	return forms
}

type networkEntry struct {
	name   string
	prefix netip.Prefix
	roles  map[Role]bool
}

// tokensFile is the JSON of --tokens FILE (docs/clients.md).
type tokensFile struct {
	Tokens []struct {
		Name  string `json:"name"`
		Token string `json:"token"`
		Roles []Role `json:"roles"`
	} `json:"tokens"`
	Networks []struct {
		Name  string `json:"name"`
		CIDR  string `json:"cidr"`
		Roles []Role `json:"roles"`
	} `json:"networks"`
}

// netPrincipalPrefix starts the principal recorded for a client network.
const netPrincipalPrefix = "net:"

// minTokenLen keeps guessable tokens out of the file.
const minTokenLen = 16

// LoadTokens reads and checks a tokens file:
//
//	{"tokens":[{"name":"finesse","token":"…","roles":["command"]}],
//	 "networks":[{"name":"cad-floor","cidr":"10.1.0.0/16","roles":["command"]}]}
func LoadTokens(path string) (*Tokens, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}
	t, err := ParseTokens(b)
	if err != nil {
		return nil, fmt.Errorf("tokens %s: %w", path, err)
	}
	fi, err := os.Stat(path)
	switch {
	case err != nil:
	case fi.Mode().Perm()&0o022 != 0:
		// Any user of the machine could add an admin token of their own
		// for the next start (a security walk: the start only warned).
		return nil, fmt.Errorf("tokens %s: %w: other users of this machine may write it (mode %s), and could add a token of their own: chmod 600 it", path, ledger.ErrInvalid, fi.Mode().Perm())
	case fi.Mode().Perm()&0o044 != 0:
		t.warnings = append(t.warnings, fmt.Sprintf("tokens %s may be read by other users of this machine (mode %s): one could read the tokens; chmod 600 it", path, fi.Mode().Perm()))
	}
	return t, nil
}

// ParseTokens checks and loads the JSON of a tokens file.
func ParseTokens(b []byte) (*Tokens, error) {
	var f tokensFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			line, col := lineCol(b, se.Offset)
			return nil, fmt.Errorf("%w: line %d, column %d: %v", ledger.ErrInvalid, line, col, err)
		case errors.As(err, &te):
			line, col := lineCol(b, te.Offset)
			return nil, fmt.Errorf("%w: line %d, column %d: %v", ledger.ErrInvalid, line, col, err)
		case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
			return nil, fmt.Errorf("%w: the file ends before its JSON object does (cut short, or empty)", ledger.ErrInvalid)
		}
		// An unknown member: named by its path ("tokens[0].role"), as
		// encoding/json names it alone.
		if doc, derr := decodeNumbers(b); derr == nil {
			if p, m, ok := badMember(doc, reflect.TypeOf(f)); ok {
				return nil, &ledger.FieldError{Field: p, Message: m}
			}
		}
		return nil, fmt.Errorf("%w: %v", ledger.ErrInvalid, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		// A second object, or a line of text, after the first: it was
		// ignored, grants and all (fuzzing).
		line, col := lineCol(b, dec.InputOffset())
		return nil, fmt.Errorf("%w: line %d, column %d: more after the JSON object (one object is the whole file)", ledger.ErrInvalid, line, col)
	}
	if p, ok := duplicateMember(b); ok {
		// encoding/json keeps the last: a role list given twice
		// silently took the other rights (a walk).
		return nil, &ledger.FieldError{Field: p, Message: "is given twice (the file would mean only the last)"}
	}
	if len(f.Tokens) == 0 && len(f.Networks) == 0 {
		return nil, &ledger.FieldError{Field: "tokens", Message: "the file grants no token and no network: every request would be refused (without --tokens the API is open)"}
	}
	t := &Tokens{}
	seen, names, netNames := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for i, e := range f.Tokens {
		field := fmt.Sprintf("tokens[%d]", i)
		if strings.TrimSpace(e.Name) == "" {
			return nil, &ledger.FieldError{Field: field + ".name", Message: "is required"}
		}
		if names[e.Name] {
			return nil, &ledger.FieldError{Field: field + ".name", Message: fmt.Sprintf("%q is used twice: the ledger records who by this name", e.Name)}
		}
		if strings.HasPrefix(e.Name, netPrincipalPrefix) {
			return nil, &ledger.FieldError{Field: field + ".name", Message: fmt.Sprintf("%q would read as a network in the ledger, which records a network as %s+its name", e.Name, netPrincipalPrefix)}
		}
		names[e.Name] = true
		if len(e.Token) < minTokenLen {
			return nil, &ledger.FieldError{Field: field + ".token", Message: fmt.Sprintf("must be at least %d characters", minTokenLen)}
		}
		if strings.ContainsFunc(e.Token, func(r rune) bool {
			return unicode.IsSpace(r) || unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zs) || r == utf8.RuneError
		}) {
			return nil, &ledger.FieldError{Field: field + ".token", Message: "must not hold spaces or control characters: it could not be sent in an Authorization header as written"}
		}
		if seen[e.Token] {
			return nil, &ledger.FieldError{Field: field + ".token", Message: "is used twice"}
		}
		seen[e.Token] = true
		roles, err := roleSet(field, e.Roles)
		if err != nil {
			return nil, err
		}
		t.tokens = append(t.tokens, tokenEntry{name: e.Name, token: []byte(e.Token), roles: roles, forms: tokenForms(e.Token)})
		if strings.ContainsAny(e.Token, "&=#?;") {
			// Sent unencoded in a URL (a desktop's HTTP action), such a
			// token is cut into several parameters, which no redaction
			// can recognise.
			t.warnings = append(t.warnings, fmt.Sprintf("%s.token holds one of & = # ? ;, which a URL reads as separators: a desktop that puts it in a URL unencoded would have it stored in pieces. Prefer letters, digits, - and _", field))
		}
	}
	// A name is recorded in the ledger and logged with every write: one
	// that holds a token gives it away (a security walk named an entry
	// by its own token).
	for i, e := range t.tokens {
		if t.tokenIn(e.name) != "" {
			return nil, &ledger.FieldError{Field: fmt.Sprintf("tokens[%d].name", i), Message: "holds a token of the file: the ledger records who by this name, and logs it"}
		}
	}
	for i, n := range f.Networks {
		field := fmt.Sprintf("networks[%d]", i)
		p, err := netip.ParsePrefix(strings.TrimSpace(n.CIDR))
		if err != nil {
			return nil, &ledger.FieldError{Field: field + ".cidr", Message: fmt.Sprintf("not a CIDR network: %q", n.CIDR)}
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			// Clients' IPv4 addresses are matched as IPv4: ::ffff:10.0.0.0/104
			// is 10.0.0.0/8.
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		if p != p.Masked() {
			// 10.1.2.3/16 grants 10.1.0.0/16: more than the address
			// written, which may be a typo for a /32.
			return nil, &ledger.FieldError{Field: field + ".cidr", Message: fmt.Sprintf("%q has host bits set: write the network %s, or the one address %s/%d", n.CIDR, p.Masked(), p.Addr(), p.Addr().BitLen())}
		}
		roles, err := roleSet(field, n.Roles)
		if err != nil {
			return nil, err
		}
		name := n.Name
		if name == "" {
			name = p.Masked().String()
		}
		if p.Bits() == 0 {
			t.warnings = append(t.warnings, fmt.Sprintf("%s.cidr %s grants %s to every client address, bearer token or not", field, p, strings.Join(roleNames(roles), ", ")))
		}
		if netNames[name] {
			return nil, &ledger.FieldError{Field: field + ".name", Message: fmt.Sprintf("%q is used twice: the ledger records who by this name", name)}
		}
		netNames[name] = true
		t.networks = append(t.networks, networkEntry{name: name, prefix: p.Masked(), roles: roles})
	}
	return t, nil
}

// lineCol is the 1-based line and column of byte offset off in b.
func lineCol(b []byte, off int64) (line, col int) {
	off = min(max(off, 0), int64(len(b)))
	before := b[:off]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(off) - (bytes.LastIndexByte(before, '\n') + 1) + 1
	return line, col
}

// roleNames lists a role set's roles, sorted.
func roleNames(roles map[Role]bool) []string {
	out := make([]string, 0, len(roles))
	for r := range roles {
		out = append(out, string(r))
	}
	slices.Sort(out)
	return out
}

func roleSet(field string, roles []Role) (map[Role]bool, error) {
	if len(roles) == 0 {
		return nil, &ledger.FieldError{Field: field + ".roles", Message: "at least one role is required"}
	}
	set := map[Role]bool{}
	for j, r := range roles {
		switch r {
		case RoleCommand, RoleAdmin, RoleAuditor, RoleUpload:
			set[r] = true
		default:
			return nil, &ledger.FieldError{Field: fmt.Sprintf("%s.roles[%d]", field, j), Message: fmt.Sprintf("must be command, admin, auditor or upload, got %q", r)}
		}
	}
	return set, nil
}

// grants reports whether roles allow want; admin may also read.
func grants(roles map[Role]bool, want Role) bool {
	return roles[want] || (want == RoleAuditor && roles[RoleAdmin])
}

// authorize decides a request for a role and returns the principal: the
// token's name, or "net:" and the network's name for a client network, or
// "" when the API is open. A request with an Authorization header is judged
// by its token alone; without one, by its client address.
func (t *Tokens) authorize(r *http.Request, want Role) (string, error) {
	if t == nil {
		return "", nil
	}
	hs := r.Header.Values("Authorization")
	if len(hs) > 1 {
		// Which one would count is a guess a client should not rely on.
		return "", newError(reasonUnauthorized, fmt.Sprintf("%d Authorization headers: send one", len(hs)))
	}
	if len(hs) == 1 {
		// Present, it is judged alone, even empty: a client whose token
		// variable was empty is not let in by its network.
		h := hs[0]
		scheme, tok, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") || tok == "" {
			return "", newError(reasonUnauthorized, "Authorization must be \"Bearer <token>\"")
		}
		e, ok := t.lookup(strings.TrimSpace(tok))
		if !ok {
			return "", newError(reasonUnauthorized, "unknown token")
		}
		if !grants(e.roles, want) {
			return "", newError(reasonForbidden, fmt.Sprintf("token %q lacks role %s", e.name, want))
		}
		return e.name, nil
	}
	addr, ok := clientAddr(r)
	if ok {
		matched := false
		for _, n := range t.networks {
			if !n.prefix.Contains(addr) {
				continue
			}
			matched = true
			if grants(n.roles, want) {
				return netPrincipalPrefix + n.name, nil
			}
		}
		if matched {
			return "", newError(reasonForbidden, fmt.Sprintf("client network lacks role %s", want))
		}
	}
	msg := "a bearer token is required"
	switch {
	case ok && len(t.networks) > 0:
		// A desktop that cannot send headers (a CAD HTTP action) is let
		// in by its network: say which address was judged.
		msg += fmt.Sprintf(": the client address %s is in no network the tokens file grants (docs/clients.md, \"Tokens\")", addr)
	case ok:
		msg += ": the tokens file grants no client network (docs/clients.md, \"Tokens\")"
	}
	return "", newError(reasonUnauthorized, msg)
}

// lookup finds a token, comparing every entry in constant time.
func (t *Tokens) lookup(tok string) (tokenEntry, bool) {
	var found tokenEntry
	ok := false
	for _, e := range t.tokens {
		if subtle.ConstantTimeCompare(e.token, []byte(tok)) == 1 {
			found, ok = e, true
		}
	}
	return found, ok
}

// clientAddr is the request's remote IP (proxies' headers are not trusted).
func clientAddr(r *http.Request) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// clientIP is the remote IP as text, for the ledger.
func clientIP(r *http.Request) string {
	if a, ok := clientAddr(r); ok {
		return a.String()
	}
	return r.RemoteAddr
}

// NATS decides a client of the embedded NATS server as authorize decides
// an HTTP request (ledger.NATSAuthorizer): by its token when it presents
// one, else by its address. The command role may send call signals; the
// auditor and admin roles may read the streams; the upload role may use
// the manifests stream's consumers.
func (t *Tokens) NATS(token string, addr netip.Addr) (string, ledger.NATSAccess, bool) {
	if token != "" {
		e, ok := t.lookup(token)
		if !ok {
			return "", 0, false
		}
		a := natsAccess(e.roles)
		return e.name, a, a != 0
	}
	if !addr.IsValid() {
		return "", 0, false
	}
	var a ledger.NATSAccess
	name := ""
	for _, n := range t.networks {
		if n.prefix.Contains(addr) {
			if na := natsAccess(n.roles); na != 0 {
				a |= na
				if name == "" {
					name = netPrincipalPrefix + n.name
				}
			}
		}
	}
	return name, a, a != 0
}

func natsAccess(roles map[Role]bool) ledger.NATSAccess {
	var a ledger.NATSAccess
	if roles[RoleCommand] {
		a |= ledger.NATSSignals
	}
	if grants(roles, RoleAuditor) {
		a |= ledger.NATSRead
	}
	if roles[RoleUpload] {
		a |= ledger.NATSUpload
	}
	return a
}
