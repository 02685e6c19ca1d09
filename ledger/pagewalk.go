package ledger

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
)

// FileReport is the check of a stopped ledger file's pages (CheckPages).
type FileReport struct {
	OK    bool   `json:"ok"`
	Pages uint64 `json:"pages"` // pages in use (the header's high water mark)
	// Problems are the first findings (maxFileProblems); More counts
	// those left out: one damaged branch page can make every page under
	// it a finding.
	Problems []string `json:"problems,omitempty"`
	More     int      `json:"more,omitempty"`
}

// maxFileProblems bounds the findings a FileReport keeps.
const maxFileProblems = 5

// Problem is the report's findings in one line ("" when OK).
func (r FileReport) Problem() string {
	if r.OK || len(r.Problems) == 0 {
		return ""
	}
	p := r.Problems[0]
	if n := len(r.Problems) - 1 + r.More; n > 0 {
		p = fmt.Sprintf("%s (and %d more)", p, n)
	}
	return p
}

// bbolt's page types and its leaf element flag for a nested bucket.
const (
	boltBranchFlag = 0x01
	boltLeafFlag   = 0x02
	boltBucketLeaf = 0x01
	boltElemLen    = 16 // a branch or leaf element: 16 bytes each
	walkMaxDepth   = 128
)

// CheckPages reads the bbolt file at path page by page and checks what
// bbolt trusts when it writes: from the newest valid header, every page
// the tree reaches (branch and leaf pages, their overflow, nested
// buckets) and the free-page list lies within the file's pages, names
// itself, has the type its parent expects, holds elements within its
// bytes and keys in order, within its parent's bounds; no page is reached
// twice, none is both reached and free, and every page is one or the
// other. A write on a file that fails this can hand out pages still in
// use: damage the chain check (which reads only the events) cannot see.
//
// It reads the file with ReadAt, not through bbolt's mapping, walks
// without recursion into the unknown (depth and every page bounded), and
// so cannot fault, panic or loop on a damaged page: bbolt's own tx.Check
// did all three in a walk of 594 damaged copies. The file must not be
// written meanwhile: run it on a stopped server's file (a read-only
// Store's lock keeps a server out). The error return is for I/O and
// cancellation only.
func CheckPages(ctx context.Context, path string) (FileReport, error) {
	return checkPages(ctx, path, false)
}

// checkPages is CheckPages; light, as a start opening the file for writing
// takes it, claims the leaf pages of the events bucket by their parent's
// word without reading them (a start must not read the whole history): it
// still finds an events page on the free-page list, or a page of the other
// buckets, but not an events page's damaged header or overflow, and it
// does not look for pages neither reached nor free.
func checkPages(ctx context.Context, path string, light bool) (FileReport, error) {
	f, err := os.Open(path)
	if err != nil {
		return FileReport{}, fmt.Errorf("check pages: %w: %v", ErrUnavailable, err)
	}
	defer f.Close()
	m, ok := newestMeta(f)
	if !ok {
		return FileReport{Problems: []string{"no valid header page"}}, nil
	}
	w := &pageWalk{ctx: ctx, f: f, ps: int64(m.pageSize), pgid: m.pgid, light: light}
	w.rep.Pages = m.pgid
	if !boltPageSizeOK(m.pageSize) {
		w.problem("the header page gives a page size of %d bytes, which bbolt does not write", m.pageSize)
		return w.rep, nil
	}
	if fi, err := f.Stat(); err != nil || m.pgid > uint64(fi.Size())/uint64(m.pageSize) {
		w.problem("the file is shorter than its %d pages", m.pgid)
		return w.rep, nil
	}
	w.used, w.free = make([]uint64, m.pgid/64+1), make([]uint64, m.pgid/64+1)
	set(w.used, 0)
	set(w.used, 1)
	w.tree(m.root, nil, nil, 0, false)
	w.freelist(m.freelist)
	if err := ctx.Err(); err != nil {
		return w.rep, fmt.Errorf("check pages: %w", err)
	}
	if w.ioErr != nil {
		return w.rep, fmt.Errorf("check pages: %w: %v", ErrUnavailable, w.ioErr)
	}
	for p := uint64(2); p < m.pgid && !light; p++ {
		if !isSet(w.used, p) && !isSet(w.free, p) {
			w.problem("page %d: neither reached from the root nor free", p)
		}
	}
	w.rep.OK = len(w.rep.Problems) == 0
	return w.rep, nil
}

