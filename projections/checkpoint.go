package projections

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/recledger/recledger/ledger"
)

// checkpoint is the head of the canonical encoding of a State: structs and
// maps only (encoding/json writes map keys sorted), so the same state always
// gives the same bytes. The bulky, history-long parts (the sealed manifests
// and the cold contacts) follow it as raw sections: they are copied, never
// parsed, when a checkpoint is written or read.
type checkpoint struct {
	Version  string                   `json:"version"`
	Seq      uint64                   `json:"seq"`
	Config   ledger.Config            `json:"config"`
	Agents   map[string]*agent        `json:"agents"`
	Logins   map[string]string        `json:"logins"`
	Calls    map[string]*call         `json:"calls"`
	Contacts map[string]*contact      `json:"contacts"`
	Pauses   []ledger.PauseRow        `json:"pauses"`         // the rows opened since the last seal
	Patched  map[int]*ledger.PauseRow `json:"pauses_patched"` // rows changed since they were encoded
	Open     map[string]int           `json:"open"`
	Book     manifestBook             `json:"book"`
	Cold     []string                 `json:"cold"`         // the days of the cold sections, in order
	Chunks   int                      `json:"pause_chunks"` // how many sections of encoded pause rows follow
}

// checkpointMagic starts every checkpoint of this encoding:
//
//	magic, uvarint n, n bytes of checkpoint JSON,
//	for each day of Book.Order: uvarint n, n bytes of its manifest,
//	for each day of Cold: uvarint n, n bytes of its cold records,
//	Chunks times: uvarint n, n bytes of encoded pause rows.
const checkpointMagic = "recledger.checkpoint\n"

// MarshalCheckpoint encodes the whole state canonically.
func (s *State) MarshalCheckpoint() ([]byte, error) {
	days := make([]string, len(s.cold))
	size := 64
	for _, c := range s.pauses.chunks {
		size += len(c) + binary.MaxVarintLen64
	}
	for i, d := range s.cold {
		days[i] = d.Day
		size += len(d.Data) + binary.MaxVarintLen64
	}
	for _, day := range s.book.Order {
		size += len(s.book.Sealed[day]) + binary.MaxVarintLen64
	}
	head, err := json.Marshal(checkpoint{Version: Version, Seq: s.seq, Config: s.cfg, Agents: s.agents, Logins: s.logins,
		Calls: s.calls, Contacts: s.contacts, Pauses: s.pauses.hot, Patched: s.pauses.patched, Open: s.open, Book: s.book, Cold: days, Chunks: len(s.pauses.chunks)})
	if err != nil {
		return nil, fmt.Errorf("marshal checkpoint: %w", err)
	}
	b := make([]byte, 0, size+len(head))
	b = append(b, checkpointMagic...)
	b = binary.AppendUvarint(b, uint64(len(head)))
	b = append(b, head...)
	for _, day := range s.book.Order {
		b = binary.AppendUvarint(b, uint64(len(s.book.Sealed[day])))
		b = append(b, s.book.Sealed[day]...)
	}
	for _, d := range s.cold {
		b = binary.AppendUvarint(b, uint64(len(d.Data)))
		b = append(b, d.Data...)
	}
	for _, c := range s.pauses.chunks {
		b = binary.AppendUvarint(b, uint64(len(c)))
		b = append(b, c...)
	}
	return b, nil
}

// UnmarshalCheckpoint rebuilds a State from MarshalCheckpoint's bytes. The
// state keeps parts of b (the manifests and cold contacts): the caller must
// not change b afterwards. A checkpoint of another Version is
// ErrUnknownVersion.
func UnmarshalCheckpoint(b []byte) (*State, error) {
	rest, ok := bytes.CutPrefix(b, []byte(checkpointMagic))
	if !ok {
		// An older encoding (plain JSON) or garbage.
		var v struct {
			Version string `json:"version"`
		}
		if err := json.Unmarshal(b, &v); err != nil {
			return nil, fmt.Errorf("unmarshal checkpoint: %w: %v", ledger.ErrCorrupt, err)
		}
		return nil, fmt.Errorf("unmarshal checkpoint: %w: version %q, want %q", ledger.ErrUnknownVersion, v.Version, Version)
	}
	section := func() ([]byte, error) {
		n, k := binary.Uvarint(rest)
		if k <= 0 || uint64(len(rest)-k) < n {
			return nil, fmt.Errorf("unmarshal checkpoint: %w: truncated", ledger.ErrCorrupt)
		}
		sec := rest[k : k+int(n) : k+int(n)]
		rest = rest[k+int(n):]
		return sec, nil
	}
	head, err := section()
	if err != nil {
		return nil, err
	}
	var c checkpoint
	if err := json.Unmarshal(head, &c); err != nil {
		return nil, fmt.Errorf("unmarshal checkpoint: %w: %v", ledger.ErrCorrupt, err)
	}
	if c.Version != Version {
		return nil, fmt.Errorf("unmarshal checkpoint: %w: version %q, want %q", ledger.ErrUnknownVersion, c.Version, Version)
	}
	s := New()
	s.seq, s.cfg = c.Seq, c.Config
	s.cfg.Normalize()
	if c.Agents != nil {
		s.agents = c.Agents
	}
	if c.Logins != nil {
		s.logins = c.Logins
	}
	if c.Calls != nil {
		s.calls = c.Calls
	}
	if c.Contacts != nil {
		s.contacts = c.Contacts
	}
	if c.Open != nil {
		s.open = c.Open
	}
	s.pauses.hot, s.pauses.patched = c.Pauses, c.Patched
	s.book = c.Book
	s.book.ensure()
	for _, day := range s.book.Order {
		if s.book.Sealed[day], err = section(); err != nil {
			return nil, err
		}
	}
	for _, day := range c.Cold {
		data, err := section()
		if err != nil {
			return nil, err
		}
		s.cold = append(s.cold, coldDay{Day: day, Data: data})
	}
	if c.Chunks < 0 || c.Chunks > len(rest) {
		return nil, fmt.Errorf("unmarshal checkpoint: %w: %d pause chunks", ledger.ErrCorrupt, c.Chunks)
	}
	for range c.Chunks {
		chunk, err := section()
		if err != nil {
			return nil, err
		}
		s.pauses.chunks = append(s.pauses.chunks, chunk)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("unmarshal checkpoint: %w: %d bytes after the last section", ledger.ErrCorrupt, len(rest))
	}
	if err := s.pauses.index(); err != nil {
		return nil, fmt.Errorf("unmarshal checkpoint: %w", err)
	}
	if err := s.checkCold(); err != nil {
		return nil, fmt.Errorf("unmarshal checkpoint: %w", err)
	}
	s.rebuildCaches()
	return s, nil
}

// Digest is the hex SHA-256 of the canonical checkpoint encoding: equal
// states give equal digests.
func (s *State) Digest() string {
	b, err := s.MarshalCheckpoint()
	if err != nil {
		return ""
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func secondsDur(n int) time.Duration { return time.Duration(n) * time.Second }
