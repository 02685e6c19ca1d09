package projections

import (
	"encoding/binary"
	"math/bits"
)

// prefixes is a short list of strings of at most 16 bytes (member keys
// as compact data writes them, `"name":`; enumerated values with their
// closing quote, `ringing"`), each also as two masked little-endian
// words. Whether one of them starts at a position of the data is then
// two loads and two compares a candidate, with no call to memequal; this
// was a fifth of the decoders' instructions. A prefixes is read-only once
// made.
type prefixes struct {
	s []string
	w []prefixWords
}

type prefixWords struct{ lo, loMask, hi, hiMask uint64 }

// newPrefixes makes the table of s. A string longer than 16 bytes is a
// mistake in this file: it panics, at the first test of the package.
func newPrefixes(s ...string) *prefixes {
	p := &prefixes{s: s, w: make([]prefixWords, len(s))}
	for i, v := range s {
		if len(v) == 0 || len(v) > 16 {
			panic("projections: prefix of " + v + " not 1 to 16 bytes")
		}
		var b, m [16]byte
		copy(b[:], v)
		for j := range v {
			m[j] = 0xff
		}
		p.w[i] = prefixWords{
			lo: binary.LittleEndian.Uint64(b[:8]), loMask: binary.LittleEndian.Uint64(m[:8]),
			hi: binary.LittleEndian.Uint64(b[8:]), hiMask: binary.LittleEndian.Uint64(m[8:]),
		}
	}
	return p
}

// at returns the index of the first of p's strings, trying from index
// from on, that b holds at i; -1 when none does. Bytes past the end of b
// read as zero, which no string of p holds, so a string is matched only
// when b holds all of it.
func (p *prefixes) at(b []byte, i, from int) int {
	lo, hi := load16(b, i)
	for k := from; k < len(p.w); k++ {
		if w := &p.w[k]; lo&w.loMask == w.lo && hi&w.hiMask == w.hi {
			return k
		}
	}
	return -1
}

// atPadded is at for the 16 bytes w.
func (p *prefixes) atPadded(w *[16]byte) int {
	lo, hi := binary.LittleEndian.Uint64(w[:8]), binary.LittleEndian.Uint64(w[8:])
	for k := range p.w {
		if x := &p.w[k]; lo&x.loMask == x.lo && hi&x.hiMask == x.hi {
			return k
		}
	}
	return -1
}

// load16 returns the 16 bytes of b from i as two little-endian words,
// zeros past the end.
func load16(b []byte, i int) (lo, hi uint64) {
	if i >= 0 && i+16 <= len(b) {
		return binary.LittleEndian.Uint64(b[i:]), binary.LittleEndian.Uint64(b[i+8:])
	}
	var t [16]byte
	if i >= 0 && i < len(b) {
		copy(t[:], b[i:])
	}
	return binary.LittleEndian.Uint64(t[:8]), binary.LittleEndian.Uint64(t[8:])
}

// plainRun returns how many bytes of b from i on are printable ASCII other
// than '"' and '\\' (the bytes a string holds as they are), eight at a
// time: a byte is flagged when it is '"', '\\', below 0x20 or 0x80 and
// above; the lowest flag is exact (a borrow only reaches higher bytes).
func plainRun(b []byte, i int) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	n := 0
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		q, bs := x^(ones*'"'), x^(ones*'\\')
		flags := ((q-ones)&^q | (bs-ones)&^bs | (x-ones*0x20)&^x | x) & highs
		if flags != 0 {
			return n + bits.TrailingZeros64(flags)/8
		}
		n += 8
	}
	for ; i < len(b); i++ {
		if c := b[i]; c-0x20 >= 0x60 || c == '"' || c == '\\' {
			break
		}
		n++
	}
	return n
}
