package uploadworker

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseManifest(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		files    []string
		err      string
	}{
		{name: "contacts and updates",
			in:    `{"day":"2026-11-23","contacts":[{"contact_id":"A1"},{"contact_id":"B2"}],"metadata_updates":[{"contact_id":"A1","seq":42}],"counts":{},"chain_head":"ff"}`,
			files: []string{"A1.json", "B2.json", "A1.metadata.42.json"}},
		{name: "empty day", in: `{"day":"2026-11-23","contacts":[]}`},
		{name: "bad day", in: `{"day":"2026-13-01","contacts":[]}`, err: "not YYYY-MM-DD"},
		{name: "path in id", in: `{"day":"2026-11-23","contacts":[{"contact_id":"../x"}]}`, err: "safe file name"},
		{name: "dot id", in: `{"day":"2026-11-23","contacts":[{"contact_id":".upload-x"}]}`, err: "safe file name"},
		{name: "no seq", in: `{"day":"2026-11-23","metadata_updates":[{"contact_id":"A"}]}`, err: "seq"},
		{name: "not json", in: `nope`, err: "manifest"},
		{name: "newer format", in: `{"format":"recledger.manifest/2","day":"2026-11-23","contacts":[]}`, err: "unknown manifest format"},
		{name: "contact twice", in: `{"day":"2026-11-23","contacts":[{"contact_id":"A1","a":1},{"contact_id":"A1","a":2}]}`, err: "entries 0 and 1 both ask for the file A1.json"},
		{name: "update twice", in: `{"day":"2026-11-23","metadata_updates":[{"contact_id":"A","seq":3},{"contact_id":"A","seq":"3"}]}`, err: "both ask for the file A.metadata.3.json"},
		{name: "contact named as an update", in: `{"day":"2026-11-23","contacts":[{"contact_id":"A.metadata.3"}],"metadata_updates":[{"contact_id":"A","seq":3}]}`, err: "both ask for the file A.metadata.3.json"},
		{name: "current format", in: `{"format":"recledger.manifest/1","day":"2026-11-23","contacts":[{"contact_id":"X"}]}`, files: []string{"X.json"}},
		// seqs count from 1, ids are at most 128 characters (mutation testing)
		{name: "seq 0", in: `{"day":"2026-11-23","metadata_updates":[{"contact_id":"A","seq":0}]}`, err: "seq"},
		{name: "seq \"0\"", in: `{"day":"2026-11-23","metadata_updates":[{"contact_id":"A","seq":"0"}]}`, err: "seq"},
		{name: "id of 128", in: `{"day":"2026-11-23","contacts":[{"contact_id":"` + strings.Repeat("A", 128) + `"}]}`, files: []string{strings.Repeat("A", 128) + ".json"}},
		{name: "id of 129", in: `{"day":"2026-11-23","contacts":[{"contact_id":"` + strings.Repeat("A", 129) + `"}]}`, err: "safe file name"},
		// an update's id is checked as a contact's is
		{name: "path in an update's id", in: `{"day":"2026-11-23","metadata_updates":[{"contact_id":"../x","seq":1}]}`, err: "safe file name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseManifest([]byte(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range m.Files {
				got = append(got, f.Name)
			}
			if strings.Join(got, ",") != strings.Join(tc.files, ",") {
				t.Fatalf("files %v, want %v", got, tc.files)
			}
		})
	}
}

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(`{"day":"2026-11-23","contacts":[{"contact_id":"A1"}],"metadata_updates":[{"contact_id":"A1","seq":"7"}]}`))
	f.Add([]byte(`{"day":"2026-11-23","contacts":[{"contact_id":"a/b"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data)
		if err != nil {
			return
		}
		names := map[string]bool{}
		for _, file := range m.Files {
			if names[file.Name] {
				t.Fatalf("file %q asked for twice", file.Name)
			}
			names[file.Name] = true
			if file.Name != filepath.Base(file.Name) || strings.HasPrefix(file.Name, ".") || !strings.HasPrefix(file.Name, file.ContactID+".") {
				t.Fatalf("unsafe file name %q", file.Name)
			}
		}
	})
}

func TestWriteAtomicSkipsIdentical(t *testing.T) {
	dir := t.TempDir()
	if res, err := writeAtomic(dir, "a.json", []byte(`{"x":1}`)); err != nil || res != written {
		t.Fatalf("first write: %v %v", res, err)
	}
	info1, _ := os.Stat(filepath.Join(dir, "a.json"))
	time.Sleep(10 * time.Millisecond)
	if res, err := writeAtomic(dir, "a.json", []byte(`{"x":1}`)); err != nil || res != skipped {
		t.Fatalf("second write: %v %v", res, err)
	}
	info2, _ := os.Stat(filepath.Join(dir, "a.json"))
	if !info1.ModTime().Equal(info2.ModTime()) {
		t.Fatal("identical rewrite touched the file")
	}
	if res, err := writeAtomic(dir, "a.json", []byte(`{"x":2}`)); err != nil || res != replaced {
		t.Fatalf("changed write: %v %v", res, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("%d entries, want 1 (no temp files)", len(entries))
	}
}

func TestSweepTemps(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, tempPrefix+"a.json.123")
	fresh := filepath.Join(dir, tempPrefix+"b.json.456")
	keep := filepath.Join(dir, "c.json")
	for _, p := range []string{old, fresh, keep} {
		if err := os.WriteFile(p, []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	// A final file is kept however old it is: only temp files are swept.
	for _, p := range []string{old, keep} {
		if err := os.Chtimes(p, now.Add(-time.Hour), now.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	n, err := sweepTemps(dir, now.Add(-time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("swept %d, %v; want 1", n, err)
	}
	for p, want := range map[string]bool{old: false, fresh: true, keep: true} {
		if _, err := os.Stat(p); (err == nil) != want {
			t.Errorf("%s exists=%v, want %v", filepath.Base(p), err == nil, want)
		}
	}
}
