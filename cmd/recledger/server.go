package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/recledger/recledger/ingest"
	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/projections"
)

// The parts serve wires must fit what the API finds in them by type
// assertion: a rename would otherwise make /readyz stop reporting a
// failed projection or ledger write, silently.
var (
	_ ingest.Failer      = (*projections.Live)(nil)
	_ ingest.WriteFailer = (*ledger.Store)(nil)
)

// Log attribute keys used by serve.
const (
	logKeyHTTP      = "http"
	logKeyNATS      = "nats"
	logKeySite      = "site"
	logKeyData      = "data"
	logKeyHead      = "head_seq" // as /readyz names the ledger's last seq
	logKeyTail      = "replayed"
	logKeyTook      = "took"
	logKeyErr       = "err"
	logKeyServer    = "component"
	logKeyFile      = "file"
	logKeyGiveUp    = "gives_up_in"
	logKeyPID       = "pid"
	logKeyTimeout   = "timeout"
	logKeyDelay     = "drain_delay"
	logKeyWhy       = "why"
	logKeyFree      = "free_bytes"
	logKeyStoreKind = "store"
	logKeyOpenFiles = "open_files_limit"
	logKeyLag       = "outbox_lag"
	logKeyMaxConns  = "http_max_connections"
	logKeyReserved  = "reserved"
	logKeyReplicas  = "replicas"

	logKeyStored        = "stored_version"
	logKeyProjections   = "projection_version"
	logKeyEventVersion  = "event_version"
	logKeyLedgerVersion = "ledger_event_version" // the newest event version the ledger holds
)

// LedgerFile and JetStreamDir name the parts of a data dir.
const (
	LedgerFile   = "ledger.db"
	JetStreamDir = "jetstream"
)

// Server is a running `recledger serve`: the ledger, the live projections,
// JetStream (embedded or external), the HTTP API and every goroutine that
// belongs to them, owned by one errgroup.
type Server struct {
	cfg      ServeConfig
	log      *slog.Logger
	store    *ledger.Store
	live     *projections.Live
	nsrv     *ledger.Embedded // nil with an external NATS
	nc       *nats.Conn       // the streams'
	ctiNC    *nats.Conn       // call signals'
	ncLink   ledger.Link      // whether nc is connected, without its lock
	ctiLink  ledger.Link      // whether ctiNC is connected
	httpLn   net.Listener
	connLim  *connLimit // the HTTP listener's bound; nil without one
	natsURL  string
	cancel   context.CancelFunc
	done     chan struct{}
	err      error
	registry *prometheus.Registry
}

// mirrorGrace is how long a stopping server waits for its outbox to mirror
// the last events; what is left is mirrored at the next start.
const mirrorGrace = 2 * time.Second

// servingRetry is how often a serving file that could not be written is
// tried again.
const servingRetry = 5 * time.Second

// httpReadTimeout bounds the reading of one request, body included;
// httpWriteTimeout the writing of its answer (a streamed answer extends
// it as each part is taken: ingest's streamed); httpIdleTimeout closes a
// keep-alive connection left idle.
const (
	httpReadTimeout  = 30 * time.Second
	httpWriteTimeout = time.Minute
	httpIdleTimeout  = 2 * time.Minute
)

// lowDiskFree is the free space under which serve warns at start.
const lowDiskFree = 256 << 20

// freeGauges are the gauges of the space left where the ledger (and its
// checkpoints) and the embedded JetStream store are, which may be two
// file systems (DATA/jetstream mounted apart), and warn at start of
// those nearly full: a full disk showed first as clients' 503s, and one
// only under DATA/jetstream not at all (full-disk walks).
func freeGauges(cfg ServeConfig, log *slog.Logger) []prometheus.Collector {
	dirs := [][2]string{{"ledger", cfg.Data}}
	if cfg.NATS == "" {
		dirs = append(dirs, [2]string{"jetstream", filepath.Join(cfg.Data, JetStreamDir)})
	}
	var cs []prometheus.Collector
	for _, d := range dirs {
		free := func() (uint64, bool) {
			if f, ok := ledger.FreeBytes(d[1]); ok {
				return f, true
			}
			return ledger.FreeBytes(cfg.Data) // not made yet: it will be there
		}
		f, ok := free()
		if !ok {
			continue
		}
		if f < lowDiskFree {
			log.Warn("a file system of the data dir is nearly full: appends, checkpoints and the mirror need room (docs/clients.md, Disk space)",
				logKeyStoreKind, d[0], logKeyFree, f, logKeyData, d[1])
		}
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "recledger_data_free_bytes",
			Help:        "Space left on the file system of the ledger (with its checkpoints) and of the embedded JetStream store, by store.",
			ConstLabels: prometheus.Labels{"store": d[0]},
		}, func() float64 { f, _ := free(); return float64(f) }))
	}
	return cs
}

