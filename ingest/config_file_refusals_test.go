package ingest_test

import (
	"errors"
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
