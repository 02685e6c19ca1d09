package projections

// interner hands out one shared string for bytes seen recently, so that
// the ids, extensions and numbers that repeat from event to event (a
// call's id in each of its signals, an agent's user id and extension in
// each of its commands) are not allocated again by every decode.
//
// It is a direct-mapped table: a fixed number of slots, the slot chosen by
// an FNV-1a hash of the bytes, a miss replacing what was there. So it is
// bounded whatever the ledger holds, deterministic, and changes no output:
// a string from it equals string(b) in every case, only its memory is
// shared.
type interner struct {
	slots [internSlots]string
}

const internSlots = 1 << 11 // a power of two

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
	h := uint32(2166136261)
	for _, c := range b {
		h = (h ^ uint32(c)) * 16777619
	}
	slot := &in.slots[h&(internSlots-1)]
	if *slot == string(b) {
		return *slot
	}
	v := string(b)
	*slot = v
	return v
}
