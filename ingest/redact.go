package ingest

import "strings"

// redactTokens replaces, in every value of req, each bearer token of t
// (nil: none configured) with a mark naming the token's entry. A desktop
// that cannot send headers (Cisco Agent Desktop's HTTP actions) is easily
// set up with the token as a parameter (?token=…); the parameter is not
// read as a credential, and without this the secret would be stored in
// the ledger, which is hash-chained, mirrored and read by every auditor,
// and could never be removed. It reports whether anything was replaced.
func (t *Tokens) redactTokens(req *request) bool {
	if t == nil || len(t.tokens) == 0 {
		return false
	}
	found := false
	redact := func(v *string) {
		for _, e := range t.tokens {
			if strings.Contains(*v, string(e.token)) {
				*v = strings.ReplaceAll(*v, string(e.token), "[token "+e.name+" redacted]")
				found = true
			}
		}
	}
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