// newestMeta is the valid header page with the highest transaction id.
func newestMeta(f *os.File) (boltMeta, bool) {
	var best boltMeta
	found := false
	m0, ok0 := readBoltMeta(f, 0)
	offsets := []int64{4096, 8192, pageSize, 32 << 10, 64 << 10}
	if ok0 {
		best, found = m0, true
		offsets = []int64{int64(m0.pageSize)}
	}
	for _, off := range offsets {
		if m1, ok := readBoltMeta(f, off); ok && (!found || m1.txid > best.txid) {
			best, found = m1, true
		}
	}
	return best, found
}

// pageWalk is one CheckPages: the pages reached (used) and listed free.
type pageWalk struct {
	ctx       context.Context
	f         *os.File
	ps        int64
	pgid      uint64
	used      []uint64 // bitset
	free      []uint64 // bitset
	rep       FileReport
	light     bool // the events bucket's leaves claimed unread (checkPages)
	ioErr     error
	cancelled bool
	pages     int // pages read, for the cancellation check
}

func set(b []uint64, p uint64)        { b[p/64] |= 1 << (p % 64) }
func isSet(b []uint64, p uint64) bool { return b[p/64]&(1<<(p%64)) != 0 }

func (w *pageWalk) problem(format string, args ...any) {
	if len(w.rep.Problems) < maxFileProblems {
		w.rep.Problems = append(w.rep.Problems, fmt.Sprintf(format, args...))
	} else {
		w.rep.More++
	}
}

// stopped reports whether the walk must end: cancelled, or an I/O error.
func (w *pageWalk) stopped() bool {
	w.pages++
	if w.pages%1024 == 0 && w.ctx.Err() != nil {
		w.cancelled = true
	}
	return w.ioErr != nil || w.cancelled
}

// page is a page read by the walk: its first page of bytes, and the size
// its overflow gives it, read further only where an element points.
type page struct {
	w     *pageWalk
	id    uint64
	size  uint64
	first []byte
	off   int64 // where the page starts in the file (-1: inline, all in first)
}

// at returns the n bytes at off within the page; ok is false past its end.
func (p *page) at(off, n uint64) (b []byte, ok bool) {
	if off+n > p.size || off+n < off {
		return nil, false
	}
	if off+n <= uint64(len(p.first)) {
		return p.first[off : off+n], true
	}
	b = make([]byte, n)
	if _, err := p.w.f.ReadAt(b, p.off+int64(off)); err != nil {
		p.w.ioErr = err
		return nil, false
	}
	return b, true
}

// read reads page id's header and first page, checks its type is want and
// claims it and its overflow pages as used; nil after noting a problem.
func (w *pageWalk) read(id uint64, want uint16, what string) *page {
	if id < 2 || id >= w.pgid {
		w.problem("page %d (%s): outside the file's %d pages", id, what, w.pgid)
		return nil
	}
	b := make([]byte, w.ps)
	if _, err := w.f.ReadAt(b, int64(id)*w.ps); err != nil {
		w.ioErr = err
		return nil
	}
	le := binary.LittleEndian
	self, flags, overflow := le.Uint64(b[0:]), le.Uint16(b[8:]), uint64(le.Uint32(b[12:]))
	switch {
	case self != id:
		w.problem("page %d (%s): names itself page %d", id, what, self)
		return nil
	case flags != want:
		w.problem("page %d (%s): has type %#x, not %#x", id, what, flags, want)
		return nil
	case overflow >= w.pgid-id:
		w.problem("page %d (%s): its %d overflow pages run past the file's %d pages", id, what, overflow, w.pgid)
		return nil
	}
	for p := id; p <= id+overflow; p++ {
		if isSet(w.used, p) {
			w.problem("page %d: reached twice (the second time reading page %d, %s)", p, id, what)
			return nil
		}
	}
	for p := id; p <= id+overflow; p++ {
		set(w.used, p)
	}
	return &page{w: w, id: id, size: (overflow + 1) * uint64(w.ps), first: b, off: int64(id) * w.ps}
}

