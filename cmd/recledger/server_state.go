package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/recledger/recledger/ingest"
	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/projections"
	"github.com/recledger/recledger/replay"
)

// loadTokens reads the tokens file, if one is named, and logs its
// warnings.
func loadTokens(file string, log *slog.Logger) (*ingest.Tokens, error) {
	if file == "" {
		return nil, nil
	}
	tokens, err := ingest.LoadTokens(file)
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	for _, w := range tokens.Warnings() {
		log.Warn(w)
	}
	return tokens, nil
}

// openStore opens the data dir's ledger, refuses one a restore did not
// finish, and claims it for the site unless it is empty: an empty ledger
// is claimed once the mirror beside it was looked at (refuseLostLedger),
// so that a refused start does not claim the dir.
func (s *Server) openStore(ctx context.Context) error {
	store, err := openForServe(ctx, s.cfg.Data, s.log)
	if err != nil {
		return err
	}
	s.store = store
	if info, err := readServingFile(s.cfg.Data); err == nil && info.PID != os.Getpid() {
		// This process holds the ledger for writing, so the one the file
		// names is gone without removing it: killed, or the machine
		// stopped. Said, for the embedded NATS server's recovery warnings
		// that follow ("Stream state outdated") had nothing to explain
		// them (a walk).
		s.log.Warn("the last serve of this data dir did not stop cleanly (killed, or its machine stopped): every event it acknowledged is in the ledger, and the mirror catches up; the NATS server's warnings about stream state that may follow are its recovery",
			logKeyPID, info.PID)
	}
	if err := store.Damaged(); err != nil {
		// Served, it would answer for the events it can read and append
		// after them, under seqs the lost ones hold.
		path := filepath.Join(s.cfg.Data, LedgerFile)
		nats := ""
		if s.cfg.NATS != "" {
			nats = " --nats URL"
		}
		return fmt.Errorf("serve: %w. Move %s away, then rebuild it from the mirror with `recledger restore --from-jetstream%s --data %s --site %s` (docs/replay.md, \"Verify and restore\")",
			err, path, nats, s.cfg.Data, s.cfg.Site)
	}
	if on, err := store.Restoring(ctx); err != nil {
		return fmt.Errorf("serve: %w", err)
	} else if on {
		held, _ := store.Head()
		return fmt.Errorf("serve: %s: %w: a restore into it did not finish (it holds the mirror's first %d events; served, its next event would fork the history): "+
			"run `recledger restore --from-jetstream` again with the same --data, --nats and --site to complete it (with the newer build that wrote them, if this build's restore stopped at a newer build's events), or move the dir away", s.cfg.Data, ledger.ErrConflict, held)
	}
	if first, _ := store.Head(); first > 0 {
		return s.claim(ctx)
	}
	return nil
}

// claim records the ledger as the site's (ledger.Store.ClaimSite).
func (s *Server) claim(ctx context.Context) error {
	if err := s.store.ClaimSite(ctx, s.cfg.Site); err != nil {
		return fmt.Errorf("serve: --site %s: %w: serve it as its own site, or start another data dir for %s", s.cfg.Site, err, s.cfg.Site)
	}
	return nil
}

// loadState rebuilds the projections, from the newest checkpoint and the
// events after it or, with --rebuild, from every event, and makes them
// the live state that every commit advances. It returns how many events
// it folded.
func (s *Server) loadState(ctx context.Context) (uint64, error) {
	var (
		state    *projections.State
		replayed uint64
		err      error
	)
	store, log := s.store, s.log
	folding := time.Now() // not the start: opening the store may have waited for an offline reader
	if s.cfg.Rebuild {
		st, stats, err := replay.Run(ctx, store, replay.Options{Sections: store, CheckSections: true})
		if err != nil {
			return 0, fmt.Errorf("serve: replay: %w", err)
		}
		// Replaced before anything is served: a crash before the first
		// save would bring the checkpoint that was not read back.
		sv, err := replay.Save(ctx, store, st)
		if err != nil {
			return 0, fmt.Errorf("serve: --rebuild: replacing the checkpoint: %w", err)
		}
		state, replayed = st, stats.Events
		log.Warn("projections rebuilt from the events alone (--rebuild); the stored checkpoint was not read, and is replaced",
			logKeyHead, sv.Seq, logKeyTook, time.Since(folding).Round(time.Millisecond))
	} else if state, replayed, err = replay.Load(ctx, store, store); err != nil {
		return 0, fmt.Errorf("serve: replay: %w", err)
	} else {
		// Every event folded again: the projection version changed, said
		// with the event version; else the event version alone may have.
		said := false
		if head, _ := store.Head(); head > 0 && replayed == head {
			said = noteUpgrade(ctx, store, log)
		}
		if !said {
			noteEventVersion(state, log)
		}
	}
	s.live = projections.NewLive(state)
	store.Subscribe(s.live.OnCommit)
	s.registry.MustRegister(callGauges(s.live)...)
	head, _ := store.Head()
	log.Info("projections ready", logKeyHead, head, logKeyTail, replayed, logKeyTook, time.Since(folding).Round(time.Millisecond))
	return replayed, nil
}
