package ledger

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
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

// A done context stops the site's reads and writes with its error, and
// claims nothing.
func TestSiteCallsHonourTheContext(t *testing.T) {
	s, _ := openTest(t, Options{})
	done, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.ClaimSite(done, "alpha"); !errors.Is(err, context.Canceled) {
		t.Errorf("claim: %v", err)
	}
	if _, err := s.Site(done); !errors.Is(err, context.Canceled) {
		t.Errorf("site: %v", err)
	}
	if err := s.ProbeWrite(done); !errors.Is(err, context.Canceled) {
		t.Errorf("probe: %v", err)
	}
	if site, err := s.Site(t.Context()); err != nil || site != "" {
		t.Errorf("site after a cancelled claim: %q %v", site, err)
	}
}

// A probe writes (a key of the meta bucket, no event), and a probe that
// commits clears the failure of the last batch: the server may take
// requests again.
func TestProbeWriteCommitsAndClearsTheLastFailure(t *testing.T) {
	ctx := t.Context()
	s, _ := openTest(t, Options{})
	if _, err := s.Append(ctx, cmd("a")); err != nil {
		t.Fatal(err)
	}
	s.db.MaxSize = 1 // the next transaction that needs a new page fails in Commit
	big := Event{Type: TypeConfig, Data: map[string]string{"blob": string(bytes.Repeat([]byte("x"), 1<<20))}}
	if _, err := s.Append(ctx, big); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("a batch over the file's cap: %v", err)
	}
	if err := s.WriteFailure(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("WriteFailure after a failed batch: %v", err)
	}
	s.db.MaxSize = 0
	if err := s.ProbeWrite(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteFailure(); err != nil {
		t.Errorf("WriteFailure after a probe committed: %v", err)
	}
	var probe []byte
	if err := s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketMeta); b != nil {
			probe = bytes.Clone(b.Get(metaProbe))
		}
		return nil
	}); err != nil || probe == nil {
		t.Errorf("the probe wrote nothing: %v", err)
	}
	if head, _ := s.Head(); head != 1 {
		t.Errorf("head %d after a probe", head)
	}
}

// A probe or a claim whose commit fails (the file cannot grow) says the
// ledger is unavailable, the kind a server answers 503 for, and claims
// nothing.
func TestProbeAndClaimThatCannotCommitAreUnavailable(t *testing.T) {
	ctx := t.Context()
	s, _ := openTest(t, Options{})
	// A reader keeps the pages later commits free from being reused, so
	// the small commits below soon need the file to grow, which it cannot.
	rd, err := s.db.Begin(false)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Rollback()
	s.db.MaxSize = 1
	var perr error
	for range 1000 {
		if perr = s.ProbeWrite(ctx); perr != nil {
			break
		}
	}
	if !errors.Is(perr, ErrUnavailable) {
		t.Fatalf("a probe that cannot commit: %v", perr)
	}
	if err := s.ClaimSite(ctx, "alpha"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("a claim that cannot commit: %v", err)
	}
	if site, err := s.Site(ctx); err != nil || site != "" {
		t.Errorf("site after a claim failed: %q %v", site, err)
	}
}
