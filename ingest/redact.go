package ingest

import (
	"slices"
	"strings"
	"time"

	"github.com/recledger/recledger/ledger"
)

// redactTokens replaces, in every value of req, each bearer token of t
// (nil: none configured) with a mark naming the token's entry. A desktop
// that cannot send headers (Cisco Agent Desktop's HTTP actions) is easily
// set up with the token as a parameter (?token=…); the parameter is not
// read as a credential, and without this the secret would be stored in
// the ledger, which is hash-chained, mirrored and read by every auditor,
// and could never be removed. It returns the names of the entries whose
// tokens it replaced.
func (t *Tokens) redactTokens(req *request) []string {
	if t == nil || len(t.tokens) == 0 {
		return nil
	}
	var found []string
	redact := func(v *string) { *v = t.redact(*v, &found) }
	redact(&req.SenderID)
	redact(&req.PeripheralID)
	redact(&req.Extension)
	redact(&req.Message)
	for i := range req.Params {
		redact(&req.Params[i].Key)
		redact(&req.Params[i].Value)
	}
	return found
}

// redact returns v with each bearer token of t replaced by a mark naming
// its entry, adding the names of the entries it replaced to found (when
// not nil and not there yet).
func (t *Tokens) redact(v string, found *[]string) string {
	if t == nil {
		return v
	}
	lv := asciiLower(v)
	for _, e := range t.tokens {
		for _, f := range e.forms {
			if !strings.Contains(lv, f) {
				continue
			}
			v, _ = replaceFold(v, f, "[token "+e.name+" redacted]")
			lv = asciiLower(v)
			if found != nil && !slices.Contains(*found, e.name) {
				*found = append(*found, e.name)
			}
		}
	}
	return v
}

// replaceFold replaces each f in v, in any ASCII letter case, with repl;
// ok reports whether it found one. A contact id is read upper-cased, and
// its 404 quoted a token so (a walk); a copy differing in one letter's
// case was stored in clear, and gave the token away (a security walk).
func replaceFold(v, f, repl string) (string, bool) {
	if f == "" {
		return v, false
	}
	lv, lf := asciiLower(v), asciiLower(f)
	i := strings.Index(lv, lf)
	if i < 0 {
		return v, false
	}
	var b strings.Builder
	for i >= 0 {
		b.WriteString(v[:i])
		b.WriteString(repl)
		v, lv = v[i+len(f):], lv[i+len(f):]
		i = strings.Index(lv, lf)
	}
	b.WriteString(v)
	return b.String(), true
}

// asciiLower is s with its ASCII capitals lowered, byte for byte (its
// length kept, so that an index in it is one in s).
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; c >= 'A' && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// RedactText is s as an answer would quote it: card numbers masked, the
// bearer tokens of t (nil: none) redacted. serve applies it to what the
// embedded NATS server logs of what clients sent.
func (t *Tokens) RedactText(s string) string {
	s, _ = maskCards(s)
	return t.redact(s, nil)
}

// tokenIn names the entry of a bearer token that v holds ("" when none).
func (t *Tokens) tokenIn(v string) string {
	var found []string
	if t.redact(v, &found); len(found) > 0 {
		return found[0]
	}
	return ""
}

// configToken refuses a configuration part (its path root and its body)
// that holds a bearer token: configuration is stored in the ledger as
// written, for good (a walk's user named by a token was, and its answer
// quoted it).
func (t *Tokens) configToken(root string, body []byte) error {
	if name := t.tokenIn(root + "\n" + string(body)); name != "" {
		field := root
		if field == "" {
			field = "document"
		}
		return &ledger.FieldError{Field: field, Message: "holds the bearer token of entry " + name + ": refused, not stored; rotate the token"}
	}
	return nil
}

// signalToken names the token entry and the member, if any, of a call
// signal's value that holds a bearer token ("" when none): such a
// signal is refused, not stored. A feed has no reason to send one (it
// is not a desktop's parameter, redacted and kept), and the ledger
// keeps what it stores for good.
func (t *Tokens) signalToken(sig *ledger.CallSignal) (name, field string) {
	if t == nil || len(t.tokens) == 0 {
		return "", ""
	}
	for _, m := range [...]struct{ field, v string }{{"call_id", sig.CallID}, {"extension", sig.Extension},
		{"ani", sig.ANI}, {"dnis", sig.DNIS}} {
		var found []string
		if t.redact(m.v, &found); len(found) > 0 {
			return found[0], m.field
		}
	}
	return "", ""
}

// warnTokenParam logs that commands carried the tokens of entries names
// as parameters, each name at most once a minute: the administrator must
// know which tokens travelled in URLs, and should be rotated.
func (s *Server) warnTokenParam(names []string, command, client string) {
	now := s.now()
	s.tokenWarnMu.Lock()
	var due []string
	for _, n := range names {
		if last, ok := s.tokenWarned[n]; !ok || now.Sub(last) >= tokenWarnEvery {
			if s.tokenWarned == nil {
				s.tokenWarned = map[string]time.Time{}
			}
			s.tokenWarned[n] = now
			due = append(due, n)
		}
	}
	s.tokenWarnMu.Unlock()
	if len(due) > 0 {
		s.log.Warn("a command carried a bearer token as a parameter: it is stored redacted, and is not a credential there. The token travelled in clear in the request: rotate it. Send tokens in the Authorization header, or grant the desktops' network a role (docs/clients.md, Tokens; repeats are logged every minute)",
			logKeyTokens, strings.Join(due, ","), logKeyCommand, command, logKeyClient, client)
	}
}

// tokenWarnEvery paces warnTokenParam per token.
const tokenWarnEvery = time.Minute
