package ingest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTheGroupCountsAsOtherUsersOfATokensFile: the group of a tokens file
// is other users of the machine too. A file its group may write is
// refused, as one every user may write is (any of them could add an admin
// token of their own); a file its group may read is taken with a warning.
func TestTheGroupCountsAsOtherUsersOfATokensFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	if err := os.WriteFile(path, []byte(testTokens), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		mode    os.FileMode
		refused bool
		warned  bool
	}{
		{0o600, false, false},
		{0o620, true, false},
		{0o602, true, false},
		{0o640, false, true},
		{0o604, false, true},
	} {
		if err := os.Chmod(path, c.mode); err != nil {
			t.Fatal(err)
		}
		tok, err := LoadTokens(path)
		switch {
		case c.refused:
			if err == nil || !strings.Contains(err.Error(), "other users of this machine may write it") {
				t.Errorf("mode %o: %v, want it refused", c.mode, err)
			}
		case err != nil:
			t.Errorf("mode %o: %v", c.mode, err)
		case c.warned != (len(tok.Warnings()) == 1 && strings.Contains(tok.Warnings()[0], "may be read by other users")):
			t.Errorf("mode %o: warnings %q, want a warning: %v", c.mode, tok.Warnings(), c.warned)
		}
	}
}