// tree walks the bucket whose root page is id; its keys must lie in
// [lo, hi) (nil: unbounded).
func (w *pageWalk) tree(id uint64, lo, hi []byte, depth int, unread bool) {
	if w.stopped() {
		return
	}
	if depth > walkMaxDepth {
		w.problem("page %d: deeper than %d levels", id, walkMaxDepth)
		return
	}
	// A bucket's page is a branch or a leaf: its header says which.
	want, what := uint16(boltLeafFlag), "leaf"
	if id >= 2 && id < w.pgid {
		var h [boltPageHeader]byte
		if _, err := w.f.ReadAt(h[:], int64(id)*w.ps); err != nil {
			w.ioErr = err
			return
		}
		if binary.LittleEndian.Uint16(h[8:]) == boltBranchFlag {
			want, what = boltBranchFlag, "branch"
		}
	}
	p := w.read(id, want, what)
	if p == nil {
		return
	}
	if want == boltBranchFlag {
		w.branch(p, lo, hi, depth, unread)
		return
	}
	w.leaf(p, lo, hi, depth)
}

// element is one branch or leaf element: where its key and value are.
type element struct {
	flags, pos, ksize, vsize uint32
	child                    uint64 // a branch element's page
	at                       uint64 // the element's own offset in the page
}

// elements reads a page's elements, and checks that each key (and value)
// lies within the page and that the keys ascend within [lo, hi). It
// returns the elements and their keys.
func (w *pageWalk) elements(p *page, branch bool, lo, hi []byte) ([]element, [][]byte, bool) {
	n := uint64(binary.LittleEndian.Uint16(p.first[10:]))
	raw, ok := p.at(boltPageHeader, n*boltElemLen)
	if !ok {
		w.problem("page %d: %d elements do not fit in its %d bytes", p.id, n, p.size)
		return nil, nil, false
	}
	le := binary.LittleEndian
	els, keys := make([]element, n), make([][]byte, n)
	for i := range n {
		r := raw[i*boltElemLen:]
		e := element{at: boltPageHeader + i*boltElemLen}
		if branch {
			e.pos, e.ksize, e.child = le.Uint32(r[0:]), le.Uint32(r[4:]), le.Uint64(r[8:])
		} else {
			e.flags, e.pos, e.ksize, e.vsize = le.Uint32(r[0:]), le.Uint32(r[4:]), le.Uint32(r[8:]), le.Uint32(r[12:])
		}
		if e.ksize > bboltMaxKey {
			w.problem("page %d: key %d is %d bytes, more than bbolt takes", p.id, i, e.ksize)
			return nil, nil, false
		}
		if e.at+uint64(e.pos)+uint64(e.ksize)+uint64(e.vsize) > p.size {
			w.problem("page %d: element %d runs past the page's %d bytes", p.id, i, p.size)
			return nil, nil, false
		}
		k, ok := p.at(e.at+uint64(e.pos), uint64(e.ksize))
		if !ok {
			return nil, nil, false
		}
		switch {
		case i > 0 && bytes.Compare(keys[i-1], k) >= 0:
			w.problem("page %d: key %d (%x) is not after key %d (%x)", p.id, i, k, i-1, keys[i-1])
			return nil, nil, false
		case lo != nil && bytes.Compare(k, lo) < 0:
			w.problem("page %d: key %d (%x) is before its parent's bound %x", p.id, i, k, lo)
			return nil, nil, false
		case hi != nil && bytes.Compare(k, hi) >= 0:
			w.problem("page %d: key %d (%x) is not before the next key of its parent, %x", p.id, i, k, hi)
			return nil, nil, false
		}
		els[i], keys[i] = e, bytes.Clone(k)
	}
	return els, keys, true
}

// bboltMaxKey is bbolt's largest key (bbolt.MaxKeySize).
const bboltMaxKey = 32768

