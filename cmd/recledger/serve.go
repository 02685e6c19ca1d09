package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/recledger/recledger/ledger"
)

// ServeConfig is everything `recledger serve` needs, with defaults from
// DefaultServeConfig and overrides from flags and their RECLEDGER_* env.
type ServeConfig struct {
	Data       string // bbolt ledger, checkpoints, embedded JetStream store
	HTTP       string // HTTP API address
	NATS       string // external NATS URLs (comma-separated); empty = embedded server
	NATSListen string // client address of the embedded server
	Replicas   int    // stream replicas on an external cluster
	Site       string // site name, part of subjects
	ConfigFile string // JSON configuration applied at start
	TokensFile string // API tokens and roles; empty = open
	// Rebuild starts from the events alone, not from the stored
	// checkpoint, which the next save replaces (`recledger verify` says
	// when a checkpoint does not match its events).
	Rebuild bool

	CheckpointEvents uint64        // save projection state every N events…
	CheckpointEvery  time.Duration // …or this often, whichever comes first
	ShutdownTimeout  time.Duration // how long in-flight requests get on stop
	// DrainDelay is how long the server goes on serving once told to
	// stop, with /readyz answering 503 (stopping), before it stops taking
	// requests: time for a load balancer to see it and send new work
	// elsewhere. 0, the default, stops at once.
	DrainDelay time.Duration
	// MaxConnections bounds the HTTP connections open at once, idle
	// keep-alive ones included: at the bound an idle one gives way to a
	// new one, or the new one is answered 503 at once (connLimit). With the
	// header and body limits it bounds what clients can make the server
	// hold (docs/clients.md, "Limits"); 0 means no bound.
	MaxConnections int
	// MendAfter is how long the mirror may stall, its disk having room,
	// before the embedded server's JetStream is restarted
	// (ledger.Mender); 0 means ledger.DefaultMendAfter.
	MendAfter time.Duration

	Logger *slog.Logger
	// Now is the scheduler's clock (day seals, pause timers); nil means
	// time.Now. Tests fix it so that what a restart seals does not depend
	// on the day they run.
	Now func() time.Time
}

// DefaultServeConfig returns the defaults of API.md §1.
func DefaultServeConfig() ServeConfig {
	return ServeConfig{
		Data:             "./data",
		HTTP:             "127.0.0.1:8080",
		NATSListen:       "127.0.0.1:4222",
		Replicas:         1,
		Site:             "default",
		CheckpointEvents: 100_000,
		CheckpointEvery:  time.Minute,
		ShutdownTimeout:  10 * time.Second,
		MaxConnections:   4096,
	}
}

// ServeCommand is the `serve` subcommand: it runs everything a site needs.
type ServeCommand struct {
	Stderr io.Writer
}

