package projections

import "github.com/recledger/recledger/ledger"

// interner hands out one shared string for bytes seen recently, so that
// the ids, extensions and numbers that repeat from event to event (a
// call's id in each of its signals, an agent's user id and extension in
// each of its commands) are not allocated again by every decode.
//
// It is a direct-mapped table: a fixed number of slots, the slot chosen by
// a hash of the bytes (internHash), a miss replacing what was there. So it is
// bounded whatever the ledger holds, deterministic, and changes no output:
// a string from it equals string(b) in every case, only its memory is
// shared.
type interner struct {
	slots  [internSlots]string
	params []ledger.Param // the last command's params, whose array the next one reuses
	pad    []byte         // the last event's data, padded for the canonical decoders (padded)
}

// paramList is an empty, non-nil list for a command's params, on the
// array of the last command's (nobody keeps those).
func (in *interner) paramList() []ledger.Param {
	if in == nil || in.params == nil {
		return []ledger.Param{}
	}
	return in.params[:0]
}

const internSlots = 1 << 12 // a power of two

// internMax is the longest value kept; longer ones are plain copies.
const internMax = 64

// str returns a string equal to b.
func (in *interner) str(b []byte) string {
	if in == nil || len(b) > internMax {
		return string(b)
	}
	if len(b) == 0 {
		return ""
	}
	slot := &in.slots[internHash(b)&(internSlots-1)]
	if *slot == string(b) {
		return *slot
	}
	v := string(b)
	*slot = v
	return v
}

// internHash picks the slot of b: its length and its first and last four
// bytes (ids and numbers differ in their last digits), mixed by fmix32;
// shorter values are hashed byte by byte (FNV-1a).
func internHash(b []byte) uint32 {
	if n := len(b); n >= 4 {
		first := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
		last := uint32(b[n-4]) | uint32(b[n-3])<<8 | uint32(b[n-2])<<16 | uint32(b[n-1])<<24
		return fmix32(first ^ fmix32(last^uint32(n)))
	}
	h := uint32(2166136261)
	for _, c := range b {
		h = (h ^ uint32(c)) * 16777619
	}
	return h
}

// fmix32 is MurmurHash3's finalizer: every bit of h moves every bit of
// the result, the low ones that pick a slot too.
func fmix32(h uint32) uint32 {
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	return h ^ h>>16
}
