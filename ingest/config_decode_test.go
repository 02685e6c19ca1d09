package ingest

import (
	"errors"
	"testing"

	"github.com/recledger/recledger/ledger"
)

// A misspelt or mistyped setting is named by its whole path.
func TestDecodeConfigPartNamesTheField(t *testing.T) {
	for _, c := range []struct {
		root, doc, field string
		v                any
	}{
		{"", `{"site":{"upload_tme":"23:00"}}`, "site.upload_tme", &ledger.Config{}},
		{"", `{"teams":{"t2":{"retension_days":3}}}`, "teams.t2.retension_days", &ledger.Config{}},
		{"", `{"teams":{"t2":{"classifiers":[{"direction":"inbound"},{"percnt":5}]}}}`, "teams.t2.classifiers[1].percnt", &ledger.Config{}},
		{"", `{"colour":"red"}`, "colour", &ledger.Config{}},
		{"site", `{"upload_tme":"23:00"}`, "site.upload_tme", &ledger.Site{}},
		{"teams.t2", `{"retension_days":3}`, "teams.t2.retension_days", &ledger.Team{}},
		{"teams.t2", `{"retention_days":"3"}`, "teams.t2.retention_days", &ledger.Team{}},
		{"", `{"teams":{"t2":{"archive":"yes"}}}`, "teams.t2.archive", &ledger.Config{}},
		{"site", `{"upload_time":`, "site", &ledger.Site{}},
		{"users.x", `{"Team":"t2","name":"X","recording":"desktop"}`, "users.x.Team", &ledger.User{}}, // a setting in another case
		{"", `{"teams":{"t2":{"Archive":true}}}`, "teams.t2.Archive", &ledger.Config{}},
	} {
		err := decodeConfigPart([]byte(c.doc), c.root, c.v)
		var fe *ledger.FieldError
		if !errors.As(err, &fe) || fe.Field != c.field || !errors.Is(err, ledger.ErrInvalid) {
			t.Errorf("%s under %q: %v, want the field %s", c.doc, c.root, err, c.field)
		}
	}
	if err := decodeConfigPart([]byte(`{"site":{"upload_time":"22:00"}}`), "", &ledger.Config{}); err != nil {
		t.Errorf("a valid document: %v", err)
	}
}
