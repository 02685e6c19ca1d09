package ledger

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/fnv"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fileMeta reads the newest header of the file at path.
func fileMeta(t testing.TB, path string) boltMeta {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, ok := newestMeta(f)
	if !ok {
		t.Fatal("no valid header")
	}
	return m
}

// A whole ledger, with a checkpoint (its buckets nested and its sections
// in overflow pages), passes the page walk.
func TestCheckPagesOfAWholeFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	jsAppend(t, s, 3000)
	big := []byte(strings.Repeat("section ", 20000)) // 160 KB: overflow pages
	if err := s.SaveCheckpoint(t.Context(), "v", 3000, []byte(`{"head":1}`), []Section{{Key: "v/a", Data: big}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := CheckPages(t.Context(), path)
	if err != nil || !rep.OK || rep.Pages != fileMeta(t, path).pgid || rep.Problem() != "" {
		t.Fatalf("a whole file: %+v %v", rep, err)
	}
}

// Damage a write would make worse, which the chain check cannot see
// (walks of damaged copies): each is a finding, none a crash.
func TestCheckPagesFindsDamage(t *testing.T) {
	le := binary.LittleEndian
	leafPages := func(data []byte) []int {
		var out []int
		for off := 2 * pageSize; off+pageSize <= len(data); off += pageSize {
			if le.Uint64(data[off:]) == uint64(off/pageSize) && le.Uint16(data[off+8:]) == boltLeafFlag {
				out = append(out, off/pageSize)
			}
		}
		return out
	}
	for _, c := range []struct {
		name, want string
		damage     func(t *testing.T, data []byte, m boltMeta)
	}{
		{"a leaf page on the free-page list", "in use and on the free-page list", func(t *testing.T, data []byte, m boltMeta) {
			fl := data[int(m.freelist)*pageSize:]
			n := le.Uint16(fl[10:])
			if n == 0xFFFF || boltPageHeader+int(n+1)*8 > pageSize {
				t.Skip("free-page list of an unexpected shape")
			}
			le.PutUint64(fl[boltPageHeader+int(n)*8:], uint64(leafPages(data)[0]))
			le.PutUint16(fl[10:], n+1)
		}},
		{"a leaf page whose overflow claims the next page", "reached twice", func(t *testing.T, data []byte, m boltMeta) {
			leaves := leafPages(data)
			for i, p := range leaves {
				if i+1 < len(leaves) && leaves[i+1] == p+1 {
					le.PutUint32(data[p*pageSize+12:], 1)
					return
				}
			}
			t.Skip("no two leaf pages side by side")
		}},
		{"a page that names another", "names itself page", func(t *testing.T, data []byte, m boltMeta) {
			p := leafPages(data)[1]
			le.PutUint64(data[p*pageSize:], 7777)
		}},
		{"a key longer than its page", "runs past the page", func(t *testing.T, data []byte, m boltMeta) {
			p := leafPages(data)[0]
			le.PutUint32(data[p*pageSize+boltPageHeader+12:], 1<<20) // element 0's value size
		}},
		{"the high water mark below a page in use", "outside the file's", func(t *testing.T, data []byte, m boltMeta) {
			for _, off := range []int{0, pageSize} {
				meta := data[off+boltPageHeader:]
				le.PutUint64(meta[40:], le.Uint64(meta[40:])-5)
				h := fnv.New64a()
				h.Write(meta[:56])
				le.PutUint64(meta[56:], h.Sum64())
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := closedLedger(t, 3000)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			c.damage(t, data, fileMeta(t, path))
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			rep, err := CheckPages(t.Context(), path)
			if err != nil || rep.OK || !strings.Contains(rep.Problem(), c.want) {
				t.Fatalf("%+v %v; want %q", rep, err, c.want)
			}
			t.Log(rep.Problem())
		})
	}
}

// FuzzCheckPages: whatever a file holds, the page walk ends, without a
// panic, with a report or an I/O error.
func FuzzCheckPages(f *testing.F) {
	path := closedLedger(f, 300)
	real, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	if m := fileMeta(f, path); m.pgid > 0 && int(m.pgid)*pageSize < len(real) {
		real = real[:int(m.pgid)*pageSize]
	}
	f.Add(real, 0, byte(0))
	f.Add(real, 2*pageSize+10, byte(0xff))
	f.Add(real, 3*pageSize+40, byte(0x7f))
	// Crafted headers: a page size too small for a page's header, or one
	// that is no power of two (fuzzing; they made the walk panic).
	for _, ps := range []uint32{1, 16, 4095} {
		crafted := append([]byte(nil), real[:2*pageSize]...)
		binary.LittleEndian.PutUint32(crafted[boltPageHeader+8:], ps)
		f.Add(crafted, -1, byte(0))
	}
	f.Fuzz(func(t *testing.T, data []byte, at int, x byte) {
		data = append([]byte(nil), data...)
		mutated := at >= 0 && at < len(data) && x != 0
		if mutated {
			data[at] ^= x
		}
		// The header pages' checksums made again, so that mutations of
		// their fields are read, not refused as a bad checksum.
		resealMetas(data)
		path := filepath.Join(t.TempDir(), "ledger.db")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		rep, err := CheckPages(t.Context(), path)
		if err != nil && !errors.Is(err, ErrUnavailable) {
			t.Fatalf("check pages: %v", err)
		}
		if bytes.Equal(data, real) && (!rep.OK || err != nil) {
			t.Fatalf("the intact file: %+v, %v", rep, err)
		}
	})
}

// A start refuses a file whose free-page list names a page of events in
// use: bbolt would hand it out, and the first write overwrite the events
// (a walk served such a file, and lost 1,054 events). Read-only opens,
// which never write, still take it (verify names the damage).
func TestOpenForWritingRefusesAFreeListNamingEvents(t *testing.T) {
	path := closedLedger(t, 3000)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	m := fileMeta(t, path)
	leaf := 0
	for off := 2 * pageSize; off+pageSize <= len(data) && leaf == 0; off += pageSize {
		if le.Uint64(data[off:]) == uint64(off/pageSize) && le.Uint16(data[off+8:]) == boltLeafFlag {
			leaf = off / pageSize
		}
	}
	fl := data[int(m.freelist)*pageSize:]
	n := le.Uint16(fl[10:])
	if leaf == 0 || n == 0xFFFF || boltPageHeader+int(n+1)*8 > pageSize {
		t.Fatalf("no leaf page (%d), or a free-page list of %d", leaf, n)
	}
	le.PutUint64(fl[boltPageHeader+int(n)*8:], uint64(leaf))
	le.PutUint16(fl[10:], n+1)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, Options{}); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "in use and on the free-page list") ||
		!strings.Contains(err.Error(), "recledger restore") {
		t.Fatalf("open for writing: %v", err)
	}
	ro, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only open: %v", err)
	}
	ro.Close()
	after, _ := os.ReadFile(path)
	if !bytes.Equal(after, data) {
		t.Fatal("the refused open changed the file")
	}
}

