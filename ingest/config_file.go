package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/recledger/recledger/ledger"
)

// maxConfigFile bounds a --config document.
const maxConfigFile = 4 << 20

// ApplyConfigFile applies a whole configuration document (--config FILE):
// it is validated as a whole, and appended as one document put only when it
// differs from the current configuration, so restarts append nothing.
func (s *Server) ApplyConfigFile(ctx context.Context, path string) error {
	_, err := s.applyConfigFile(ctx, path)
	return err
}

// CheckConfigFile reports what ApplyConfigFile would refuse in the file
// at path, appending nothing: serve reads it before it creates or claims
// anything, so that a refused file leaves a new data dir unclaimed (a
// walk's misspelt member left the dir claimed by the default site).
func CheckConfigFile(path string, tokens *Tokens) error {
	_, err := readConfigFile(path, tokens)
	return err
}

// readConfigFile reads and checks a --config file: the document it holds,
// normalized and valid.
func readConfigFile(path string, tokens *Tokens) (ledger.Config, error) {
	var doc ledger.Config
	b, err := readFile(path)
	if err != nil {
		return doc, fmt.Errorf("config file: %w", err)
	}
	if err := tokens.configToken("", b); err != nil {
		return doc, fmt.Errorf("config file %s: %w", path, err)
	}
	if err := decodeConfigPart(b, "", &doc); err != nil {
		return doc, fmt.Errorf("config file %s: %w", path, maskFieldErr(err))
	}
	doc.Normalize()
	if err := doc.Validate(); err != nil {
		return doc, fmt.Errorf("config file %s: %w", path, maskFieldErr(err))
	}
	if err := doc.CheckReferences(); err != nil {
		return doc, fmt.Errorf("config file %s: %w", path, maskFieldErr(err))
	}
	return doc, nil
}

func (s *Server) applyConfigFile(ctx context.Context, path string) (bool, error) {
	doc, err := readConfigFile(path, s.tokens)
	if err != nil {
		return false, err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	current, err := canonicalConfig(s.views.Config())
	if err != nil {
		return false, fmt.Errorf("config file: current: %w", err)
	}
	var was ledger.Config
	if err := json.Unmarshal(current, &was); err != nil {
		return false, fmt.Errorf("config file: current: %w", err)
	}
	if kept := s.keepBusyTeams(was, &doc); len(kept) > 0 {
		s.log.Warn("configuration file: it removes teams that have open contacts; they are kept until a start after their calls have ended, since a team's workflow decides its contacts when they close (the API refuses such a delete too)",
			logKeyFile, path, logKeyKept, strings.Join(kept, "; "))
	}
	value, err := json.Marshal(doc)
	if err != nil {
		return false, fmt.Errorf("config file: %w", err)
	}
	if bytes.Equal(current, value) {
		s.log.Info("configuration file unchanged", logKeyFile, path)
		return false, nil
	}
	undone := configUndone(was, doc)
	var added []string
	if len(was.Users)+len(was.Teams)+len(was.Metadata) > 0 {
		added = configAdded(was, doc) // not at a first start: everything is added then
	}
	c := ledger.ConfigChange{Part: ledger.PartDocument, Op: ledger.OpPut, Value: value, Source: configSourceFile}
	envs, err := s.appendEvents(ctx, sourceConfig, ledger.Event{Type: ledger.TypeConfig, Data: c})
	if err != nil {
		return false, fmt.Errorf("config file: %w", err)
	}
	// The file replaces the whole document, changes made through the API included.
	if len(undone) == 0 {
		// Only additions: the file's own new parts, or parts deleted
		// through the API that it puts back.
		s.log.Info("configuration file applied", append([]any{logKeyFile, path, logKeySeq, envs[0].Seq}, addedAttr(added)...)...)
		return true, nil
	}
	s.log.Warn("configuration file applied: it replaced the whole configuration, and undid what it does not hold as the ledger had it (changes made through the API included); keep such changes in the file, or start without --config (docs/clients.md)",
		append([]any{logKeyFile, path, logKeySeq, envs[0].Seq, logKeyUndone, strings.Join(undone, "; ")}, addedAttr(added)...)...)
	return true, nil
}

// addedAttr is the log attribute naming what a file added, none when it
// added nothing or is the first (everything is added then).
func addedAttr(added []string) []any {
	if len(added) == 0 {
		return nil
	}
	return []any{logKeyAdded, strings.Join(added, "; ")}
}

// keepBusyTeams puts back into doc each team of was that doc removes
// while it has open contacts, and names them: without its workflow, an
// archived call would be discarded when it closes, a tagged one kept for
// no day (handleDelete refuses such a delete through the API).
func (s *Server) keepBusyTeams(was ledger.Config, doc *ledger.Config) []string {
	var kept []string
	for _, team := range slices.Sorted(maps.Keys(was.Teams)) {
		if _, ok := doc.Teams[team]; ok {
			continue
		}
		open := s.views.OpenContactsOfTeam(team)
		if len(open) == 0 {
			continue
		}
		if doc.Teams == nil {
			doc.Teams = map[string]ledger.Team{}
		}
		doc.Teams[team] = was.Teams[team]
		kept = append(kept, fmt.Sprintf("%s (%s: %s)", team, plural(len(open), "open contact"), firstFew(open)))
	}
	return kept
}

// canonicalConfig encodes a copy of c normalised, without touching c's maps
// (they may belong to the projections).
func canonicalConfig(c ledger.Config) ([]byte, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	var cp ledger.Config
	if err := json.Unmarshal(b, &cp); err != nil {
		return nil, err
	}
	cp.Normalize()
	return json.Marshal(cp)
}

// readFile reads a small operator file.
func readFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Size() > maxConfigFile {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxConfigFile)
	}
	return os.ReadFile(path)
}
