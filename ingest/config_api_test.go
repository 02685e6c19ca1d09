package ingest_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/recledger/recledger/ingest"
	"github.com/recledger/recledger/ledger"
)

func TestConfigAPI(t *testing.T) {
	s := newStack(t, nil)
	events := 0
	put := func(path, body string, status int) reply {
		t.Helper()
		r := s.must(status, "PUT", path, "application/json", body)
		if status == 200 {
			events++
		}
		return r
	}
	put("/v1/config/site", `{"upload_time":"22:30","timezone":"Europe/Paris"}`, 200)
	put("/v1/config/teams/sales", `{"archive":true}`, 200)
	put("/v1/config/users/jdoe", `{"name":"Jane Doe","team":"sales","recording":"desktop","extension":"3420"}`, 200)
	for i := range 10 {
		put(fmt.Sprintf("/v1/config/metadata/k%d", i), `{"type":"text"}`, 200)
	}
	r := put("/v1/config/metadata/k10", `{"type":"text"}`, 400)
	if r.str("reason") != "invalid_config" || r.str("field") != "metadata" {
		t.Fatalf("11th key: %s", r.Raw)
	}
	put("/v1/config/metadata/k3", `{"type":"date"}`, 200) // redefining one is fine

	for path, field := range map[string]string{
		"/v1/config/site":             "site.timezone",
		"/v1/config/users/bad%20id":   "users.bad id",
		"/v1/config/users/cti":        "users.cti",
		"/v1/config/users/x":          "users.x.recording",
		"/v1/config/metadata/k1":      "metadata.k1.type",
		"/v1/config/teams/sales":      "teams.sales.inclusion[0]",
		"/v1/config/teams/typo-team":  "teams.typo-team.archiv",
		"/v1/config/teams/bad%20team": "teams.bad team",
		"/v1/config/metadata/a%2Cb":   "metadata.a,b",
	} {
		body := map[string]string{
			"/v1/config/site":             `{"timezone":"Mars/Olympus"}`,
			"/v1/config/users/bad%20id":   `{"name":"x","team":"sales","recording":"desktop"}`,
			"/v1/config/users/cti":        `{"name":"x","team":"sales","recording":"desktop"}`, // resumed_by's word for a call's end
			"/v1/config/users/x":          `{"name":"x","team":"sales","recording":"tape"}`,
			"/v1/config/metadata/k1":      `{"type":"blob"}`,
			"/v1/config/teams/sales":      `{"inclusion":["34x"]}`,
			"/v1/config/teams/typo-team":  `{"archiv":true}`,
			"/v1/config/teams/bad%20team": `{}`,
			"/v1/config/metadata/a%2Cb":   `{"type":"text"}`,
		}[path]
		r := put(path, body, 400)
		if r.str("reason") != "invalid_config" || r.str("field") != field {
			t.Errorf("PUT %s: field %q, want %q: %s", path, r.str("field"), field, r.Raw)
		}
	}

	// So is a --config document's.
	doc := ledger.Config{Teams: map[string]ledger.Team{"sales": {}},
		Users: map[string]ledger.User{"timer": {Name: "x", Team: "sales", Recording: ledger.RecDesktop}}}
	var fe *ledger.FieldError
	if err := doc.Validate(); !errors.As(err, &fe) || fe.Field != "users.timer" {
		t.Errorf("a document with user timer: %v", err)
	}

	// Numbers past their bounds: once taken, they overflowed (every
	// pause ended as it opened; retention dates before the contact's day).
	for _, c := range []struct{ path, body, field string }{
		{"/v1/config/site", `{"max_pause_seconds":9300000000}`, "site.max_pause_seconds"},
		{"/v1/config/site", `{"max_pause_seconds":86401}`, "site.max_pause_seconds"},
		{"/v1/config/teams/sales", `{"retention_days":36501}`, "teams.sales.retention_days"},
		{"/v1/config/teams/sales", `{"tagged_retention_days":9223372036854775807}`, "teams.sales.tagged_retention_days"},
	} {
		r := put(c.path, c.body, 400)
		if r.str("reason") != "invalid_config" || r.str("field") != c.field {
			t.Errorf("PUT %s %s: field %q, want %q: %s", c.path, c.body, r.str("field"), c.field, r.Raw)
		}
	}

	// What an error quotes is masked as the ledger would mask it.
	for path, body := range map[string]string{
		"/v1/config/users/u3":    `{"name":"x","team":"sales","recording":"desktop","4111111111111111":1}`,
		"/v1/config/teams/sales": `{"retention_days":4111111111111111}`,
	} {
		r := put(path, body, 400)
		// users.u3.4111…: the card's run begins with the 3 (a mark
		// joins them), so it is starred whole.
		if strings.Contains(r.Raw, "4111111111111111") || !strings.Contains(r.Raw, "******1111") && !strings.Contains(r.Raw, "u*****************") {
			t.Errorf("PUT %s %s: the card number is quoted in clear: %s", path, body, r.Raw)
		}
	}

	s.must(404, "DELETE", "/v1/config/users/nobody", "", "")
	s.must(200, "DELETE", "/v1/config/metadata/k9", "", "")
	s.must(200, "DELETE", "/v1/config/users/jdoe", "", "")
	events += 2
	cfg := s.must(200, "GET", "/v1/config", "", "")
	site, _ := cfg.JSON["site"].(map[string]any)
	md, _ := cfg.JSON["metadata"].(map[string]any)
	users, _ := cfg.JSON["users"].(map[string]any)
	if site["timezone"] != "Europe/Paris" || len(md) != 9 || len(users) != 0 {
		t.Fatalf("config: %s", cfg.Raw)
	}
	ev := s.must(200, "GET", "/v1/events", "", "")
	if !strings.Contains(ev.Raw, `"source":"api"`) || !strings.Contains(ev.Raw, `"op":"delete"`) {
		t.Fatalf("config events: %s", ev.Raw)
	}
	s.verified(events)
}

