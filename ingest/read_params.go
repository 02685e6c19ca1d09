package ingest

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/recledger/recledger/ledger"
)

// takes wraps a read endpoint that accepts the query parameters names
// and refuses any other, or one given twice (400 invalid_input, the
// parameter in field). A misspelt filter would otherwise be ignored:
// GET /v1/contacts?userid=jdoe would hand an auditor every agent's
// contacts as if they were jdoe's, and a second user_id would be dropped.
func (s *Server) takes(h http.HandlerFunc, names ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := onlyParams(r, names); err != nil {
			s.writeError(w, r, err)
			return
		}
		h(w, r)
	}
}

// onlyParams checks r's query against names (see takes).
func onlyParams(r *http.Request, names []string) error {
	if r.URL.RawQuery == "" {
		return nil
	}
	// url.Values' Query drops what it cannot parse: "user_id=jdoe;" would
	// be read as no user_id at all, and answered with everyone's contacts.
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return newError(ledger.ReasonInvalidInput,
			fmt.Sprintf("malformed query string: %v (parameters are separated by &, and %% is followed by two hex digits)", err)).with("field", "query")
	}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys) // the same request always names the same parameter
	for _, k := range keys {
		switch {
		case !slices.Contains(names, k):
			takes := "no query parameters"
			if len(names) > 0 {
				takes = "only " + strings.Join(names, ", ")
			}
			return newError(ledger.ReasonInvalidInput,
				fmt.Sprintf("unknown query parameter %q: %s %s takes %s", k, r.Method, r.URL.Path, takes)).with("field", k)
		case len(q[k]) > 1:
			return newError(ledger.ReasonInvalidInput,
				fmt.Sprintf("query parameter %q is given %d times; give it once", k, len(q[k]))).with("field", k)
		}
	}
	return nil
}