// httpMaxHeaderBytes bounds a request's header (net/http's default is 1
// MiB, read before any token is checked: a walk's 1,500 connections
// each sending a megabyte of header took 3.6 GB). The desktops' and
// feeds' headers are a few hundred bytes; a bearer token and a proxy's
// additions fit many times over. Beyond it net/http answers 431.
const httpMaxHeaderBytes = 32 << 10

// reservedFiles is what serve opens besides HTTP connections: the ledger,
// the embedded server's stream files and clients, logs, the CTI and
// upload connections, with room to spare.
const reservedFiles = 256

// The bounds of ServeConfig.MaxConnections.
const (
	minMaxConnections = 16
	maxMaxConnections = 1_000_000
)

// callGauges are the gauges of the live state's active calls: a CTI feed
// that never sends `ended` keeps its calls active, and their memory, for
// good (an adversarial walk's 120,000 ringing calls took 390 MB);
// these let an administrator see it and alert on it.
func callGauges(live *projections.Live) []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "recledger_active_calls",
			Help: "Calls active in the live state (a call is active until its ended signal).",
		}, func() float64 { return float64(live.CallCounts().Active) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "recledger_active_calls_without_agent",
			Help: "Active calls on an extension no agent was at when they began (call data only).",
		}, func() float64 { return float64(live.CallCounts().WithoutAgent) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "recledger_oldest_active_call_start_seconds",
			Help: "Unix time of the earliest start among the active calls (0 when none): a call days old means a feed that did not send its ended.",
		}, func() float64 {
			if t := live.CallCounts().OldestStart; !t.IsZero() {
				return float64(t.UnixMilli()) / 1000
			}
			return 0
		}),
	}
}

// StartServer opens everything and starts serving; it returns once the HTTP
// listener is bound. Stop it by cancelling ctx, then Wait.
//
// In order: the tokens file (read before anything is created: a refused
// file leaves no data dir), the ledger (openStore), the live projections
// (loadState), NATS and the streams (connectNATS), the workers behind the
// intake (newWorkers), the API and its --config file, the HTTP server on
// the listener bound after the ledger was opened (bind, httpServer), and
// every goroutine (run).
func StartServer(ctx context.Context, cfg ServeConfig) (*Server, error) {
	start := time.Now()
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if err := ledger.CheckSite(cfg.Site); err != nil {
		return nil, fmt.Errorf("serve: --site: %w", err)
	}
	if err := checkNotEmpty(cfg); err != nil {
		return nil, err
	}
	tokens, err := loadTokens(cfg.TokensFile, log)
	if err != nil {
		return nil, err
	}
	if cfg.ConfigFile != "" {
		// Checked before anything is created or claimed too; appended
		// once the state is up (ApplyConfigFile).
		if err := ingest.CheckConfigFile(cfg.ConfigFile, tokens); err != nil {
			return nil, fmt.Errorf("serve: --config: %w", err)
		}
	}
	if err := os.MkdirAll(cfg.Data, 0o755); err != nil {
		return nil, fmt.Errorf("serve: data dir: %w", err)
	}
	s := &Server{cfg: cfg, log: log, done: make(chan struct{}), registry: prometheus.NewRegistry()}
	s.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewBuildInfoCollector())
	s.registry.MustRegister(freeGauges(cfg, log)...)
	ok := false
	defer func() {
		if !ok {
			s.closeAll()
		}
	}()

	if err := s.openStore(ctx); err != nil {
		return nil, err
	}
	// Bound before an empty ledger is claimed (connectNATS): a port in
	// use leaves a new data dir unclaimed.
	if err := s.bind(); err != nil {
		return nil, err
	}
	replayed, err := s.loadState(ctx)
	if err != nil {
		return nil, err
	}
	head, _ := s.store.Head()
	m, err := s.connectNATS(ctx, tokens, head)
	if err != nil {
		return nil, err
	}
	// The state we started from is checkpointed up to head−replayed (up
	// to head with --rebuild, saved before serving).
	saved := head - replayed
	if cfg.Rebuild {
		saved = head
	}
	w := s.newWorkers(m, saved)
	api, err := ingest.New(ingest.Options{
		Appender:    s.store,
		Views:       s.live,
		Events:      s.store,
		Health:      w.outbox,
		Manifests:   w.manifests,
		Checkpoints: w.checkpointer,
		Site:        cfg.Site,
		Tokens:      tokens,
		Logger:      log,
		Registry:    s.registry,
	})
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	if cfg.ConfigFile != "" {
		if err := api.ApplyConfigFile(ctx, cfg.ConfigFile); err != nil {
			return nil, fmt.Errorf("serve: --config: %w", err)
		}
	}
	httpSrv, ln := s.httpServer(api)
	s.run(ctx, w, api, httpSrv, ln)
	ok = true
	log.Info("recledger serving", logKeyHTTP, "http://"+ln.Addr().String(), logKeyNATS, ledger.RedactURLs(s.natsURL),
		logKeySite, cfg.Site, logKeyData, cfg.Data, logKeyTook, time.Since(start).Round(time.Millisecond))
	return s, nil
}