// branch checks a branch page's elements, then walks its children, each
// bounded by its key and the next one's.
//
// With unread set, children that are leaf pages (all of a level are, when
// the first is) are claimed by id, without being read.
func (w *pageWalk) branch(p *page, lo, hi []byte, depth int, unread bool) {
	els, keys, ok := w.elements(p, true, lo, hi)
	if !ok {
		return
	}
	if len(els) == 0 {
		w.problem("page %d: a branch page with no element", p.id)
		return
	}
	if unread && w.leafLevel(els[0].child) {
		for _, e := range els {
			w.claim(e.child, "leaf")
		}
		return
	}
	for i, e := range els {
		next := hi
		if i+1 < len(keys) {
			next = keys[i+1]
		}
		w.tree(e.child, keys[i], next, depth+1, unread)
	}
}

// leafLevel reports whether page id's header says it is a leaf page.
func (w *pageWalk) leafLevel(id uint64) bool {
	if id < 2 || id >= w.pgid {
		return false
	}
	var h [boltPageHeader]byte
	if _, err := w.f.ReadAt(h[:], int64(id)*w.ps); err != nil {
		w.ioErr = err
		return false
	}
	return binary.LittleEndian.Uint16(h[8:]) == boltLeafFlag
}

// claim marks page id as used without reading it (its overflow unknown).
func (w *pageWalk) claim(id uint64, what string) {
	switch {
	case id < 2 || id >= w.pgid:
		w.problem("page %d (%s): outside the file's %d pages", id, what, w.pgid)
	case isSet(w.used, id):
		w.problem("page %d: reached twice (the second time as a %s)", id, what)
	default:
		set(w.used, id)
	}
}

// leaf checks a leaf page's elements, then walks the buckets nested in it.
func (w *pageWalk) leaf(p *page, lo, hi []byte, depth int) {
	if depth > walkMaxDepth {
		w.problem("page %d: deeper than %d levels", p.id, walkMaxDepth)
		return
	}
	els, keys, ok := w.elements(p, false, lo, hi)
	if !ok {
		return
	}
	le := binary.LittleEndian
	for i, e := range els {
		if e.flags&boltBucketLeaf == 0 || w.ioErr != nil {
			continue
		}
		// A nested bucket's value: its root page and sequence, and for an
		// inline bucket (root 0) a leaf page of its own after them.
		if e.vsize < 16 || e.vsize > uint32(w.ps) {
			w.problem("page %d: element %d is a bucket of %d bytes", p.id, i, e.vsize)
			continue
		}
		v, ok := p.at(e.at+uint64(e.pos)+uint64(e.ksize), uint64(e.vsize))
		if !ok {
			continue
		}
		if root := le.Uint64(v); root != 0 {
			events := w.light && depth == 0 && bytes.Equal(keys[i], bucketEvents)
			w.tree(root, nil, nil, depth+1, events)
			continue
		}
		in := v[16:]
		if len(in) < boltPageHeader || le.Uint16(in[8:]) != boltLeafFlag {
			w.problem("page %d: element %d is an inline bucket that is not a leaf page", p.id, i)
			continue
		}
		w.leaf(&page{w: w, id: p.id, size: uint64(len(in)), first: bytes.Clone(in), off: -1}, nil, nil, depth+1)
	}
}

// freelist checks the free-page list: its page, and each free id, which
// must lie within the file, be listed once, and not be reached.
func (w *pageWalk) freelist(id uint64) {
	if id == boltNoFreelist || w.ioErr != nil || w.cancelled {
		return
	}
	p := w.read(id, boltFreelistFlag, "free-page list")
	if p == nil {
		return
	}
	le := binary.LittleEndian
	count, at := uint64(le.Uint16(p.first[10:])), uint64(boltPageHeader)
	if count == 0xFFFF {
		count, at = le.Uint64(p.first[boltPageHeader:]), boltPageHeader+8
	}
	ids, ok := p.at(at, count*8)
	if !ok || count > p.size/8 {
		w.problem("page %d: the free-page list claims %d pages, more than its bytes hold", id, count)
		return
	}
	for i := range count {
		f := le.Uint64(ids[8*i:])
		switch {
		case f < 2 || f >= w.pgid:
			w.problem("page %d: the free-page list names page %d, outside the file's %d pages", id, f, w.pgid)
		case isSet(w.used, f):
			w.problem("page %d: in use and on the free-page list (a write would hand it out)", f)
		case isSet(w.free, f):
			w.problem("page %d: on the free-page list twice", f)
		default:
			set(w.free, f)
		}
	}
}