// Run parses flags (each with its RECLEDGER_* environment variable) and
// serves until ctx is done.
func (c *ServeCommand) Run(ctx context.Context, args []string) error {
	cfg := DefaultServeConfig()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	strFlag(fs, &cfg.Data, "data", "RECLEDGER_DATA", "bbolt ledger, checkpoints, embedded JetStream store")
	strFlag(fs, &cfg.HTTP, "http", "RECLEDGER_HTTP", "HTTP API address")
	strFlag(fs, &cfg.NATS, "nats", "RECLEDGER_NATS", "external NATS/JetStream URLs, comma-separated; empty = embedded server")
	strFlag(fs, &cfg.NATSListen, "nats-listen", "RECLEDGER_NATS_LISTEN", "client address of the embedded NATS server")
	replicasEnv := intFlag(fs, &cfg.Replicas, "replicas", "RECLEDGER_REPLICAS", "stream replicas on an external cluster")
	strFlag(fs, &cfg.Site, "site", "RECLEDGER_SITE", "site name, part of subjects")
	strFlag(fs, &cfg.ConfigFile, "config", "RECLEDGER_CONFIG", "JSON configuration applied at start: it replaces the whole configuration, changes made through the API since included (the log names what it undid)")
	strFlag(fs, &cfg.TokensFile, "tokens", "RECLEDGER_TOKENS", "API tokens and roles (JSON); none = open")
	cpEvents := int(cfg.CheckpointEvents)
	cpEventsEnv := intFlag(fs, &cpEvents, "checkpoint-events", "RECLEDGER_CHECKPOINT_EVENTS",
		fmt.Sprintf("save the projection state after this many events (%d to %d); a save is also spaced by nine times the last one's duration, so under load a restart may fold more (docs/replay.md)", minCheckpointEvents, maxCheckpointEvents))
	cpEveryEnv := durationFlag(fs, &cfg.CheckpointEvery, "checkpoint-every", "RECLEDGER_CHECKPOINT_EVERY",
		fmt.Sprintf("…or this often, whichever comes first (%s to %s)", minCheckpointEvery, maxCheckpointEvery))
	drainEnv := durationFlag(fs, &cfg.DrainDelay, "drain-delay", "RECLEDGER_DRAIN_DELAY",
		fmt.Sprintf("once told to stop, go on serving this long with /readyz answering 503 (stopping), so that a load balancer sends new work elsewhere before the intake stops; a second signal stops at once (0 to %s)", maxDrainDelay))
	maxConnsEnv := intFlag(fs, &cfg.MaxConnections, "http-max-connections", "RECLEDGER_HTTP_MAX_CONNECTIONS",
		fmt.Sprintf("HTTP connections open at once, idle keep-alive ones included; at the bound an idle one gives way, else a new one is answered 503; one client address holds a quarter at most, loopback excepted (%d to %d)", minMaxConnections, maxMaxConnections))
	logFormat, logLevel := "text", "info"
	strFlag(fs, &logFormat, "log-format", "RECLEDGER_LOG_FORMAT", "log records as text (key=value) or json, one per line, on stderr")
	strFlag(fs, &logLevel, "log-level", "RECLEDGER_LOG_LEVEL", "the lowest level logged: debug, info, warn or error")
	rebuildEnv := boolFlag(fs, &cfg.Rebuild, "rebuild", "RECLEDGER_REBUILD",
		"start from the events alone, not the stored checkpoint, and replace it (when recledger verify finds it does not match its events)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := replicasEnv(); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if err := rebuildEnv(); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if err := errors.Join(cpEventsEnv(), cpEveryEnv(), maxConnsEnv(), drainEnv()); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if cpEvents < minCheckpointEvents || cpEvents > maxCheckpointEvents {
		return fmt.Errorf("serve: --checkpoint-events (or RECLEDGER_CHECKPOINT_EVENTS) %d: %w: %d to %d", cpEvents, ledger.ErrInvalid, minCheckpointEvents, maxCheckpointEvents)
	}
	if cfg.CheckpointEvery < minCheckpointEvery || cfg.CheckpointEvery > maxCheckpointEvery {
		return fmt.Errorf("serve: --checkpoint-every (or RECLEDGER_CHECKPOINT_EVERY) %s: %w: %s to %s", cfg.CheckpointEvery, ledger.ErrInvalid, minCheckpointEvery, maxCheckpointEvery)
	}
	if cfg.MaxConnections < minMaxConnections || cfg.MaxConnections > maxMaxConnections {
		return fmt.Errorf("serve: --http-max-connections (or RECLEDGER_HTTP_MAX_CONNECTIONS) %d: %w: %d to %d", cfg.MaxConnections, ledger.ErrInvalid, minMaxConnections, maxMaxConnections)
	}
	if cfg.DrainDelay < 0 || cfg.DrainDelay > maxDrainDelay {
		return fmt.Errorf("serve: --drain-delay (or RECLEDGER_DRAIN_DELAY) %s: %w: 0 to %s", cfg.DrainDelay, ledger.ErrInvalid, maxDrainDelay)
	}
	cfg.CheckpointEvents = uint64(cpEvents)
	if cfg.Replicas < 1 || cfg.Replicas > 5 {
		// JetStream takes 1 to 5 replicas; 0 or less was taken and meant 1.
		return fmt.Errorf("serve: --replicas (or RECLEDGER_REPLICAS) %d: %w: 1 to 5", cfg.Replicas, ledger.ErrInvalid)
	}
	stderr := c.Stderr
	if stderr == nil {
		stderr = os.Stderr
	}
	log, err := newLogger(stderr, logFormat, logLevel)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	cfg.Logger = log
	srv, err := StartServer(ctx, cfg)
	if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		// Stopped before it served (while waiting for the ledger's
		// readers, say): what was asked, not a failure.
		cfg.Logger.Info("recledger stopped before serving", logKeyErr, err)
		return nil
	}
	if err != nil {
		// A log record like the rest, which an alert on level=ERROR sees
		// (a walk's crash loop left only plain lines).
		cfg.Logger.Error("recledger did not start", logKeyErr, errorLine(err))
		return loggedError{err}
	}
	if err := srv.Wait(); err != nil {
		return loggedError{err} // the server logged it as it stopped
	}
	return nil
}

// newLogger is serve's logger: format text or json, at level and above.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level (or RECLEDGER_LOG_LEVEL) %q: %w: debug, info, warn or error", level, ledger.ErrInvalid)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		// Durations as text ("1.5s"), as in the text format: JSON's
		// handler writes nanoseconds, which a reader takes for
		// milliseconds or seconds (a walk).
		opts.ReplaceAttr = func(_ []string, a slog.Attr) slog.Attr {
			if a.Value.Kind() == slog.KindDuration {
				return slog.String(a.Key, a.Value.Duration().String())
			}
			return a
		}
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format (or RECLEDGER_LOG_FORMAT) %q: %w: text or json", format, ledger.ErrInvalid)
}

// loggedError is an error the command has logged already: main exits 1
// without printing it again.
type loggedError struct{ err error }

func (e loggedError) Error() string { return e.err.Error() }
func (e loggedError) Unwrap() error { return e.err }

// checkNotEmpty refuses an empty data dir or address: an empty --http
// would listen on every interface at a port of the system's choosing, an
// empty --data would write beside the program, an empty --nats-listen
// would take the default port unsaid.
func checkNotEmpty(cfg ServeConfig) error {
	for _, f := range []struct {
		flag, value, takes string
		used               bool
	}{
		{"--data", cfg.Data, "a directory, such as ./data", true},
		{"--http", cfg.HTTP, "host:port, such as 127.0.0.1:8080; 0.0.0.0:8080 for every interface", true},
		{"--nats-listen", cfg.NATSListen, "host:port, such as " + ledger.DefaultNATSListen, cfg.NATS == ""}, // the embedded server's only
	} {
		if f.used && f.value == "" {
			return fmt.Errorf("serve: %s: %w: empty (give %s)", f.flag, ledger.ErrInvalid, f.takes)
		}
	}
	return nil
}

// The bounds of the checkpoint settings: a save encodes the state not
// yet stored (seconds for a busy day), so not after every few events.
const (
	minCheckpointEvents = 1_000
	maxCheckpointEvents = 10_000_000
	minCheckpointEvery  = time.Second
	maxCheckpointEvery  = 24 * time.Hour
)

// maxDrainDelay bounds --drain-delay: a load balancer sees /readyz within
// a few of its intervals; a stop that waits longer is a stop forgotten.
const maxDrainDelay = 5 * time.Minute
