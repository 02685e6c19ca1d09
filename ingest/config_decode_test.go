package ingest

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

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
		{"", `{"site":`, "document", &ledger.Config{}},                                                // not JSON, no part named: the document
		{"users.x", `{"Team":"t2","name":"X","recording":"desktop"}`, "users.x.Team", &ledger.User{}}, // a setting in another case
		{"", `{"teams":{"t2":{"Archive":true}}}`, "teams.t2.Archive", &ledger.Config{}},
		// what encoding/json takes and an administrator did not mean
		{"metadata.k10", `{"type":"text","type":"date"}`, "metadata.k10.type", &ledger.MetadataKey{}},
		{"", `{"teams":{"t2":{"archive":true},"t2":{}}}`, "teams.t2", &ledger.Config{}},
		{"", `{"teams":{"t2":{"classifiers":[{"percent":5,"percent":6}]}}}`, "teams.t2.classifiers[0].percent", &ledger.Config{}},
		{"teams.sales", `null`, "teams.sales", &ledger.Team{}},
		{"teams.t4", `{"classifiers":[null]}`, "teams.t4.classifiers[0]", &ledger.Team{}},
		{"teams.t4", `{"exclusion":["+1800*",null]}`, "teams.t4.exclusion[1]", &ledger.Team{}},
		{"", ` null `, "document", &ledger.Config{}},
		{"users.x", "{\"name\":\"caf\xe9\",\"team\":\"t\",\"recording\":\"desktop\"}", "users.x", &ledger.User{}},
		// a number of the right kind but not a count
		{"teams.sales", `{"retention_days":1e400}`, "teams.sales.retention_days", &ledger.Team{}},
		{"teams.sales", `{"retention_days":1.5}`, "teams.sales.retention_days", &ledger.Team{}},
		// a card number is refused, not stored in clear (the field masked)
		{"users.cu1", `{"name":"Card 4111 1111 1111 1111","team":"t","recording":"desktop"}`, "users.cu1.name", &ledger.User{}},
		{"users.4111111111111111", `{"name":"x","team":"t","recording":"desktop"}`, "users.411111******1111", &ledger.User{}},
		{"", `{"teams":{"5500005555555559":{}}}`, "teams.550000******5559", &ledger.Config{}},
		{"site", `{"server_host":"4111.1111.1111.1111"}`, "site.server_host", &ledger.Site{}},
		// a template's unfilled variable: `config` would hand it to desktops
		{"site", `{"server_host":"${host}"}`, "site.server_host", &ledger.Site{}},
		{"users.${userId}", `{"name":"x","team":"t","recording":"desktop"}`, "users.${userId}", &ledger.User{}},
		{"", `{"users":{"u1":{"name":"${userName}","team":"t","recording":"desktop"}}}`, "users.u1.name", &ledger.Config{}},
	} {
		err := decodeConfigPart([]byte(c.doc), c.root, c.v)
		var fe *ledger.FieldError
		if !errors.As(err, &fe) || fe.Field != c.field || !errors.Is(err, ledger.ErrInvalid) {
			t.Errorf("%s under %q: %v, want the field %s", c.doc, c.root, err, c.field)
		}
		if err != nil && strings.Contains(err.Error(), "Go struct") {
			t.Errorf("%s: the message speaks of Go: %v", c.doc, err)
		}
	}
	// a million brackets: refused, not walked a stack frame each
	deep := `{"teams":{"t":` + strings.Repeat("[", 1_000_000) + `}}`
	if err := decodeConfigPart([]byte(deep), "", &ledger.Config{}); !errors.Is(err, ledger.ErrInvalid) {
		t.Errorf("a million brackets: %v", err)
	}
	// Phone-system numbers are not masked (call signals carry them so):
	// an E.164 number passes Luhn one time in ten.
	for root, doc := range map[string]string{
		"teams.uk": `{"exclusion":["+4915112345678","+4412345678901*"],"inclusion":["4420794601001"],"classifiers":[{"number_pattern":"+4915112345678"}]}`,
		// E.164's longest, 15 digits, and passing Luhn
		"teams.e164": `{"exclusion":["+441234567890126"]}`,
		"users.long": `{"name":"x","team":"t","recording":"desktop","extension":"+4915112345678","peripheral_id":"5001"}`,
	} {
		var v any = &ledger.Team{}
		if strings.HasPrefix(root, "users.") {
			v = &ledger.User{}
		}
		if err := decodeConfigPart([]byte(doc), root, v); err != nil {
			t.Errorf("%s %s: %v", root, doc, err)
		}
	}
	// A number longer than a phone number can be (16 digits and more) is
	// no line's: a card number there is refused as anywhere.
	if err := decodeConfigPart([]byte(`{"name":"x","team":"t","recording":"desktop","extension":"4111111111111111"}`), "users.long", &ledger.User{}); err == nil || !strings.Contains(err.Error(), "users.long.extension") {
		t.Errorf("a card number as an extension: %v", err)
	}
	// A peripheral id is not: commands carry it masked, so a card-like one
	// would refuse every command naming it (wrong_peripheral).
	var fe *ledger.FieldError
	err := decodeConfigPart([]byte(`{"name":"x","team":"t","recording":"desktop","extension":"3420","peripheral_id":"6011111111111117"}`), "users.pp", &ledger.User{})
	if !errors.As(err, &fe) || fe.Field != "users.pp.peripheral_id" {
		t.Errorf("a card-like peripheral id: %v, want refused naming peripheral_id", err)
	}
	if err := decodeConfigPart([]byte("\ufeff"+`{"site":{"upload_time":"22:00"}}`), "", &ledger.Config{}); err != nil {
		t.Errorf("a document after a byte order mark: %v", err)
	}
	if err := decodeConfigPart([]byte(`{"site":{"upload_time":"22:00"}}`), "", &ledger.Config{}); err != nil {
		t.Errorf("a valid document: %v", err)
	}
	// A setting given null takes its default, as encoding/json reads it
	// (only a whole part, or a list's entry, given null is refused).
	if err := decodeConfigPart([]byte(`{"site":{"upload_time":"22:00","timezone":null},"teams":{"t":{"archive":null,"exclusion":null}}}`), "", &ledger.Config{}); err != nil {
		t.Errorf("settings given null: %v", err)
	}
}

