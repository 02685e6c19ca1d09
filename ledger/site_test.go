package ledger

import (
	"errors"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// A ledger is served under one site; another name is refused, naming the
// ledger's, also after reopening, and read-only too.
func TestClaimSite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if site, err := s.Site(t.Context()); err != nil || site != "" {
		t.Fatalf("a new ledger's site: %q %v", site, err)
	}
	for _, site := range []string{"alpha", "alpha"} {
		if err := s.ClaimSite(t.Context(), site); err != nil {
			t.Fatalf("claim %s: %v", site, err)
		}
	}
	if err := s.ClaimSite(t.Context(), "bad.site"); !errors.Is(err, ErrInvalid) {
		t.Errorf("an invalid site: %v", err)
	}
	s.Close()

	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = s.ClaimSite(t.Context(), "beta")
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), `"alpha"`) {
		t.Errorf("claim beta on alpha's ledger: %v, want ErrConflict naming alpha", err)
	}
	s.Close()

	ro, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if site, err := ro.Site(t.Context()); err != nil || site != "alpha" {
		t.Errorf("read-only site: %q %v", site, err)
	}
}

// ProbeWrite commits without appending; a closed store says so.
func TestProbeWrite(t *testing.T) {
	s := jsStore(t)
	if err := s.ProbeWrite(t.Context()); err != nil {
		t.Fatal(err)
	}
	if head, _ := s.Head(); head != 0 {
		t.Errorf("head %d after a probe", head)
	}
	s.Close()
	if err := s.ProbeWrite(t.Context()); !errors.Is(err, ErrClosed) {
		t.Fatalf("probe of a closed store: %v", err)
	}
}

// The free space beside a ledger is known where ProbeWrite looks at it.
func TestFreeBytes(t *testing.T) {
	free, ok := FreeBytes(t.TempDir())
	if runtime.GOOS == "linux" && (!ok || free == 0) {
		t.Fatalf("free bytes of a temp dir: %d, %v", free, ok)
	}
}
