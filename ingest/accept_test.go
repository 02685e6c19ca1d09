package ingest

import "testing"

// TestPrefersCSV: the pause and contact exports give CSV for an Accept
// header that prefers text/csv to application/json, by quality, then by
// how specific the range is, then by order; JSON otherwise.
func TestPrefersCSV(t *testing.T) {
	for accept, want := range map[string]bool{
		"":                                 false,
		"text/csv":                         true,
		"TEXT/CSV":                         true,
		" text/csv ; charset=utf-8":        true,
		"text/csv;q=0":                     false,
		"text/csv; q=0.0, */*":             false,
		"application/json, text/csv":       false,
		"text/csv, application/json":       true,
		"application/json;q=0.5, text/csv": true,
		"text/csv;q=0.4, application/json": false,
		"text/csv, */*;q=0.8":              true,
		"*/*":                              false,
		"text/*":                           true,
		"text/*, application/json":         false,
		"text/csv, application/*":          true,
		"application/*, text/csv":          true,
		"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8": false,
		"text/csv;q=2":                                           true, // out of range: taken as 1
		"text/csv;q=abc, application/json":                       true,
		"application/json":                                       false,
		"application/json, text/csv;q=5":                         false, // taken as 1: JSON listed first
		"text/csv;q=-1, application/json":                        true,  // taken as 1: CSV listed first
		"text/csv;q=0.5, */*":                                    false, // JSON acceptable at 1 through */*
		"text/csv;q=0.2, text/csv;q=0.9, application/json;q=0.5": false, // the first of equally specific ranges
	} {
		if got := prefersCSV(accept); got != want {
			t.Errorf("Accept %q: CSV %v, want %v", accept, got, want)
		}
	}
}
