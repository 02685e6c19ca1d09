// Package naive is the comparison server of the end-to-end benchmark: the
// same HTTP paths as recledger for Recording Controls commands, call signals
// and configuration, but each request is written as JSON in its own
// bbolt.Batch — no hash chain, no projections, no JetStream. It is what a
// straightforward "log every request durably" server costs, the baseline
// recledger's throughput is compared with.
package naive

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/recledger/recledger/ledger"
)

// maxBody is the vendor's limit on a Recording Controls body.
const maxBody = 16 << 10

var bucket = []byte("requests")

// Server is the naive server over one bbolt file.
type Server struct {
	db *bolt.DB
}

// Open opens (creating) the bbolt file at path.
func Open(path string) (*Server, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("naive: open: %w", err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucket)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("naive: open: %w", err)
	}
	return &Server{db: db}, nil
}

// Close closes the bbolt file.
func (s *Server) Close() error { return s.db.Close() }

// Count is the number of records written.
func (s *Server) Count() (uint64, error) {
	var n uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		n = uint64(tx.Bucket(bucket).Stats().KeyN)
		return nil
	})
	return n, err
}

// record is what is stored per request (or per call signal).
type record struct {
	Method string          `json:"method"`
	Path   string          `json:"path"`
	Query  string          `json:"query,omitempty"`
	Type   string          `json:"content_type,omitempty"`
	Body   json.RawMessage `json:"body,omitempty"`
	Form   string          `json:"form,omitempty"`
	At     time.Time       `json:"at"`
}

// append writes recs in one bbolt.Batch and returns the first and last seq.
func (s *Server) append(recs ...record) (first, last uint64, err error) {
	vals := make([][]byte, len(recs))
	for i, r := range recs {
		if vals[i], err = json.Marshal(r); err != nil {
			return 0, 0, err
		}
	}
	err = s.db.Batch(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		for i, v := range vals {
			seq, err := b.NextSequence()
			if err != nil {
				return err
			}
			if i == 0 {
				first = seq
			}
			last = seq
			var k [8]byte
			binary.BigEndian.PutUint64(k[:], seq)
			if err := b.Put(k[:], v); err != nil {
				return err
			}
		}
		return nil
	})
	return first, last, err
}

// Handler serves the naive API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/recordingcontrols/rest/{command}", s.handleCommand)
	mux.HandleFunc("POST /v1/calls/events", s.handleCalls)
	mux.HandleFunc("PUT /v1/config/", s.handleConfig)
	mux.HandleFunc("GET /v1/verify", s.handleVerify)
	return mux
}

func (s *Server) handleCommand(w http.ResponseWriter, r *http.Request) {
	cmd := strings.ToLower(r.PathValue("command"))
	if ledger.CanonicalCommand(cmd) == "" {
		reply(w, http.StatusNotFound, map[string]any{"command": cmd, "outcome": "rejected", "reason": "unknown_command"})
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		reply(w, http.StatusRequestEntityTooLarge, map[string]any{"command": cmd, "outcome": "rejected", "reason": "too_large"})
		return
	}
	rec := record{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Type: r.Header.Get("Content-Type"), At: time.Now()}
	if t := bytes.TrimSpace(body); len(t) > 0 && t[0] == '{' && json.Valid(t) {
		rec.Body = t
	} else if len(body) > 0 {
		rec.Form = string(body)
	}
	_, seq, err := s.append(rec)
	if err != nil {
		reply(w, http.StatusServiceUnavailable, map[string]any{"error": err.Error()})
		return
	}
	reply(w, http.StatusOK, map[string]any{"command": cmd, "outcome": "applied", "seq": seq})
}

func (s *Server) handleCalls(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		reply(w, http.StatusBadRequest, map[string]any{"error": err.Error()})
		return
	}
	var sigs []json.RawMessage
	if t := bytes.TrimSpace(body); len(t) > 0 && t[0] == '[' {
		err = json.Unmarshal(t, &sigs)
	} else {
		var one json.RawMessage
		err = json.Unmarshal(t, &one)
		sigs = []json.RawMessage{one}
	}
	if err != nil || len(sigs) == 0 {
		reply(w, http.StatusBadRequest, map[string]any{"error": "invalid signals"})
		return
	}
	recs := make([]record, len(sigs))
	now := time.Now()
	for i, sg := range sigs {
		recs[i] = record{Method: r.Method, Path: r.URL.Path, Body: sg, At: now}
	}
	first, last, err := s.append(recs...)
	if err != nil {
		reply(w, http.StatusServiceUnavailable, map[string]any{"error": err.Error()})
		return
	}
	reply(w, http.StatusOK, map[string]any{"accepted": len(sigs), "first_seq": first, "last_seq": last})
}

func (s *Server) handleConfig(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil || !json.Valid(body) {
		reply(w, http.StatusBadRequest, map[string]any{"error": "invalid json"})
		return
	}
	if _, _, err := s.append(record{Method: r.Method, Path: r.URL.Path, Body: body, At: time.Now()}); err != nil {
		reply(w, http.StatusServiceUnavailable, map[string]any{"error": err.Error()})
		return
	}
	reply(w, http.StatusOK, json.RawMessage(body))
}

func (s *Server) handleVerify(w http.ResponseWriter, r *http.Request) {
	n, err := s.Count()
	if err != nil {
		reply(w, http.StatusServiceUnavailable, map[string]any{"error": err.Error()})
		return
	}
	reply(w, http.StatusOK, map[string]any{"ok": true, "events": n, "head": ""})
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
