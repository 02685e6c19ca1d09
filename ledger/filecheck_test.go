package ledger

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// closedLedger is the path of a closed ledger file holding n events.
func closedLedger(t testing.TB, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ledger.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	jsAppend(t, s, n)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// usedBytes is the length of the pages in use in the ledger file at path
// (its newest header's high water mark): bbolt grows the file ahead of
// them, 16 MiB at a time once its map is larger than that.
func usedBytes(t *testing.T, path string) int64 {
	t.Helper()
	m := fileMeta(t, path)
	return int64(m.pgid) * int64(m.pageSize)
}

// A ledger file cut short (a copy that stopped, a full disk at the wrong
// moment) is refused with ErrCorrupt and the way out, not a crash.
func TestOpenRefusesAFileCutShort(t *testing.T) {
	path := closedLedger(t, 3000)
	for _, size := range []int64{usedBytes(t, path) / 2, 3 * pageSize} {
		if err := os.Truncate(path, size); err != nil {
			t.Fatal(err)
		}
		for _, ro := range []bool{false, true} {
			_, err := Open(path, Options{ReadOnly: ro})
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "cut short") || !strings.Contains(err.Error(), "recledger restore") {
				t.Errorf("open of a file cut to %d bytes (read-only %v): %v", size, ro, err)
			}
		}
	}
}

// A file with no valid header (cut to one byte, or not a ledger) is
// refused as corrupt with the way out; bbolt's "invalid database" alone
// was all a walk got.
func TestOpenRefusesAFileWithoutAHeader(t *testing.T) {
	path := closedLedger(t, 10)
	ledger, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// A ledger whose headers give another format version, and one whose
	// headers' checksums no longer match (a byte of each changed).
	version := reheader(bytes.Clone(ledger), 4, boltVersion+1)
	unsealed := bytes.Clone(ledger)
	for _, off := range []int{0, pageSize} {
		unsealed[off+boltPageHeader+48] ^= 0x40 // the txid
	}
	// Text longer than a page but shorter than two of the ledger's: bbolt
	// refuses it for its size.
	text := bytes.Repeat([]byte("not a ledger\n"), 2000)
	for _, data := range [][]byte{{0x00}, []byte("not a ledger, but long enough to be read as one by bbolt"), text, version, unsealed} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		for _, ro := range []bool{false, true} {
			_, err := Open(path, Options{ReadOnly: ro})
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "no valid header") || !strings.Contains(err.Error(), "recledger restore") {
				t.Errorf("open of %.60q (read-only %v): %v", data, ro, err)
			}
		}
	}
}

// A fault while reading the mapped file is an error, not a crash.
func TestGuardedTurnsAFaultIntoAnError(t *testing.T) {
	err := guarded(func() error {
		var p *int
		_ = *p // a fault, as a page past the end of a mapped file gives
		return nil
	})
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("guarded: %v", err)
	}
}

// A page whose header was overwritten in the middle of the file (bbolt
// panics on it when reading) gives an error and a failed verify, not a
// crash.
func TestDamagedPageIsAnError(t *testing.T) {
	path := closedLedger(t, 3000)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	garbage := []byte{0xde, 0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef}
	if _, err := f.WriteAt(garbage, (usedBytes(t, path)/pageSize/3)*pageSize); err != nil {
		t.Fatal(err)
	}
	f.Close()
	s, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "recledger restore") {
			t.Fatalf("open: %v", err)
		}
		t.Logf("open: %v", err)
		return
	}
	defer s.Close()
	rep, err := s.Verify(t.Context())
	if err != nil || rep.OK || rep.Problem == "" {
		t.Fatalf("verify of a damaged file: %+v %v", rep, err)
	}
	t.Logf("verify: %s", rep.Problem)
	if _, err := s.Get(t.Context(), 2000); err == nil {
		t.Log("seq 2000 still readable")
	}
}

// FuzzCheckFileLength: whatever a file holds, the length check reads its
// meta pages without panicking, and refuses only with ErrCorrupt.
func FuzzCheckFileLength(f *testing.F) {
	f.Add([]byte{})
	f.Add(make([]byte, 2*4096))
	page := make([]byte, 80)
	copy(page[16:], []byte{0xed, 0xda, 0x0c, 0xed, 2, 0, 0, 0, 0, 0x10, 0, 0})
	f.Add(page)
	// A real ledger, cut to the pages in use (bbolt grows the file ahead
	// of them): mutations of its free-page list keep the meta pages
	// valid, so the list's checks are reached.
	path := closedLedger(f, 200)
	real, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	if rf, err := os.Open(path); err == nil {
		m0, _ := readBoltMeta(rf, 0)
		m1, _ := readBoltMeta(rf, pageSize)
		rf.Close()
		if n := max(m0.pgid, m1.pgid) * pageSize; n > 0 && n < uint64(len(real)) {
			real = real[:n]
		}
	}
	f.Add(real)
	// A header page giving a page size of 16 and a free-page list of 2^50
	// ids (fuzzing, with checksums made again: a negative bound let the
	// count through, and the allocation panicked).
	crafted := make([]byte, 128)
	le := binary.LittleEndian
	le.PutUint32(crafted[boltPageHeader:], boltMagic)
	le.PutUint32(crafted[boltPageHeader+4:], boltVersion)
	le.PutUint32(crafted[boltPageHeader+8:], 16)
	le.PutUint64(crafted[boltPageHeader+32:], 6) // free-page list
	le.PutUint64(crafted[boltPageHeader+40:], 8) // pages
	le.PutUint16(crafted[6*16+8:], boltFreelistFlag)
	le.PutUint16(crafted[6*16+10:], 0xFFFF)
	le.PutUint64(crafted[6*16+16:], 1<<50)
	f.Add(crafted)
	f.Fuzz(func(t *testing.T, data []byte) {
		data = append([]byte(nil), data...)
		intact := bytes.Equal(data, real)
		resealMetas(data) // so that mutations of the header's fields are read
		path := filepath.Join(t.TempDir(), "ledger.db")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		err := checkFileLength(path)
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("checkFileLength: %v", err)
		}
		if intact && err != nil {
			t.Fatalf("the intact file: %v", err)
		}
	})
}

