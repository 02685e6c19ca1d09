package projections

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/recledger/recledger/ledger"
)

// checkpoint is the canonical encoding of a State: structs and maps only
// (encoding/json writes map keys sorted), so the same state always gives
// the same bytes. The bulky, history-long parts (the sealed manifests, the
// cold contacts, the encoded pause rows) are sections (sections.go): the
// checkpoint names each by key, length and SHA-256, and their bytes are
// stored apart (ledger.Store.SaveCheckpoint), never copied through it.
type checkpoint struct {
	Version  string                   `json:"version"`
	Rules    int                      `json:"rules"` // the newest event version folded (State.newest)
	Seq      uint64                   `json:"seq"`
	Config   ledger.Config            `json:"config"`
	LimitAt  ledger.Time              `json:"limit_at"` // State.limitAt
	Agents   map[string]*agent        `json:"agents"`
	Logins   map[string]string        `json:"logins"`
	Calls    map[string]*call         `json:"calls"`
	Contacts map[string]*contact      `json:"contacts"`
	Pauses   []ledger.PauseRow        `json:"pauses"`         // the rows opened since the last seal
	Patched  map[int]*ledger.PauseRow `json:"pauses_patched"` // encoded rows changed since
	Pinned   map[int]ledger.PauseRow  `json:"pauses_pinned"`  // encoded rows of contacts in memory
	Chunks   []pauseChunk             `json:"pause_chunks"`
	Open     map[string]int           `json:"open"`
	Book     manifestBook             `json:"book"`
	Cold     []coldDay                `json:"cold"`
	Ended    endedCalls               `json:"ended,omitempty"` // State.ended; absent before rules version 4
}

// checkpointMagic starts every checkpoint of this encoding:
//
//	magic, uvarint n, n bytes of checkpoint JSON.
//
// (Version 2 put the sections' bytes after the JSON.)
const checkpointMagic = "recledger.checkpoint\n"

// MarshalCheckpoint encodes the whole state canonically. The sections'
// bytes are not in it: a checkpoint is stored with PendingSections, and
// the state told SectionsStored afterwards.
func (s *State) MarshalCheckpoint() ([]byte, error) {
	head, err := json.Marshal(checkpoint{Version: Version, Rules: s.newest, Seq: s.seq, Config: s.cfg, LimitAt: s.limitAt, Agents: s.agents, Logins: s.logins,
		Calls: s.calls, Contacts: s.contacts, Pauses: s.pauses.hot, Patched: s.pauses.patched, Pinned: s.pauses.pinned,
		Chunks: s.pauses.chunks, Open: s.open, Book: s.book, Cold: s.cold, Ended: s.ended})
	if err != nil {
		return nil, fmt.Errorf("marshal checkpoint: %w", err)
	}
	b := make([]byte, 0, len(checkpointMagic)+binary.MaxVarintLen64+len(head))
	b = append(b, checkpointMagic...)
	b = binary.AppendUvarint(b, uint64(len(head)))
	return append(b, head...), nil
}

// UnmarshalCheckpoint rebuilds a State from MarshalCheckpoint's bytes,
// with the sections it names stored in r: it checks that r has each of
// them at the right length (reading none), and the state's queries read
// them through r. A checkpoint of another Version is ErrUnknownVersion; a
// section r lacks is ErrCorrupt.
func UnmarshalCheckpoint(ctx context.Context, b []byte, r SectionReader) (*State, error) {
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
	n, k := binary.Uvarint(rest)
	if k <= 0 || uint64(len(rest)-k) < n {
		return nil, fmt.Errorf("unmarshal checkpoint: %w: truncated", ledger.ErrCorrupt)
	}
	head := rest[k : k+int(n)]
	var c checkpoint
	if err := json.Unmarshal(head, &c); err != nil {
		return nil, fmt.Errorf("unmarshal checkpoint: %w: %v", ledger.ErrCorrupt, err)
	}
	if c.Version != Version {
		return nil, fmt.Errorf("unmarshal checkpoint: %w: version %q, want %q", ledger.ErrUnknownVersion, c.Version, Version)
	}
	if c.Rules > ledger.CurrentVersion {
		// Its state folded events this build cannot: loaded, the build
		// would serve and append to a ledger it cannot read.
		return nil, fmt.Errorf("unmarshal checkpoint: %w: it folded events of version %d, this build reads up to %d", ledger.ErrUnknownVersion, c.Rules, ledger.CurrentVersion)
	}
	if len(rest) != k+int(n) {
		return nil, fmt.Errorf("unmarshal checkpoint: %w: %d bytes after the head", ledger.ErrCorrupt, len(rest)-k-int(n))
	}
	s := New()
	s.seq, s.cfg, s.limitAt, s.newest = c.Seq, c.Config, c.LimitAt, c.Rules
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
	s.pauses = pauseLog{chunks: c.Chunks, hot: c.Pauses, patched: c.Patched, pinned: c.Pinned}
	s.book = c.Book
	s.book.ensure()
	s.cold = c.Cold
	s.ended = c.Ended
	s.ended.index()
	if err := s.pauses.index(); err != nil {
		return nil, fmt.Errorf("unmarshal checkpoint: %w", err)
	}
	if err := s.book.check(); err != nil {
		return nil, fmt.Errorf("unmarshal checkpoint: %w", err)
	}
	if err := s.checkCold(); err != nil {
		return nil, fmt.Errorf("unmarshal checkpoint: %w", err)
	}
	if err := s.checkStored(ctx, r); err != nil {
		return nil, fmt.Errorf("unmarshal checkpoint: %w", err)
	}
	if err := s.loadKept(ctx, r); err != nil {
		return nil, fmt.Errorf("unmarshal checkpoint: %w", err)
	}
	s.reader = r
	s.rebuildCaches()
	return s, nil
}

// Digest is the hex SHA-256 of the canonical checkpoint encoding (which
// names each section by key, length and SHA-256): equal states give equal
// digests, wherever their sections' bytes are.
func (s *State) Digest() string {
	b, err := s.MarshalCheckpoint()
	if err != nil {
		return ""
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func secondsDur(n int) time.Duration { return time.Duration(n) * time.Second }