// TestApplyConfigFile: --config appends the document once; restarts with the
// same file append nothing; an invalid file is refused whole.
func TestApplyConfigFile(t *testing.T) {
	s := newStack(t, nil)
	dir := t.TempDir()
	path := filepath.Join(dir, "config.json")
	writeFile(t, path, siteConfig)
	for range 3 {
		if err := s.api.ApplyConfigFile(t.Context(), path); err != nil {
			t.Fatal(err)
		}
	}
	s.verified(1)
	writeFile(t, path, strings.Replace(siteConfig, `"23:00"`, `"22:00"`, 1))
	if err := s.api.ApplyConfigFile(t.Context(), path); err != nil {
		t.Fatal(err)
	}
	s.verified(2)
	writeFile(t, path, strings.Replace(siteConfig, `"desktop"`, `"cassette"`, 1))
	err := s.api.ApplyConfigFile(t.Context(), path)
	if err == nil || !strings.Contains(err.Error(), "users.jdoe.recording") {
		t.Fatalf("invalid file: %v", err)
	}
	// A syntax error says where, as the tokens file's do.
	writeFile(t, path, strings.Replace(siteConfig, `"23:00"`, `"23:00",}`, 1))
	if err := s.api.ApplyConfigFile(t.Context(), path); err == nil || !strings.Contains(err.Error(), "line 1, column 33") {
		t.Fatalf("a stray brace: %v", err)
	}
	s.verified(2)
}

// TestConfigFileSaysWhatItUndid: --config replaces the whole document, so a
// restart undoes changes made through the API; the log must name them.
func TestConfigFileSaysWhatItUndid(t *testing.T) {
	s, logs := newLoggedStack(t)
	path := filepath.Join(t.TempDir(), "config.json")
	writeFile(t, path, siteConfig)
	if err := s.api.ApplyConfigFile(t.Context(), path); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "undid") {
		t.Fatalf("a first file undid nothing: %s", logs.String())
	}
	s.must(200, "PUT", "/v1/config/users/asmith", "application/json", `{"name":"Al Smith","team":"sales","recording":"server","extension":"3421"}`)
	s.must(200, "PUT", "/v1/config/metadata/zip", "application/json", `{"type":"text"}`)
	s.must(200, "PUT", "/v1/config/site", "application/json", `{"upload_time":"22:00","server_host":"qm-base-1"}`)
	s.must(200, "DELETE", "/v1/config/users/gwuser", "", "")
	if err := s.api.ApplyConfigFile(t.Context(), path); err != nil {
		t.Fatal(err)
	}
	got := logs.String()
	for _, want := range []string{"level=WARN", `site changed: upload_time \"22:00\" → \"23:00\"`, "metadata keys removed: zip", "users removed: asmith", "users added: gwuser"} {
		if !strings.Contains(got, want) {
			t.Errorf("log lacks %q: %s", want, got)
		}
	}
}

