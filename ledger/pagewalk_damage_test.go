package ledger

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// pageOf is page id of a file's bytes, as the walk reads it.
type pageOf struct {
	data []byte
	id   int
}

func (p pageOf) b() []byte     { return p.data[p.id*pageSize : (p.id+1)*pageSize] }
func (p pageOf) flags() uint16 { return binary.LittleEndian.Uint16(p.b()[8:]) }
func (p pageOf) count() int    { return int(binary.LittleEndian.Uint16(p.b()[10:])) }

// key is element i's key, in place: a leaf's element (flags, pos, ksize,
// vsize) or a branch's (pos, ksize, child).
func (p pageOf) key(i int) []byte {
	le := binary.LittleEndian
	e := boltPageHeader + i*boltElemLen
	r := p.b()[e:]
	pos, ksize := le.Uint32(r[4:]), le.Uint32(r[8:])
	if p.flags() == boltBranchFlag {
		pos, ksize = le.Uint32(r[0:]), le.Uint32(r[4:])
	}
	return p.b()[e+int(pos) : e+int(pos)+int(ksize)]
}

// child is a branch element's page.
func (p pageOf) child(i int) int {
	return int(binary.LittleEndian.Uint64(p.b()[boltPageHeader+i*boltElemLen+8:]))
}

func (p pageOf) setChild(i, id int) {
	binary.LittleEndian.PutUint64(p.b()[boltPageHeader+i*boltElemLen+8:], uint64(id))
}

// freeList is the file's free-page list and its count, in its short form
// with room for one more id; it skips the test when the list is not so.
func freeList(t *testing.T, data []byte, m boltMeta) (pageOf, int) {
	t.Helper()
	fl := pageOf{data, int(m.freelist)}
	n := fl.count()
	if n == 0xFFFF || boltPageHeader+(n+1)*8 > pageSize {
		t.Skip("a free-page list of an unexpected shape")
	}
	return fl, n
}

// addFree lists page id free after the n ids of free-page list p.
func (p pageOf) addFree(n int, id uint64) {
	binary.LittleEndian.PutUint64(p.b()[boltPageHeader+n*8:], id)
	binary.LittleEndian.PutUint16(p.b()[10:], uint16(n+1))
}

// longForm writes the file's free-page list in its long form (count
// 0xFFFF, the count in the first slot), as bbolt does past 65,534 ids.
func longForm(t *testing.T, data []byte, m boltMeta) []byte {
	t.Helper()
	fl, n := freeList(t, data, m)
	ids := append([]byte(nil), fl.b()[boltPageHeader:boltPageHeader+n*8]...)
	binary.LittleEndian.PutUint64(fl.b()[boltPageHeader:], uint64(n))
	copy(fl.b()[boltPageHeader+8:], ids)
	binary.LittleEndian.PutUint16(fl.b()[10:], 0xFFFF)
	return data
}

