package projections

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/recledger/recledger/ledger"
)

// checkpoint is the canonical encoding of a State: structs and maps only
// (encoding/json writes map keys sorted), so the same state always gives the
// same bytes.
type checkpoint struct {
	Version  string              `json:"version"`
	Seq      uint64              `json:"seq"`
	Config   ledger.Config       `json:"config"`
	Agents   map[string]*agent   `json:"agents"`
	Logins   map[string]string   `json:"logins"`
	Calls    map[string]*call    `json:"calls"`
	Contacts map[string]*contact `json:"contacts"`
	Pauses   []ledger.PauseRow   `json:"pauses"`
	Open     map[string]int      `json:"open"`
	Book     manifestBook        `json:"book"`
}

// MarshalCheckpoint encodes the whole state canonically.
func (s *State) MarshalCheckpoint() ([]byte, error) {
	b, err := json.Marshal(checkpoint{Version: Version, Seq: s.seq, Config: s.cfg, Agents: s.agents, Logins: s.logins,
		Calls: s.calls, Contacts: s.contacts, Pauses: s.pauses, Open: s.open, Book: s.book})
	if err != nil {
		return nil, fmt.Errorf("marshal checkpoint: %w", err)
	}
	return b, nil
}

// UnmarshalCheckpoint rebuilds a State from MarshalCheckpoint's bytes.
// A checkpoint of another Version is ErrUnknownVersion.
func UnmarshalCheckpoint(b []byte) (*State, error) {
	var c checkpoint
	if err := json.Unmarshal(b, &c); err != nil {
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
	s.pauses = c.Pauses
	s.book = c.Book
	s.book.ensure()
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
