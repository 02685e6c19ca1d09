package ingest_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/recledger/recledger/ingest"
)

// A first --config file adds everything: the log names nothing as added.
// A ledger that holds only metadata keys put through the API is no first
// start: the teams and users the file brings are named.
func TestConfigFileNamesWhatItAddedOnlyAfterTheFirst(t *testing.T) {
	s, logs := newLoggedStack(t)
	path := filepath.Join(t.TempDir(), "config.json")
	writeFile(t, path, siteConfig)
	if err := s.api.ApplyConfigFile(t.Context(), path); err != nil {
		t.Fatal(err)
	}
	if got := logs.String(); !strings.Contains(got, "configuration file applied") || strings.Contains(got, "added=") {
		t.Errorf("a first file's log names what it added: %s", got)
	}

	s, logs = newLoggedStack(t)
	s.must(200, "PUT", "/v1/config/metadata/zip", "application/json", `{"type":"text"}`)
	if err := s.api.ApplyConfigFile(t.Context(), path); err != nil {
		t.Fatal(err)
	}
	got := logs.String()
	for _, want := range []string{"metadata keys removed: zip", "teams added: gw, sales", "users added: gwuser, jdoe"} {
		if !strings.Contains(got, want) {
			t.Errorf("log lacks %q: %s", want, got)
		}
	}
}

// What a file changes, and what it puts back, is named part by part; a
// long list names ten, sorted, and how many more.
func TestConfigFileSaysWhatItChanged(t *testing.T) {
	s, logs := newLoggedStack(t)
	path := filepath.Join(t.TempDir(), "config.json")
	writeFile(t, path, siteConfig)
	if err := s.api.ApplyConfigFile(t.Context(), path); err != nil {
		t.Fatal(err)
	}
	s.must(200, "DELETE", "/v1/config/users/gwuser", "", "")
	s.must(200, "DELETE", "/v1/config/teams/gw", "", "")
	s.must(200, "PUT", "/v1/config/users/jdoe", "application/json", `{"name":"Jane Doe","team":"sales","recording":"desktop","extension":"3421","peripheral_id":"5001"}`)
	s.must(200, "PUT", "/v1/config/teams/sales", "application/json", `{"archive":true,"retention_days":90,"tagged_retention_days":365}`)
	for i := 12; i >= 1; i-- {
		s.must(200, "PUT", fmt.Sprintf("/v1/config/users/u%02d", i), "application/json",
			fmt.Sprintf(`{"name":"U","team":"sales","recording":"desktop","extension":"%d"}`, 4000+i))
	}
	if err := s.api.ApplyConfigFile(t.Context(), path); err != nil {
		t.Fatal(err)
	}
	got := logs.String()
	for _, want := range []string{
		"teams changed: sales", "users changed: jdoe",
		"users removed: u01, u02, u03, u04, u05, u06, u07, u08, u09, u10 and 2 more",
		"teams added: gw", "users added: gwuser",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("log lacks %q: %s", want, got)
		}
	}
}

// FieldChanges names a member only the new object has (simulate compares
// a server's part with one that may hold members the other lacks).
func TestFieldChangesNamesNewMembers(t *testing.T) {
	got := ingest.FieldChanges(map[string]any{"a": 1.0}, map[string]any{"a": 1.0, "b": "x"})
	if want := `b null → "x"`; got != want {
		t.Errorf("FieldChanges = %q, want %q", got, want)
	}
}