// FuzzDecodeConfigPart: any body gives either a configuration or a field
// error (never a panic, never another error); what is taken is valid
// UTF-8 JSON with no member given twice.
func FuzzDecodeConfigPart(f *testing.F) {
	for _, s := range []string{`{"site":{"upload_time":"23:00"},"teams":{"t":{"classifiers":[{"percent":5}]}}}`,
		`{"a":1,"a":2}`, `null`, `{"teams":{"t":{"retention_days":1e400}}}`, "{\"users\":{\"x\":{\"name\":\"\xe9\"}}}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var c ledger.Config
		err := decodeConfigPart(b, "", &c)
		if err != nil {
			var fe *ledger.FieldError
			if !errors.As(err, &fe) || fe.Field == "" || !errors.Is(err, ledger.ErrInvalid) {
				t.Fatalf("%q: %v is not a field error", b, err)
			}
			return
		}
		if !json.Valid(b) || !utf8.Valid(b) {
			t.Fatalf("%q taken", b)
		}
		if p, dup := duplicateMember(b); dup {
			t.Fatalf("%q taken with %s twice", b, p)
		}
	})
}

// A refused member's message says what is wrong with it, not only where:
// a member written in another case is told its spelling, a number of the
// right kind that is no count is told so.
func TestDecodeConfigPartSaysWhatIsWrong(t *testing.T) {
	for _, c := range []struct {
		root, doc, msg string
		v              any
	}{
		{"users.x", `{"Team":"t2","name":"X","recording":"desktop"}`, `is written "team"`, &ledger.User{}},
		{"teams.sales", `{"retention_days":1.5}`, "must be a whole number that fits, got 1.5", &ledger.Team{}},
		{"teams.sales", `{"retention_days":"3"}`, "must be a JSON number, got a JSON string", &ledger.Team{}},
	} {
		if err := decodeConfigPart([]byte(c.doc), c.root, c.v); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s under %q: %v, want %q", c.doc, c.root, err, c.msg)
		}
	}
}