// resealMetas writes the FNV-64a checksum of the meta page at offset 0,
// and of the one at the page size it gives when that is within data, as
// bbolt computes it.
func resealMetas(data []byte) {
	le := binary.LittleEndian
	offsets := []int{0}
	if len(data) >= boltPageHeader+boltMetaLen {
		if ps := int(le.Uint32(data[boltPageHeader+8:])); ps > 0 {
			offsets = append(offsets, ps)
		}
	}
	for _, off := range offsets {
		if off < 0 || off+boltPageHeader+boltMetaLen > len(data) {
			continue
		}
		meta := data[off+boltPageHeader:]
		h := fnv.New64a()
		h.Write(meta[:56])
		le.PutUint64(meta[56:], h.Sum64())
	}
}

// A start takes a whole file whose events include one larger than a page
// (its leaf page runs on into overflow pages): the light walk claims the
// events' leaves unread, and so does not look for pages neither reached
// nor free, which their overflow pages would seem to be.
func TestOpenForWritingTakesAnEventLargerThanAPage(t *testing.T) {
	path := closedLedger(t, 3000)
	s := openFile(t, path, Options{})
	big := Event{Type: TypeCommand, Data: Command{Command: "metadata", Params: []Param{{Key: "note", Value: strings.Repeat("n", 100<<10)}}}}
	if _, err := s.Append(t.Context(), big); err != nil {
		t.Fatal(err)
	}
	jsAppend(t, s, 10)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("a start on a whole file: %v", err)
	}
	defer s.Close()
	mustVerify(t, s, 3011)
}

// A small bucket kept inside its parent's page (here the sections of a
// checkpoint whose last section is empty: its key ends the bucket's bytes)
// is read from those bytes, whole, to its last byte.
func TestCheckPagesReadsABucketKeptInsideItsParentToItsEnd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	jsAppend(t, s, 10)
	if err := s.SaveCheckpoint(t.Context(), "v", 10, []byte(`{"head":1}`), []Section{{Key: "v/a", Data: []byte("a")}, {Key: "v/z"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if rep, err := CheckPages(t.Context(), path); err != nil || !rep.OK {
		t.Fatalf("a whole file: %+v %v", rep, err)
	}
}