// damagedLedger is the path of a closed ledger of 3,000 events that
// damage changed.
func damagedLedger(t *testing.T, damage func(t *testing.T, data []byte, m boltMeta) []byte) string {
	t.Helper()
	path := closedLedger(t, 3000)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, damage(t, data, fileMeta(t, path)), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// bucketElem is the leaf element of bucket name in the file's root page
// (from the newest header), in place: its 16 bytes and its value.
func bucketElem(t *testing.T, data []byte, m boltMeta, name []byte) (elem, value []byte) {
	t.Helper()
	le := binary.LittleEndian
	root := pageOf{data, int(m.root)}
	for i := range root.count() {
		if string(root.key(i)) != string(name) || root.flags() != boltLeafFlag {
			continue
		}
		e := boltPageHeader + i*boltElemLen
		r := root.b()[e:]
		pos, ksize, vsize := le.Uint32(r[4:]), le.Uint32(r[8:]), le.Uint32(r[12:])
		v := int(pos) + int(ksize)
		return r[:boltElemLen], r[v : v+int(vsize)]
	}
	t.Fatalf("no bucket %s in the root page", name)
	return nil, nil
}

// eventsRoot is the root page of the events bucket.
func eventsRoot(t *testing.T, data []byte, m boltMeta) pageOf {
	t.Helper()
	_, v := bucketElem(t, data, m, bucketEvents)
	return pageOf{data, int(binary.LittleEndian.Uint64(v))}
}

// eventsBranch is the root page of the events bucket: a branch page whose
// first two children are leaf pages of several events each.
func eventsBranch(t *testing.T, data []byte, m boltMeta) pageOf {
	t.Helper()
	p := eventsRoot(t, data, m)
	if p.flags() == boltBranchFlag && p.count() >= 2 {
		c0, c1 := pageOf{data, p.child(0)}, pageOf{data, p.child(1)}
		if c0.flags() == boltLeafFlag && c1.flags() == boltLeafFlag && c0.count() > 1 && c1.count() > 1 {
			return p
		}
	}
	t.Fatal("the events bucket's root is not a branch page over leaf pages")
	return pageOf{}
}

// Each check of the page walk, on damage made for it: mutation testing
// found each could be dropped, or moved by one, with the earlier damage
// cases still found.
func TestCheckPagesFindsEachDamage(t *testing.T) {
	le := binary.LittleEndian
	for _, c := range []struct {
		name, want string
		damage     func(t *testing.T, data []byte, m boltMeta) []byte
	}{
		{"keys out of order", "is not after key", func(t *testing.T, data []byte, m boltMeta) []byte {
			leaf := pageOf{data, eventsBranch(t, data, m).child(0)}
			copy(leaf.key(1), leaf.key(0)) // equal keys: not after
			return data
		}},
		{"a key before its parent's bound", "is before its parent's bound", func(t *testing.T, data []byte, m boltMeta) []byte {
			leaf := pageOf{data, eventsBranch(t, data, m).child(1)}
			clear(leaf.key(0))
			return data
		}},
		{"a key at the next key of its parent", "is not before the next key of its parent", func(t *testing.T, data []byte, m boltMeta) []byte {
			br := eventsBranch(t, data, m)
			leaf := pageOf{data, br.child(0)}
			copy(leaf.key(leaf.count()-1), br.key(1))
			return data
		}},
		{"a page of another type", "has type 0x10, not 0x2", func(t *testing.T, data []byte, m boltMeta) []byte {
			le.PutUint16(pageOf{data, eventsBranch(t, data, m).child(0)}.b()[8:], boltFreelistFlag)
			return data
		}},
		{"overflow up to the file's end", "overflow pages run past", func(t *testing.T, data []byte, m boltMeta) []byte {
			id := eventsBranch(t, data, m).child(0)
			le.PutUint32(pageOf{data, id}.b()[12:], uint32(int(m.pgid)-id))
			return data
		}},
		{"a child at the file's end", "outside the file's", func(t *testing.T, data []byte, m boltMeta) []byte {
			eventsBranch(t, data, m).setChild(0, int(m.pgid))
			return data
		}},
		{"a branch page with no element", "a branch page with no element", func(t *testing.T, data []byte, m boltMeta) []byte {
			le.PutUint16(eventsBranch(t, data, m).b()[10:], 0)
			return data
		}},
		{"a page neither reached nor free", "neither reached from the root nor free", func(t *testing.T, data []byte, m boltMeta) []byte {
			fl := pageOf{data, int(m.freelist)}
			n := fl.count()
			if n == 0 || n == 0xFFFF {
				t.Skip("no free page to take off the list")
			}
			le.PutUint16(fl.b()[10:], uint16(n-1))
			return data
		}},
		{"the first page moved off the free-page list", "page 2: neither reached from the root nor free", func(t *testing.T, data []byte, m boltMeta) []byte {
			// Page 2's bytes copied to a free page, which its parent now
			// names and the list no longer holds: page 2 is left unclaimed.
			br := eventsBranch(t, data, m)
			fl, n := freeList(t, data, m)
			if br.child(0) != 2 || n == 0 {
				t.Skip("page 2 is not the events' first leaf, or no page is free")
			}
			to := int(le.Uint64(fl.b()[boltPageHeader+(n-1)*8:]))
			copy(pageOf{data, to}.b(), pageOf{data, 2}.b())
			le.PutUint64(pageOf{data, to}.b(), uint64(to))
			br.setChild(0, to)
			le.PutUint16(fl.b()[10:], uint16(n-1))
			return data
		}},
		{"a page on the free-page list twice", "on the free-page list twice", func(t *testing.T, data []byte, m boltMeta) []byte {
			fl, n := freeList(t, data, m)
			if n == 0 {
				t.Skip("no free page to list twice")
			}
			fl.addFree(n, le.Uint64(fl.b()[boltPageHeader:]))
			return data
		}},
		{"a free page at the file's end", "names page", func(t *testing.T, data []byte, m boltMeta) []byte {
			fl, n := freeList(t, data, m)
			fl.addFree(n, m.pgid)
			return data
		}},
		{"a file one page short", "the file is shorter than its", func(t *testing.T, data []byte, m boltMeta) []byte {
			return data[:(int(m.pgid)-1)*pageSize]
		}},
		{"a page size bbolt does not write", "a page size of 1000 bytes", func(t *testing.T, data []byte, m boltMeta) []byte {
			le.PutUint32(data[boltPageHeader+8:], 1000)
			resealMetas(data)
			return data
		}},
		{"a bucket's value shorter than a bucket's", "is a bucket of 8 bytes", func(t *testing.T, data []byte, m boltMeta) []byte {
			e, _ := bucketElem(t, data, m, bucketEvents)
			le.PutUint32(e[12:], 8)
			return data
		}},
		{"a bucket kept inside its parent that is not a leaf page", "an inline bucket that is not a leaf page", func(t *testing.T, data []byte, m boltMeta) []byte {
			_, v := bucketElem(t, data, m, bucketCheckpoints)
			if le.Uint64(v) != 0 {
				t.Skip("the checkpoints bucket has a page of its own")
			}
			le.PutUint16(v[16+8:], boltFreelistFlag)
			return data
		}},
		{"a long free-page list claiming 2^61 pages", "the free-page list claims 2305843009213693952 pages", func(t *testing.T, data []byte, m boltMeta) []byte {
			data = longForm(t, data, m)
			le.PutUint64(pageOf{data, int(m.freelist)}.b()[boltPageHeader:], 1<<61) // 2^61 ids of 8 bytes: 2^64 bytes, 0 in a uint64
			return data
		}},
		{"headers of another format", "no valid header page", func(t *testing.T, data []byte, m boltMeta) []byte {
			return reheader(data, 0, boltMagic+1)
		}},
		{"headers of another version", "no valid header page", func(t *testing.T, data []byte, m boltMeta) []byte {
			return reheader(data, 4, boltVersion+1)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := damagedLedger(t, c.damage)
			rep, err := CheckPages(t.Context(), path)
			if err != nil || rep.OK || !strings.Contains(rep.Problem(), c.want) {
				t.Fatalf("%+v %v; want %q", rep, err, c.want)
			}
		})
	}
}

// A report keeps the first findings and counts the others: one damaged
// branch page makes every page under it a finding.
func TestCheckPagesCountsFindingsPastTheFirst(t *testing.T) {
	path := damagedLedger(t, func(t *testing.T, data []byte, m boltMeta) []byte {
		binary.LittleEndian.PutUint16(eventsBranch(t, data, m).b()[10:], 0)
		return data
	})
	rep, err := CheckPages(t.Context(), path)
	if err != nil || len(rep.Problems) != maxFileProblems || rep.More == 0 || !strings.Contains(rep.Problem(), "more)") {
		t.Fatalf("%d findings kept, %d more, %v: %s", len(rep.Problems), rep.More, err, rep.Problem())
	}
}

// The walk starts from the newest header, whichever of the two it is: a
// file whose first header is the older one is whole too.
func TestCheckPagesReadsTheNewestHeader(t *testing.T) {
	for extra := range 2 {
		path := filepath.Join(t.TempDir(), "ledger.db")
		s, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		jsAppend(t, s, 3000+extra) // one more transaction: the other header
		// The last transaction grows the file: the two headers differ.
		big := Event{Type: TypeCommand, Data: Command{Command: "metadata", Params: []Param{{Key: "note", Value: strings.Repeat("n", 100<<10)}}}}
		if _, err := s.Append(t.Context(), big); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		m0, _ := readBoltMeta(f, 0)
		m1, _ := readBoltMeta(f, pageSize)
		f.Close()
		newest, older := m0, m1
		if m1.txid > m0.txid {
			newest, older = m1, m0
		}
		rep, err := CheckPages(t.Context(), path)
		if err != nil || !rep.OK || rep.Pages != newest.pgid || newest.pgid == older.pgid {
			t.Fatalf("a whole file (headers of transactions %d and %d, %d and %d pages): %+v %v", m0.txid, m1.txid, m0.pgid, m1.pgid, rep, err)
		}
	}
}

// A free-page list in its long form (count 0xFFFF, the count in the first
// slot: bbolt writes it past 65,534 free pages) is read as such.
func TestCheckPagesReadsALongFreeList(t *testing.T) {
	if rep, err := CheckPages(t.Context(), damagedLedger(t, longForm)); err != nil || !rep.OK {
		t.Fatalf("a whole file with its free-page list in the long form: %+v %v", rep, err)
	}
}

// The light walk a start makes claims the events bucket's leaf pages by
// their parent's word: a leaf claimed twice, or one outside the file, is
// still found.
func TestLightCheckPagesFindsEventsLeavesClaimedWrong(t *testing.T) {
	for _, c := range []struct {
		name, want string
		damage     func(br pageOf, m boltMeta)
	}{
		{"a leaf claimed twice", "reached twice (the second time as a leaf)", func(br pageOf, m boltMeta) { br.setChild(1, br.child(0)) }},
		{"a leaf at the file's end", "outside the file's", func(br pageOf, m boltMeta) { br.setChild(br.count()-1, int(m.pgid)) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := damagedLedger(t, func(t *testing.T, data []byte, m boltMeta) []byte {
				c.damage(eventsBranch(t, data, m), m)
				return data
			})
			rep, err := checkPages(t.Context(), path, true)
			if err != nil || rep.OK || !strings.Contains(rep.Problem(), c.want) {
				t.Fatalf("light walk: %+v %v; want %q", rep, err, c.want)
			}
		})
	}
}

// The checks a start makes before bbolt opens the file (checkFileLength):
// each refusal on damage made for it, and a long free-page list or none
// at all taken.
func TestCheckFileLengthChecks(t *testing.T) {
	le := binary.LittleEndian
	setMeta := func(data []byte, field int, v uint64) {
		for _, off := range []int{0, pageSize} {
			le.PutUint64(data[off+boltPageHeader+field:], v)
		}
		resealMetas(data)
	}
	for _, c := range []struct {
		name, want string // want "" : taken
		damage     func(t *testing.T, data []byte, m boltMeta) []byte
	}{
		{"whole", "", func(t *testing.T, data []byte, m boltMeta) []byte { return data }},
		{"one page short", "cut short", func(t *testing.T, data []byte, m boltMeta) []byte {
			return data[:(int(m.pgid)-1)*pageSize]
		}},
		{"a page size of 256", "page size of 256", func(t *testing.T, data []byte, m boltMeta) []byte {
			le.PutUint32(data[boltPageHeader+8:], 256)
			resealMetas(data)
			return data
		}},
		{"no free-page list kept", "", func(t *testing.T, data []byte, m boltMeta) []byte {
			setMeta(data, 32, boltNoFreelist)
			return data
		}},
		{"the free-page list at the file's end", "outside its", func(t *testing.T, data []byte, m boltMeta) []byte {
			setMeta(data, 32, m.pgid)
			return data
		}},
		{"a free page 1", "names page 1", func(t *testing.T, data []byte, m boltMeta) []byte {
			fl, n := freeList(t, data, m)
			fl.addFree(n, 1)
			return data
		}},
		{"a free-page list longer than its page", "more than its", func(t *testing.T, data []byte, m boltMeta) []byte {
			le.PutUint16(pageOf{data, int(m.freelist)}.b()[10:], pageSize/8)
			return data
		}},
		{"a free-page list overflowing to the file's end", "more than its", func(t *testing.T, data []byte, m boltMeta) []byte {
			le.PutUint32(pageOf{data, int(m.freelist)}.b()[12:], uint32(m.pgid-m.freelist))
			return data
		}},
		{"a free-page list in its long form", "", longForm},
		{"a page size of 32 MiB", "page size of 33554432", func(t *testing.T, data []byte, m boltMeta) []byte {
			le.PutUint32(data[boltPageHeader+8:], 32<<20)
			resealMetas(data)
			return data
		}},
		{"the free-page list naming the root page", "not the free-page list", func(t *testing.T, data []byte, m boltMeta) []byte {
			setMeta(data, 32, m.root)
			return data
		}},
		{"a free-page list one id longer than its page", "more than its", func(t *testing.T, data []byte, m boltMeta) []byte {
			le.PutUint16(pageOf{data, int(m.freelist)}.b()[10:], (pageSize-boltPageHeader)/8+1)
			return data
		}},
		{"a long free-page list of one page", "", func(t *testing.T, data []byte, m boltMeta) []byte {
			if _, n := freeList(t, data, m); n == 0 {
				t.Skip("no free page")
			}
			data = longForm(t, data, m)
			le.PutUint64(pageOf{data, int(m.freelist)}.b()[boltPageHeader:], 1)
			return data
		}},
		{"cut to its pages in use", "", func(t *testing.T, data []byte, m boltMeta) []byte {
			return data[:int(m.pgid)*pageSize]
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := checkFileLength(damagedLedger(t, c.damage))
			if c.want == "" && err != nil || c.want != "" && (!errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), c.want)) {
				t.Fatalf("%v; want %q", err, c.want)
			}
		})
	}
}