// TestConfigFileKeepsATeamWithOpenContacts: a file that removes a team
// whose calls go on keeps it (the API refuses that delete): an admin's
// walk restarted with a file lacking a team added through the API, and
// the team's archived call closed discarded.
func TestConfigFileKeepsATeamWithOpenContacts(t *testing.T) {
	s, logs := newLoggedStack(t)
	path := filepath.Join(t.TempDir(), "config.json")
	writeFile(t, path, siteConfig)
	if err := s.api.ApplyConfigFile(t.Context(), path); err != nil {
		t.Fatal(err)
	}
	s.must(200, "PUT", "/v1/config/teams/care2", "application/json", `{"archive":true,"retention_days":30,"tagged_retention_days":30}`)
	s.must(200, "PUT", "/v1/config/users/carl", "application/json", `{"name":"Carl","team":"care2","recording":"gateway","extension":"3600"}`)
	s.signal(`{"call_id":"K-1","extension":"3600","type":"ringing","direction":"inbound","ani":"+13125550100"}`)
	s.signal(`{"call_id":"K-1","extension":"3600","type":"answered"}`)

	if err := s.api.ApplyConfigFile(t.Context(), path); err != nil {
		t.Fatal(err)
	}
	if got := logs.String(); !strings.Contains(got, "kept=") || !strings.Contains(got, "care2 (1 open contact: ") {
		t.Fatalf("the kept team is not named: %s", got)
	}
	cfg := s.must(200, "GET", "/v1/config", "", "")
	if !strings.Contains(cfg.Raw, `"care2"`) || strings.Contains(cfg.Raw, `"carl"`) {
		t.Fatalf("care2 should be kept, carl removed: %s", cfg.Raw)
	}
	s.signal(`{"call_id":"K-1","extension":"3600","type":"ended"}`)
	c := s.must(200, "GET", "/v1/contacts?user_id=carl", "", "")
	if !strings.Contains(c.Raw, `"reason_codes":["ARCHIVE"]`) || !strings.Contains(c.Raw, `"disposition":"upload"`) {
		t.Fatalf("the archived team's call did not close archived: %s", c.Raw)
	}

	// Its calls ended, the next start removes it as the file says.
	if err := s.api.ApplyConfigFile(t.Context(), path); err != nil {
		t.Fatal(err)
	}
	if cfg := s.must(200, "GET", "/v1/config", "", ""); strings.Contains(cfg.Raw, `"care2"`) {
		t.Fatalf("care2 outlived its calls: %s", cfg.Raw)
	}
}

// A user put on another user's default extension is answered with who
// else has it: a shared desk is allowed, a typo looks the same.
func TestPutUserSaysWhoSharesItsExtension(t *testing.T) {
	s := newStack(t, nil)
	s.configure()
	r := s.must(200, "PUT", "/v1/config/users/bob", "application/json", `{"name":"Bob","team":"sales","recording":"desktop","extension":"3420"}`)
	if !strings.Contains(r.Raw, `"shares_extension_with":["jdoe"]`) || !strings.Contains(r.str("note"), "extension 3420 is also the default extension of jdoe") || !strings.Contains(r.str("note"), "(bob)") {
		t.Fatalf("a shared extension unsaid: %s", r.Raw)
	}
	if r := s.must(200, "PUT", "/v1/config/users/carol", "application/json", `{"name":"Carol","team":"sales","recording":"desktop","extension":"3999"}`); strings.Contains(r.Raw, "shares_extension_with") || strings.Contains(r.Raw, "note") {
		t.Fatalf("an extension of its own: %s", r.Raw)
	}
	// A user put again is not its own desk-mate.
	if r := s.must(200, "PUT", "/v1/config/users/jdoe", "application/json", `{"name":"Jane Doe","team":"sales","recording":"desktop","extension":"3420"}`); !strings.Contains(r.Raw, `"shares_extension_with":["bob"]`) {
		t.Fatalf("jdoe put again: %s", r.Raw)
	}
	// Those who share it are listed sorted.
	for _, id := range []string{"d5", "d4", "d3", "d2"} {
		s.must(200, "PUT", "/v1/config/users/"+id, "application/json", `{"name":"Desk","team":"sales","recording":"desktop","extension":"3777"}`)
	}
	if r := s.must(200, "PUT", "/v1/config/users/d1", "application/json", `{"name":"Desk","team":"sales","recording":"desktop","extension":"3777"}`); !strings.Contains(r.Raw, `"shares_extension_with":["d2","d3","d4","d5"]`) || !strings.Contains(r.str("note"), "of d2, d3, d4, d5: ") || !strings.Contains(r.str("note"), "(d1)") {
		t.Fatalf("a desk of five: %s", r.Raw)
	}
	// Users of no default extension share none.
	for _, id := range []string{"nox1", "nox2"} {
		if r := s.must(200, "PUT", "/v1/config/users/"+id, "application/json", `{"name":"No Ext","team":"sales","recording":"desktop"}`); strings.Contains(r.Raw, "shares_extension_with") || strings.Contains(r.Raw, "note") {
			t.Fatalf("%s of no extension: %s", id, r.Raw)
		}
	}
}