// A checkpoint page whose element count was changed (a walk: 1 to 5)
// holds no event, so the chain is whole. Damaged under a running server,
// a checkpoint save, which reads the page and made bbolt panic, fails
// with ErrCorrupt instead of ending the process, and appends go on. The
// next start refuses the file (its page walk finds the element past its
// page), saying how to rebuild it.
func TestDamagedCheckpointPage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	jsAppend(t, s, 10)
	// Large enough for the checkpoints bucket to have a page of its own
	// (bbolt keeps a small bucket inside its parent's page).
	marker := append([]byte("checkpoint-state-marker"), bytes.Repeat([]byte{'x'}, 6<<10)...)
	if err := s.SaveCheckpoint(t.Context(), "v1", 10, marker, nil); err != nil {
		t.Fatal(err)
	}

	// The file is mapped shared: bytes written to it are what the next
	// transaction reads.
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	at := bytes.Index(b, marker)
	if at < 0 {
		t.Fatal("checkpoint state not found in the file")
	}
	page := at / pageSize * pageSize
	if flags := binary.LittleEndian.Uint16(b[page+8:]); flags != 0x02 {
		t.Fatalf("the checkpoint's page has flags %#x, not a leaf's", flags)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{b[page+10] ^ 0x04}, int64(page+10)); err != nil { // the element count
		t.Fatal(err)
	}
	f.Close()

	if err := s.SaveCheckpoint(t.Context(), "v1", 10, marker, nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("checkpoint save on a damaged page: %v", err)
	}
	jsAppend(t, s, 1)
	if h, _ := s.Head(); h != 11 {
		t.Fatalf("head after an append: %d", h)
	}
	s.Close()
	if _, err := Open(path, Options{}); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "recledger restore") {
		t.Fatalf("a start on the damaged file: %v", err)
	}
}

// An append that meets a damaged page of the events fails with
// ErrCorrupt, as a read does, instead of ending the process. (This damage
// is met reading the head, before the write transaction; a panic inside
// it is recovered the same way, writer.write.)
func TestAppendOnADamagedPage(t *testing.T) {
	path := closedLedger(t, 3000)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	at := bytes.LastIndex(b, []byte(`"seq":2990,`))
	if at < 0 {
		t.Fatal("event 2990 not found in the file")
	}
	page := at / pageSize * pageSize
	if flags := binary.LittleEndian.Uint16(b[page+8:]); flags != 0x02 {
		t.Fatalf("the event's page has flags %#x, not a leaf's", flags)
	}
	binary.LittleEndian.PutUint16(b[page+10:], binary.LittleEndian.Uint16(b[page+10:])+900)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, Options{})
	if err != nil {
		t.Logf("open: %v", err)
		if !errors.Is(err, ErrCorrupt) {
			t.Fatal(err)
		}
		return
	}
	defer s.Close()
	_, err = s.Append(t.Context(), Event{Type: TypeCallSignal, Data: CallSignal{CallID: "c-1", Extension: "3420", Type: "ringing"}})
	t.Logf("append: %v", err)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("append on a damaged page: %v", err)
	}
}

// A leaf page whose second key was changed from seq 2 to seq 65,282 (a
// walk's one flipped byte): a cursor seeking seq 2 lands past the head,
// and the scan ended there as if the ledger held one event, so replay
// printed the digest of that one event and exited 0. It is an error now,
// for replay and verify alike.
func TestScanRefusesALedgerCutByADamagedKey(t *testing.T) {
	path := closedLedger(t, 3000)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	damaged := false
	for off := 0; off+pageSize <= len(data) && !damaged; off += pageSize {
		p := data[off : off+pageSize]
		flags, count := binary.LittleEndian.Uint16(p[8:]), binary.LittleEndian.Uint16(p[10:])
		if flags != 0x02 || count < 2 { // a leaf page with a second element
			continue
		}
		el := p[32:] // element 1: flags, pos, ksize, vsize
		pos, ksize := binary.LittleEndian.Uint32(el[4:]), binary.LittleEndian.Uint32(el[8:])
		if k := 32 + int(pos); ksize == 8 && k+8 <= len(p) && bytes.Equal(p[k:k+8], seqKey(2)) {
			p[k+6] ^= 0xff
			damaged = true
		}
	}
	if !damaged {
		t.Fatal("no leaf page holds seq 2 as its second key")
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n := 0
	err = s.Scan(t.Context(), 0, func(Envelope) error { n++; return nil })
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "the head is seq 3000") {
		t.Fatalf("scan read %d events and ended with %v", n, err)
	}
	rep, err := s.Verify(t.Context())
	if err != nil || rep.OK || rep.FirstBad != 2 || !strings.Contains(rep.Problem, "recledger restore") {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}

// Opening a ledger file for writing commits nothing when its buckets are
// there: a commit on a damaged file can hand out pages still in use, and
// a walk saw a start refused right after its open leave the file changed.
func TestOpenForWritingCommitsNothing(t *testing.T) {
	path := closedLedger(t, 10)
	txid := func() uint64 {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		m0, _ := readBoltMeta(f, 0)
		m1, _ := readBoltMeta(f, int64(m0.pageSize))
		return max(m0.txid, m1.txid)
	}
	before := txid()
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if after := txid(); after != before {
		t.Fatalf("open and close committed: txid %d, then %d", before, after)
	}
}