// Addr is the bound HTTP address (host:port).
func (s *Server) Addr() string { return s.httpLn.Addr().String() }

// NATSURL is the NATS client URL(s) the server uses.
func (s *Server) NATSURL() string { return s.natsURL }

// Stop asks the server to stop; Wait returns when it has.
func (s *Server) Stop() { s.cancel() }

// Wait blocks until the server has stopped and everything is closed.
func (s *Server) Wait() error {
	<-s.done
	if errors.Is(s.err, context.Canceled) {
		return nil
	}
	return s.err
}

// closeAll releases what StartServer opened, in reverse order.
func (s *Server) closeAll() {
	if s.httpLn != nil {
		s.httpLn.Close() // closed already once served: http.Server.Shutdown closes it
	}
	if s.ctiNC != nil {
		s.ctiNC.Close()
	}
	if s.nc != nil {
		s.nc.Close()
	}
	if s.store != nil {
		if err := s.store.Close(); err != nil {
			s.log.Error("closing ledger", logKeyErr, err)
		}
	}
	if s.nsrv != nil {
		s.nsrv.Shutdown()
		s.nsrv.WaitForShutdown()
	}
}

// noteUpgrade says, at a start that folded every event, when the reason
// is a checkpoint of another build (an upgrade), and what follows from it,
// or a damaged checkpoint of this build's version.
func noteUpgrade(ctx context.Context, store *ledger.Store, log *slog.Logger) (said bool) {
	if _, _, err := store.LoadCheckpoint(ctx, projections.Version); errors.Is(err, ledger.ErrCorrupt) {
		log.Warn("the stored checkpoint is damaged, so every event was folded again; the next checkpoint replaces it. "+
			"Run `recledger verify` on the data dir when the server is next stopped: it checks the rest of the file",
			logKeyErr, err)
		return false
	}
	versions, err := store.CheckpointVersions(ctx)
	if err != nil {
		return false
	}
	var other []string
	for _, v := range versions {
		if v != projections.Version {
			other = append(other, v)
		}
	}
	if len(other) == 0 {
		return false
	}
	log.Info("a new build: the stored checkpoint is of another projection version, so every event was folded again, each with the rules of its own version; "+
		"this build's first checkpoint replaces it. Events appended from now on are of this build's event version: an older build will not serve this ledger afterwards (docs/replay.md, Upgrading)",
		logKeyStored, strings.Join(other, ","), logKeyProjections, projections.Version, logKeyEventVersion, ledger.CurrentVersion)
	return true
}

// noteEventVersion says, at the start of a build whose event version is
// newer than every event of the ledger, that the events it appends end a
// plain rollback: an upgrade walk's new build, of the same projection
// version, loaded the old checkpoint and said nothing of it.
func noteEventVersion(st *projections.State, log *slog.Logger) {
	if st.Seq() == 0 || st.NewestVersion() >= ledger.CurrentVersion {
		return
	}
	log.Info("a new build: the ledger's events are of an older event version; events appended from now on are of this build's, "+
		"and an older build will not serve this ledger afterwards (docs/replay.md, Upgrading)",
		logKeyLedgerVersion, st.NewestVersion(), logKeyEventVersion, ledger.CurrentVersion)
}
