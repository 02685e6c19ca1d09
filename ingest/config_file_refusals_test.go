package ingest_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/recledger/recledger/ingest"
	"github.com/recledger/recledger/ledger"
)

// A refused --config file's error, which serve prints, quotes a card
// number typed into it masked, as the API's 400 does.
func TestConfigFileErrorsMaskCardNumbers(t *testing.T) {
	for name, doc := range map[string]string{
		"a member":         `{"site":{"4111111111111111":1}}`,
		"a value too high": `{"teams":{"t":{"retention_days":4111111111111111}}}`,
	} {
		path := filepath.Join(t.TempDir(), "config.json")
		writeFile(t, path, doc)
		err := ingest.CheckConfigFile(path, nil)
		if err == nil || strings.Contains(err.Error(), "4111111111111111") || !strings.Contains(err.Error(), "1111") {
			t.Errorf("%s: %v, want refused with the card number masked", name, err)
		}
	}
}

// A --config file larger than the bound is refused before it is read.
func TestConfigFileLargerThanTheBound(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	writeFile(t, path, "{}"+strings.Repeat(" ", 4<<20))
	if err := ingest.CheckConfigFile(path, nil); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("a file of 4 MiB and more: %v", err)
	}
}

// A file whose document cannot be appended is an error, not applied.
func TestConfigFileNotAppended(t *testing.T) {
	s := newStack(t, nil)
	path := filepath.Join(t.TempDir(), "config.json")
	writeFile(t, path, siteConfig)
	s.store.Close()
	if err := s.api.ApplyConfigFile(t.Context(), path); !errors.Is(err, ledger.ErrClosed) {
		t.Errorf("a file applied to a closed ledger: %v, want ErrClosed", err)
	}
}

// A --config file is checked as a whole document, as no part put through
// the API is: one defining more metadata keys than the vendor's 10, or a
// team with a classifier out of range, is refused naming the field.
func TestConfigFileIsValidatedWhole(t *testing.T) {
	keys := `"k0":{"type":"text"}`
	for i := 1; i <= ledger.MaxMetadataKeys; i++ {
		keys += fmt.Sprintf(`,"k%d":{"type":"text"}`, i)
	}
	for doc, field := range map[string]string{
		`{"metadata":{` + keys + `}}`: "metadata",
		`{"teams":{"t":{"classifiers":[{"direction":"inbound","percent":101}]}}}`: "teams.t.classifiers[0].percent",
		`{"site":{"max_pause_seconds":-1}}`:                                       "site.max_pause_seconds",
	} {
		path := filepath.Join(t.TempDir(), "config.json")
		writeFile(t, path, doc)
		err := ingest.CheckConfigFile(path, nil)
		var fe *ledger.FieldError
		if !errors.As(err, &fe) || fe.Field != field {
			t.Errorf("%.60s: %v, want refused naming %s", doc, err, field)
		}
	}
}
