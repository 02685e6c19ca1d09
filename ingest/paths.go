package ingest

import (
	"net/http"
	"path"
	"strings"
)

// cleanPaths serves a path holding empty or dot segments as its clean
// form: "//recordingcontrols/rest/tag" (a desktop's base URL ending in "/"
// joined to a path beginning with one) is the tag command. ServeMux would
// answer such a path with a redirect, which a desktop's HTTP action may
// not follow, with an HTML body.
func cleanPaths(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c := cleanPath(r.URL.Path); c != r.URL.Path {
			r2 := *r
			u := *r.URL
			u.Path, u.RawPath = c, ""
			r2.URL = &u
			r = &r2
		}
		h.ServeHTTP(w, r)
	})
}

// cleanPath is p as ServeMux matches it: path.Clean, rooted, keeping a
// trailing slash.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}
