package ledger

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"strconv"

	"github.com/oklog/ulid/v2"
)

// envelopeOverhead bounds the bytes of an envelope besides its type and
// data: the field names, seq, id, time, prev and hash.
const envelopeOverhead = len(`{"seq":18446744073709551615,"id":"","time":"","type":,"version":,"data":,"prev":"","hash":""}`) +
	ulid.EncodedSize + len(TimeLayout) + 20 + 2*2*sha256.Size

// sealer writes envelopes straight into a byte slab, producing exactly the
// bytes of (*Envelope).Seal without reflection. It is used by the writer
// goroutine only. TestSealerMatchesSeal and FuzzSealer hold it to Seal.
type sealer struct {
	h        hash.Hash
	sum      [sha256.Size]byte
	ms       uint64 // the millisecond timeQ is for
	timeQ    []byte // `"<time>"` of ms
	prevHash [sha256.Size]byte
	prevStr  string // hex of prevHash
}

// seal appends the canonical envelope of p at seq with id, chained to *prev
// (no prev when hasPrev is false), to dst. It sets *prev to the new hash and
// returns the grown slab and the envelope, whose Raw and Data alias the slab.
func (s *sealer) seal(dst []byte, seq uint64, id ulid.ULID, p prepared, prev *[sha256.Size]byte, hasPrev bool) ([]byte, Envelope) {
	if s.h == nil {
		s.h = sha256.New()
	}
	tm := idTime(id)
	if ms := id.Time(); s.timeQ == nil || ms != s.ms {
		s.ms = ms
		s.timeQ, _ = tm.MarshalJSON()
	}
	start := len(dst)
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, `,"id":"`...)
	var idText [ulid.EncodedSize]byte
	_ = id.MarshalTextTo(idText[:]) // cannot fail: the buffer has the right size
	dst = append(dst, idText[:]...)
	dst = append(dst, `","time":`...)
	dst = append(dst, s.timeQ...)
	dst = append(dst, `,"type":`...)
	dst = append(dst, p.qtype...)
	dst = append(dst, `,"version":`...)
	dst = strconv.AppendInt(dst, CurrentVersion, 10)
	dst = append(dst, `,"data":`...)
	dataStart := len(dst) - start
	dst = append(dst, p.data...)
	dataEnd := len(dst) - start
	dst = append(dst, '}')

	s.h.Reset()
	prevStr := ""
	if hasPrev {
		s.h.Write(prev[:])
		if s.prevStr == "" || s.prevHash != *prev {
			s.prevHash, s.prevStr = *prev, hex.EncodeToString(prev[:])
		}
		prevStr = s.prevStr
	}
	s.h.Write(dst[start:])
	sum := s.h.Sum(s.sum[:0])

	dst = dst[:len(dst)-1] // reopen the body: prev and hash follow
	dst = append(dst, `,"prev":"`...)
	dst = append(dst, prevStr...)
	dst = append(dst, `","hash":"`...)
	hashStart := len(dst)
	dst = hex.AppendEncode(dst, sum)
	hashStr := string(dst[hashStart:])
	dst = append(dst, `"}`...)

	copy(prev[:], sum)
	s.prevHash, s.prevStr = *prev, hashStr
	raw := dst[start:len(dst):len(dst)]
	return dst, Envelope{
		Seq:     seq,
		ID:      id,
		Time:    tm,
		Type:    p.typ,
		Version: CurrentVersion,
		Data:    raw[dataStart:dataEnd:dataEnd],
		Prev:    prevStr,
		Hash:    hashStr,
		Raw:     raw,
	}
}