// A part put with its optional fields left out is stored as read back:
// a site without upload time or zone takes 23:00 UTC, a team without
// lists has empty ones (GET /v1/config shows them, not null). The ledger's
// event holds them too, so that it reads the same whatever the defaults
// of the version that replays it.
func TestConfigPartsStoredWithTheirDefaults(t *testing.T) {
	s := newStack(t, nil)
	s.must(200, "PUT", "/v1/config/site", "application/json", `{"server_host":"qm"}`)
	s.must(200, "PUT", "/v1/config/teams/bare", "application/json", `{}`)
	r := s.must(200, "GET", "/v1/config", "", "")
	for _, want := range []string{`"upload_time":"23:00"`, `"timezone":"UTC"`, `"inclusion":[]`, `"exclusion":[]`} {
		if !strings.Contains(r.Raw, want) {
			t.Errorf("GET /v1/config lacks %s: %s", want, r.Raw)
		}
	}
	ev := s.must(200, "GET", "/v1/events", "", "")
	for _, want := range []string{`"value":{"upload_time":"23:00","timezone":"UTC",`, `"value":{"archive":false,"inclusion":[],"exclusion":[],`} {
		if !strings.Contains(ev.Raw, want) {
			t.Errorf("the events lack %s: %s", want, ev.Raw)
		}
	}
}

// A team with many users is not deleted: the answer lists them all,
// sorted, and its message the first five.
func TestDeleteOfATeamOfManyUsers(t *testing.T) {
	s := newStack(t, nil)
	s.must(200, "PUT", "/v1/config/teams/t", "application/json", `{}`)
	var want []any
	for i := 7; i >= 1; i-- {
		s.must(200, "PUT", fmt.Sprintf("/v1/config/users/u%d", i), "application/json",
			fmt.Sprintf(`{"name":"U","team":"t","recording":"desktop","extension":"%d"}`, 4000+i))
	}
	for i := 1; i <= 7; i++ {
		want = append(want, fmt.Sprintf("u%d", i))
	}
	r := s.do("DELETE", "/v1/config/teams/t", "", "")
	users, _ := r.JSON["users"].([]any)
	if r.Status != 409 || !slices.Equal(users, want) || !strings.Contains(r.str("message"), "has 7 users (u1, u2, u3, u4, u5): ") {
		t.Errorf("deleting a team of 7 users: %d %s", r.Status, r.Raw)
	}
}

// A configuration change is recorded with how it was made: through the
// API, with the principal that made it, and the answer's event id is the
// event's; from a --config file, as the file's.
func TestConfigChangesRecordWhoAndHow(t *testing.T) {
	tok, err := ingest.ParseTokens([]byte(`{"tokens":[{"name":"ops","token":"admin-token-0123456789ab","roles":["admin","auditor"]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	s := newStack(t, tok)
	admin := []string{"Authorization", "Bearer admin-token-0123456789ab"}
	r := s.must(200, "PUT", "/v1/config/teams/t", "application/json", `{}`, admin...)
	path := filepath.Join(t.TempDir(), "config.json")
	writeFile(t, path, `{"site":{"upload_time":"22:00"},"teams":{"t":{}}}`)
	if err := s.api.ApplyConfigFile(t.Context(), path); err != nil {
		t.Fatal(err)
	}
	var evs struct {
		Events []struct {
			ID   string `json:"id"`
			Data struct {
				Principal string `json:"principal"`
				Source    string `json:"source"`
			} `json:"data"`
		} `json:"events"`
	}
	raw := s.must(200, "GET", "/v1/events", "", "", admin...).Raw
	if err := json.Unmarshal([]byte(raw), &evs); err != nil || len(evs.Events) != 2 {
		t.Fatalf("events: %v %s", err, raw)
	}
	api, file := evs.Events[0], evs.Events[1]
	if api.ID != r.str("event_id") || api.Data.Principal != "ops" || api.Data.Source != "api" {
		t.Errorf("the API's change: %+v, answered event_id %q", api, r.str("event_id"))
	}
	if file.Data.Principal != "" || file.Data.Source != "file" {
		t.Errorf("the file's change: %+v", file)
	}
}
