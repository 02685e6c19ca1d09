package uploadworker

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"
)

// File is one file a manifest asks for: its name inside the day directory
// and its exact bytes (the contact or metadata update as the manifest holds it).
type File struct {
	Name      string // "{contact_id}.json" or "{contact_id}.metadata.{seq}.json"
	ContactID string
	Body      []byte
}

// Manifest is the part of a sealed manifest the worker needs. The manifest
// is canonical JSON (docs/manifests.md); every other field is ignored here.
type Manifest struct {
	Day   string
	Files []File
}

// ContactIDs lists the contact ids of files, in manifest order.
func ContactIDs(files []File) []string {
	ids := make([]string, 0, len(files))
	for _, f := range files {
		ids = append(ids, f.ContactID)
	}
	return ids
}

// safeName is what a contact id must look like to become a file name:
// no path separators, no leading dot (temp files start with one).
var safeName = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}$`)

// Format is the manifest encoding this worker understands (docs/manifests.md).
const Format = "recledger.manifest/1"

// ErrFormat: the manifest is in an encoding this worker does not know; a
// newer worker is needed, so it must be retried later, not dropped.
var ErrFormat = errors.New("unknown manifest format")

type wireManifest struct {
	Format          string            `json:"format"`
	Day             string            `json:"day"`
	Contacts        []json.RawMessage `json:"contacts"`
	MetadataUpdates []json.RawMessage `json:"metadata_updates"`
}

type wireRef struct {
	ContactID string          `json:"contact_id"`
	Seq       json.RawMessage `json:"seq"`
}

// ParseManifest decodes a manifest and derives the files it asks for.
// A manifest that cannot be decoded, names no valid day, holds a contact
// id that is not a safe file name, or asks for one file twice is an
// error: retrying cannot fix it.
func ParseManifest(data []byte) (Manifest, error) {
	var w wireManifest
	if err := json.Unmarshal(data, &w); err != nil {
		return Manifest{}, fmt.Errorf("manifest: %w", err)
	}
	if w.Format != "" && w.Format != Format {
		return Manifest{}, fmt.Errorf("manifest %s: %w %q (this worker reads %q)", w.Day, ErrFormat, w.Format, Format)
	}
	if _, err := time.Parse(time.DateOnly, w.Day); err != nil {
		return Manifest{}, fmt.Errorf("manifest: day %q is not YYYY-MM-DD", w.Day)
	}
	m := Manifest{Day: w.Day, Files: make([]File, 0, len(w.Contacts)+len(w.MetadataUpdates))}
	for i, raw := range w.Contacts {
		ref, err := decodeRef(raw)
		if err != nil {
			return Manifest{}, fmt.Errorf("manifest %s: contacts[%d]: %w", w.Day, i, err)
		}
		m.Files = append(m.Files, File{Name: ref.ContactID + ".json", ContactID: ref.ContactID, Body: raw})
	}
	for i, raw := range w.MetadataUpdates {
		ref, err := decodeRef(raw)
		if err != nil {
			return Manifest{}, fmt.Errorf("manifest %s: metadata_updates[%d]: %w", w.Day, i, err)
		}
		seq, err := parseSeq(ref.Seq)
		if err != nil {
			return Manifest{}, fmt.Errorf("manifest %s: metadata_updates[%d]: %w", w.Day, i, err)
		}
		name := ref.ContactID + ".metadata." + strconv.FormatUint(seq, 10) + ".json"
		m.Files = append(m.Files, File{Name: name, ContactID: ref.ContactID, Body: raw})
	}
	if err := checkNamesOnce(m); err != nil {
		return Manifest{}, err
	}
	return m, nil
}

// checkNamesOnce refuses a manifest that asks for one file twice (a
// contact listed twice, or a contact id that reads as another's metadata
// update): the second would replace the first, and which one an upload
// keeps would depend on the order of the list. recledger never writes
// such a manifest.
func checkNamesOnce(m Manifest) error {
	at := make(map[string]int, len(m.Files))
	for i, f := range m.Files {
		if j, ok := at[f.Name]; ok {
			return fmt.Errorf("manifest %s: entries %d and %d both ask for the file %s (contact %s)", m.Day, j, i, f.Name, f.ContactID)
		}
		at[f.Name] = i
	}
	return nil
}

func decodeRef(raw json.RawMessage) (wireRef, error) {
	var ref wireRef
	if err := json.Unmarshal(raw, &ref); err != nil {
		return wireRef{}, err
	}
	if !safeName.MatchString(ref.ContactID) {
		return wireRef{}, fmt.Errorf("contact_id %q is not a safe file name", ref.ContactID)
	}
	return ref, nil
}

func parseSeq(raw json.RawMessage) (uint64, error) {
	var n uint64
	if err := json.Unmarshal(raw, &n); err == nil && n > 0 {
		return n, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		if n, err := strconv.ParseUint(s, 10, 64); err == nil && n > 0 {
			return n, nil
		}
	}
	return 0, fmt.Errorf("seq %s is not a positive integer", string(raw))
}
