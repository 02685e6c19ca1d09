package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/recledger/recledger/cmd/internal/uploadworker"
	"github.com/recledger/recledger/ledger"
)

// UploadWorkerCommand is the `upload-worker` subcommand: it consumes the
// site's sealed manifests and writes one file per contact under --dest.
// Several may run at once; any may be killed at any point.
type UploadWorkerCommand struct {
	Stderr io.Writer
}

// Run parses flags and works until ctx is done.
func (c *UploadWorkerCommand) Run(ctx context.Context, args []string) error {
	var (
		url  = "nats://127.0.0.1:4222"
		site = "default"
		cfg  uploadworker.Config
	)
	fs := flag.NewFlagSet("upload-worker", flag.ContinueOnError)
	strFlag(fs, &url, "nats", "RECLEDGER_NATS", "NATS URL(s) of the site's JetStream")
	strFlag(fs, &site, "site", "RECLEDGER_SITE", "site name, part of subjects")
	fs.StringVar(&cfg.Dest, "dest", "", "destination directory: DEST/{day}/{contact_id}.json")
	fs.StringVar(&cfg.Durable, "durable", "", "durable consumer name (default upload-{site})")
	strFlag(fs, &cfg.Token, "token", "RECLEDGER_TOKEN", "token with the upload role, for a server that has --tokens")
	fs.IntVar(&cfg.MaxTries, "max-tries", 5, "attempts per contact file before the manifest is nak'd for redelivery")
	fs.DurationVar(&cfg.AckWait, "ack-wait", 5*time.Minute, "consumer AckWait")
	fs.DurationVar(&cfg.NakDelay, "nak-delay", time.Minute, "redelivery delay of a manifest that could not be written")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if cfg.Dest == "" {
		return fmt.Errorf("upload-worker: --dest is required")
	}
	if err := ledger.CheckSite(site); err != nil {
		// As serve refuses it (exit status 1: a value the flag takes but
		// the command refuses): no consumer or subject can carry it, and
		// the worker retried binding one for good (a walk).
		return fmt.Errorf("upload-worker: --site: %w", err)
	}
	switch {
	case cfg.MaxTries < 1:
		return fmt.Errorf("upload-worker: --max-tries %d: at least 1", cfg.MaxTries)
	case cfg.AckWait < time.Second:
		return fmt.Errorf("upload-worker: --ack-wait %s: at least 1s", cfg.AckWait)
	case cfg.NakDelay < 0:
		return fmt.Errorf("upload-worker: --nak-delay %s: not negative", cfg.NakDelay)
	}
	stderr := c.Stderr
	if stderr == nil {
		stderr = os.Stderr
	}
	cfg.Site = site
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, nil))
	return uploadworker.Run(ctx, url, cfg)
}