// The one-line problem counts the findings after the first, however few:
// two findings read as the first "(and 1 more)".
func TestCheckPagesProblemCountsASecondFinding(t *testing.T) {
	path := damagedLedger(t, func(t *testing.T, data []byte, m boltMeta) []byte {
		fl, n := freeList(t, data, m)
		if n == 0 || boltPageHeader+(n+2)*8 > pageSize {
			t.Skip("no free page to list twice more")
		}
		first := binary.LittleEndian.Uint64(fl.b()[boltPageHeader:])
		fl.addFree(n, first)
		fl.addFree(n+1, first)
		return data
	})
	rep, err := CheckPages(t.Context(), path)
	if err != nil || len(rep.Problems) != 2 || !strings.HasSuffix(rep.Problem(), "on the free-page list twice (and 1 more)") {
		t.Fatalf("%+v %v: %s", rep, err, rep.Problem())
	}
}

// The light walk a start makes reads the events bucket's branch pages at
// every level, claiming only the leaves unread: in a ledger whose events
// tree has three levels, a leaf on the free-page list is still found.
func TestLightCheckPagesReadsEveryBranchLevelOfTheEvents(t *testing.T) {
	path := closedLedger(t, 30000)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := fileMeta(t, path)
	root := eventsRoot(t, data, m)
	below := pageOf{data, root.child(0)}
	if root.flags() != boltBranchFlag || below.flags() != boltBranchFlag {
		t.Fatalf("the events tree has fewer than three levels (root type %#x, its child %#x)", root.flags(), below.flags())
	}
	fl, n := freeList(t, data, m)
	fl.addFree(n, uint64(below.child(0)))
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err := checkPages(t.Context(), path, true)
	if err != nil || rep.OK || !strings.Contains(rep.Problem(), "in use and on the free-page list") {
		t.Fatalf("light walk: %+v %v", rep, err)
	}
}
