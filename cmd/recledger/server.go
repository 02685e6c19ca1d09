package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/recledger/recledger/ingest"
	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/projections"
	"github.com/recledger/recledger/replay"
)

// Log attribute keys used by serve.
const (
	logKeyHTTP      = "http"
	logKeyNATS      = "nats"
	logKeySite      = "site"
	logKeyData      = "data"
	logKeySeq       = "seq"
	logKeyTail      = "replayed"
	logKeyTook      = "took"
	logKeyErr       = "err"
	logKeyServer    = "component"
	logKeyFile      = "file"
	logKeyGiveUp    = "gives_up_in"
	logKeyTimeout   = "timeout"
	logKeyWhy       = "why"
	logKeyFree      = "free_bytes"
	logKeyStoreKind = "store"

	logKeyStored       = "stored_version"
	logKeyProjections  = "projection_version"
	logKeyEventVersion = "event_version"
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
	httpLn   net.Listener
	natsURL  string
	group    *errgroup.Group
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
func StartServer(ctx context.Context, cfg ServeConfig) (*Server, error) {
	start := time.Now()
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if err := ledger.CheckSite(cfg.Site); err != nil {
		return nil, fmt.Errorf("serve: --site: %w", err)
	}
	// Read before anything is created: a refused file leaves no data dir.
	var tokens *ingest.Tokens
	if cfg.TokensFile != "" {
		var err error
		if tokens, err = ingest.LoadTokens(cfg.TokensFile); err != nil {
			return nil, fmt.Errorf("serve: %w", err)
		}
		for _, w := range tokens.Warnings() {
			log.Warn(w)
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

	store, err := openForServe(ctx, cfg.Data, log)
	if err != nil {
		return nil, err
	}
	s.store = store
	if on, err := store.Restoring(ctx); err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	} else if on {
		held, _ := store.Head()
		return nil, fmt.Errorf("serve: %s: %w: a restore into it did not finish (it holds the mirror's first %d events; served, its next event would fork the history): "+
			"run `recledger restore --from-jetstream` again with the same --data, --nats and --site to complete it, or move the dir away", cfg.Data, ledger.ErrConflict, held)
	}
	claim := func() error {
		if err := store.ClaimSite(ctx, cfg.Site); err != nil {
			return fmt.Errorf("serve: --site %s: %w: serve it as its own site, or start another data dir for %s", cfg.Site, err, cfg.Site)
		}
		return nil
	}
	// An empty ledger is claimed once the mirror beside it was looked at
	// (refuseLostLedger): a refused start must not claim the dir.
	if first, _ := store.Head(); first > 0 {
		if err := claim(); err != nil {
			return nil, err
		}
	}

	// Rebuild the projections: newest checkpoint + the tail, or every
	// event when asked (--rebuild).
	var (
		state    *projections.State
		replayed uint64
	)
	folding := time.Now() // not start: opening the store may have waited for an offline reader
	if cfg.Rebuild {
		st, stats, err := replay.Run(ctx, store, replay.Options{Sections: store})
		if err != nil {
			return nil, fmt.Errorf("serve: replay: %w", err)
		}
		// Replaced before anything is served: a crash before the first
		// save would bring the checkpoint that was not read back.
		sv, err := replay.Save(ctx, store, st)
		if err != nil {
			return nil, fmt.Errorf("serve: --rebuild: replacing the checkpoint: %w", err)
		}
		state, replayed = st, stats.Events
		log.Warn("projections rebuilt from the events alone (--rebuild); the stored checkpoint was not read, and is replaced",
			logKeySeq, sv.Seq, logKeyTook, time.Since(folding).Round(time.Millisecond))
	} else if state, replayed, err = replay.Load(ctx, store, store); err != nil {
		return nil, fmt.Errorf("serve: replay: %w", err)
	} else if head, _ := store.Head(); head > 0 && replayed == head {
		noteUpgrade(ctx, store, log)
	}
	s.live = projections.NewLive(state)
	store.Subscribe(s.live.OnCommit)
	s.registry.MustRegister(callGauges(s.live)...)
	head, _ := store.Head()
	log.Info("projections ready", logKeySeq, head, logKeyTail, replayed, logKeyTook, time.Since(folding).Round(time.Millisecond))

	// JetStream: embedded unless --nats names a cluster. The embedded
	// server lets its clients do what the tokens file lets them do over
	// HTTP, and only this process write the streams.
	urls := cfg.NATS
	var own []nats.Option
	if urls == "" {
		eo := ledger.EmbeddedOptions{
			StoreDir: filepath.Join(cfg.Data, JetStreamDir),
			Listen:   cfg.NATSListen,
			Logger:   log,
			Site:     cfg.Site,
		}
		if tokens != nil {
			eo.Authorize = tokens.NATS
		}
		ns, err := ledger.StartEmbedded(eo)
		if err != nil {
			return nil, fmt.Errorf("serve: %w", err)
		}
		s.nsrv = ns
		urls = ns.ClientURL()
		own = append(own, ns.Own())
	}
	s.natsURL = urls
	if s.nsrv == nil {
		// The ledger is the durable copy: an external NATS away at start
		// (a site's power cut, a cluster not up yet) delays the mirror,
		// not the agents' commands. The connections keep trying.
		own = append(own, nats.RetryOnFailedConnect(true))
	}
	nc, js, err := ledger.Connect(ctx, urls, "recledger-serve", log, own...)
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	s.nc = nc
	// Call signals come in on a connection of their own: a client of the
	// command role sending 30 MiB signals had NATS close the server's
	// connection as a slow consumer, three times in two seconds, and the
	// outbox's mirroring with it.
	ctiNC, _, err := ledger.Connect(ctx, urls, "recledger-cti", log, own...)
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	s.ctiNC = ctiNC
	replicas := cfg.Replicas
	if s.nsrv != nil {
		if replicas > 1 {
			log.Warn("--replicas is for an external NATS cluster (--nats): the embedded server keeps one copy of the streams", "replicas", replicas)
		}
		replicas = 1
	}
	// The embedded server's streams take messages on secret subjects of
	// this start, so no client can have JetStream store anything in them
	// (ledger.Embedded.Capture); an external NATS is its operator's.
	var capture string
	if s.nsrv != nil {
		capture = s.nsrv.Capture()
	}
	var mirrored uint64
	if !nc.IsConnected() {
		// Nothing to check the ledger against yet: the outbox makes the
		// streams and checks that the stream continues the ledger once
		// the server is reached (an outbox_problem on /readyz if not).
		log.Warn("the NATS server is not reachable: serving from the ledger; the mirror catches up when it is (see /readyz)",
			logKeyNATS, ledger.RedactURLs(urls))
		if head == 0 {
			if err := claim(); err != nil {
				return nil, err
			}
		}
	} else {
		if err := ledger.EnsureStreamsCapturing(ctx, js, cfg.Site, replicas, capture); errors.Is(err, ledger.ErrFewerReplicas) {
			log.Warn("jetstream streams take the site with fewer replicas than --replicas asks", logKeyErr, err)
		} else if err != nil {
			// The ledger is the durable copy: serve anyway, the outbox catches up.
			log.Warn("jetstream streams not ready; the outbox will catch up", logKeyErr, err)
		}
		if head == 0 {
			if err := refuseLostLedger(ctx, js, cfg); err != nil {
				return nil, fmt.Errorf("serve: %w", err)
			}
			if err := claim(); err != nil {
				return nil, err
			}
		}
		if mirrored, err = refuseLedgerBehind(ctx, js, cfg, head); err != nil {
			return nil, fmt.Errorf("serve: %w", err)
		}
	}

	outbox := ledger.NewOutbox(store, js, cfg.Site, log)
	outbox.CreateStreams(replicas) // streams missing now (JetStream down) are made when it is back
	outbox.PublishUnder(capture)
	outbox.Holds(mirrored) // /readyz's lag is right before the outbox's first look
	manifests := ledger.NewManifestOutbox(js, cfg.Site, s.live, log)
	manifests.CreateStreams(replicas)
	manifests.PublishUnder(capture)
	manifests.AfterEvents(outbox.Confirmed) // a manifest never before its seal event
	if s.nsrv != nil {
		// Not while the Mender restarts JetStream (ledger.Embedded.Steady).
		outbox.CreateSteadily(s.nsrv.Steady)
		manifests.CreateSteadily(s.nsrv.Steady)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	sched := &ingest.Scheduler{Appender: store, View: s.live, Now: now, Logger: log,
		Began: func(ctx context.Context) (time.Time, bool) {
			first, err := store.Get(ctx, 1)
			return first.Time.Time, err == nil
		}}
	// Commits wake the schedulers at once instead of at their next poll: a
	// config change may move the upload time, a seal has a manifest to
	// publish. New pauses are found by the scheduler's own poll (a second):
	// an expiry closes the pause at its due time however late it fires.
	store.Subscribe(func(envs []ledger.Envelope) {
		for i := range envs {
			switch envs[i].Type {
			case ledger.TypeConfig:
				sched.Wake()
			case ledger.TypeDayClosed:
				manifests.Wake()
			}
		}
	})

	// Saved: the state we started from is already checkpointed up to
	// head−replayed, so the first save waits for that many new events.
	// Its From is read in its own goroutine, below: it may take a while.
	checkpointer := &replay.Checkpointer{Store: store, Source: store, Live: s.live,
		EveryEvents: cfg.CheckpointEvents, Every: cfg.CheckpointEvery, Saved: head - replayed, Logger: log}
	if cfg.Rebuild {
		checkpointer.Saved = head // saved before serving
	}
	s.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "recledger_checkpoint_seq",
		Help: "The seq of the newest checkpoint saved: a restart folds the events after it (recledger_ledger_head_seq minus this).",
	}, func() float64 { return float64(checkpointer.SavedSeq()) }))
	api, err := ingest.New(ingest.Options{
		Appender:    store,
		Views:       s.live,
		Events:      store,
		Health:      outbox,
		Manifests:   manifests,
		Checkpoints: checkpointer,
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

	ln, err := net.Listen("tcp", cfg.HTTP)
	if err != nil {
		return nil, fmt.Errorf("serve: http: %w", err)
	}
	s.httpLn = ln
	connState := api.ConnState
	if cfg.MaxConnections > 0 {
		lim := newConnLimit(ln, cfg.MaxConnections)
		ln = lim
		connState = func(c net.Conn, st http.ConnState) {
			lim.ConnState(c, st)
			api.ConnState(c, st)
		}
		s.registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "recledger_http_connections_shed_total",
			Help: "HTTP connections answered 503 and closed because --http-max-connections were open and none idle.",
		}, func() float64 { return float64(lim.Shed()) }))
	}
	// A request has 30 s to arrive whole (16 KiB of command, at most 1 MiB
	// of signals or configuration), and an idle keep-alive connection is
	// closed after 2 minutes: a client that stalls holds nothing for long,
	// nor a stop. An answer has a minute to be taken, and a streamed one
	// (an export of the pauses) a minute for each part: without it, a
	// client that sent requests and never read the answers held its
	// connection for good, and 32 such held every slot of
	// --http-max-connections (a walk).
	httpSrv := &http.Server{Handler: api.Handler(), ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: httpReadTimeout, WriteTimeout: httpWriteTimeout, IdleTimeout: httpIdleTimeout, MaxHeaderBytes: httpMaxHeaderBytes,
		ConnState: connState}

	gctx, cancel := context.WithCancel(ctx)
	s.cancel = cancel
	g, gctx := errgroup.WithContext(gctx)
	s.group = g

	// Stopping goes in two steps. The intake (HTTP, the CTI subscriber)
	// stops first and finishes its requests; the workers behind it (the
	// outbox, manifests, scheduler and checkpointer) run on workCtx until
	// then, so that the final checkpoint and the mirror hold every
	// command acknowledged during the drain.
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(gctx))
	ctiDone := make(chan struct{})
	g.Go(func() error { return outbox.Run(workCtx) })
	g.Go(func() error {
		return manifests.Run(workCtx)
	})
	g.Go(func() error {
		return sched.Run(workCtx)
	})
	g.Go(func() error {
		// Its own copy of the state starts from the same checkpoint the
		// live state did (read again: the live one is not to be shared).
		read := time.Now()
		checkpointer.From = replay.FromCheckpoint(workCtx, store)
		checkpointer.FromTook = time.Since(read)
		err := checkpointer.Run(workCtx)
		if err != nil {
			// Only the final save returns an error. Nothing is lost: the
			// next start replays the events since the last checkpoint.
			log.Error("final checkpoint not saved; the next start replays the events since the last one", logKeyErr, err)
		}
		return nil
	})
	g.Go(func() error { return api.CheckChain(workCtx) })
	if s.nsrv != nil {
		// A JetStream store whose write failed (a full disk) takes nothing
		// until JetStream opens it anew: done once the disk has room.
		g.Go(func() error {
			return (&ledger.Mender{Server: s.nsrv, Publishers: []ledger.Staller{outbox, manifests},
				Dir: filepath.Join(cfg.Data, JetStreamDir), After: cfg.MendAfter, Log: log}).Run(workCtx)
		})
	}
	g.Go(func() error {
		defer close(ctiDone)
		return api.RunCTI(gctx, ctiNC, cfg.Site)
	})
	g.Go(func() error {
		if err := httpSrv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		defer stopWork()
		<-gctx.Done()
		why := context.Cause(gctx)
		if why != nil && strings.Contains(why.Error(), "hangup") {
			// An operator's "reload" is a stop here: say so.
			log.Info("stopping: finishing the requests in flight (SIGHUP stops recledger, as a closing terminal sends it; it does not reload: start it again to read changed files)", logKeyWhy, why)
		} else {
			log.Info("stopping: finishing the requests in flight", logKeyWhy, why)
		}
		// Finish in-flight requests: each returns only after its append is durable.
		sctx, scancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer scancel()
		err := httpSrv.Shutdown(sctx)
		if errors.Is(err, context.DeadlineExceeded) {
			// Requests still open at the timeout are cut off. Each was
			// either answered (durable) or never appended: nothing
			// acknowledged is lost, so the stop is still clean.
			httpSrv.Close()
			log.Warn("stopping: requests still open after the shutdown timeout were cut off; their clients got no answer, and what a request had not finished sending was not appended",
				logKeyTimeout, cfg.ShutdownTimeout)
			err = nil
		}
		<-ctiDone
		// Let the outbox mirror what the drain appended, for a moment.
		for wait := time.Now().Add(mirrorGrace); outbox.Lag() > 0 && time.Now().Before(wait); {
			time.Sleep(10 * time.Millisecond)
		}
		return err
	})

	serving := servingInfo{PID: os.Getpid(), HTTP: "http://" + ln.Addr().String(), NATS: urls, Site: cfg.Site}
	if err := writeServing(cfg.Data, serving); err != nil {
		log.Warn("cannot record where this server is served; offline commands will not find it until it can; trying again every 5 s", logKeyErr, err)
		// A full disk, say: tried again until it goes through.
		g.Go(func() error {
			t := time.NewTicker(servingRetry)
			defer t.Stop()
			for {
				select {
				case <-gctx.Done():
					return nil
				case <-t.C:
					if writeServing(cfg.Data, serving) == nil {
						log.Info("recorded where this server is served")
						return nil
					}
				}
			}
		})
	}
	go func() {
		s.err = g.Wait()
		head, _ := store.Head()
		removeServing(cfg.Data)
		s.closeAll()
		if s.err != nil && !errors.Is(s.err, context.Canceled) {
			log.Error("recledger stopped", logKeyErr, s.err, logKeySeq, head)
		} else {
			log.Info("recledger stopped", logKeySeq, head)
		}
		close(s.done)
	}()
	ok = true
	log.Info("recledger serving", logKeyHTTP, "http://"+ln.Addr().String(), logKeyNATS, ledger.RedactURLs(urls),
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

// refuseLedgerBehind fails when the mirror holds more of the site's events
// than the ledger: the outbox publishes only what the ledger committed, so
// the ledger lost its tail (an interrupted restore, a copy of the ledger
// older than the copy of its mirror), and serving would give seqs the
// mirror holds to other events. A mirror that cannot be read now does
// not stop the start.
// It returns the mirror's head as read (0 when it could not be).
func refuseLedgerBehind(ctx context.Context, js jetstream.JetStream, cfg ServeConfig, head uint64) (uint64, error) {
	tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	n, err := ledger.JetStreamHead(tctx, js, cfg.Site)
	if err != nil {
		return 0, nil
	}
	if n <= head {
		return n, nil
	}
	path := filepath.Join(cfg.Data, LedgerFile)
	nats := ""
	if cfg.NATS != "" {
		nats = " --nats URL"
	}
	return 0, fmt.Errorf("%w: %s ends at seq %d, but the mirror holds %d events of site %s: the ledger lost its tail "+
		"(an interrupted restore, or a copy of the ledger older than the copy of its mirror), and serving would give "+
		"seqs the mirror holds to other events. Complete it from the mirror with `recledger restore --from-jetstream%s --data %s --site %s` "+
		"(it continues a ledger that is the mirror's start), then serve again. If restore refuses it as not the mirror's start, "+
		"the two hold different histories: compare them with `recledger verify`, then move away the one to give up (docs/replay.md)",
		ledger.ErrMismatch, path, head, n, cfg.Site, nats, cfg.Data, cfg.Site)
}

// refuseLostLedger fails when the ledger holds no events but the mirror
// holds some of the site's: the ledger file was lost or replaced, and
// serving would start a second history under the same subjects (new
// events from seq 1), which the mirror refuses and which blocks a
// restore. A mirror that cannot be read now does not stop the start.
func refuseLostLedger(ctx context.Context, js jetstream.JetStream, cfg ServeConfig) error {
	tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	path := filepath.Join(cfg.Data, LedgerFile)
	if cfg.NATS == "" {
		// The embedded mirror is this dir's alone: events of another
		// site in it mean the dir was served under that name.
		if other, n := ledger.MirrorSite(tctx, js); n > 0 && other != cfg.Site {
			return fmt.Errorf("%w: %s holds no events, but the mirror in %s holds %d of site %s: this data dir was served as site %s. "+
				"Serve it with --site %s; if its ledger file was lost, rebuild it first with `recledger restore --from-jetstream --data %s --site %s`",
				ledger.ErrMismatch, path, filepath.Join(cfg.Data, JetStreamDir), n, other, other, other, cfg.Data, other)
		}
	}
	n, err := ledger.JetStreamHead(tctx, js, cfg.Site)
	if err != nil || n == 0 {
		return nil
	}
	if cfg.NATS == "" {
		return fmt.Errorf("%w: %s holds no events, but the mirror in %s holds %d of site %s: the ledger file was lost or replaced. "+
			"Rebuild it from the mirror with `recledger restore --from-jetstream --data %s --site %s`, then serve again; "+
			"to start a new ledger instead, move %s away first",
			ledger.ErrMismatch, path, filepath.Join(cfg.Data, JetStreamDir), n, cfg.Site, cfg.Data, cfg.Site, filepath.Join(cfg.Data, JetStreamDir))
	}
	return fmt.Errorf("%w: %s holds no events, but the stream %s holds %d of site %s: the ledger file was lost or replaced. "+
		"Rebuild it from the mirror with `recledger restore --from-jetstream --nats URL --data %s --site %s`, then serve again; "+
		"to start a new ledger instead, serve it as another --site, or remove the site's events from the stream first",
		ledger.ErrMismatch, path, ledger.EventsStream, n, cfg.Site, cfg.Data, cfg.Site)
}

// noteUpgrade says, at a start that folded every event, when the reason
// is a checkpoint of another build (an upgrade), and what follows from it.
func noteUpgrade(ctx context.Context, store *ledger.Store, log *slog.Logger) {
	versions, err := store.CheckpointVersions(ctx)
	if err != nil {
		return
	}
	var other []string
	for _, v := range versions {
		if v != projections.Version {
			other = append(other, v)
		}
	}
	if len(other) == 0 {
		return
	}
	log.Info("a new build: the stored checkpoint is of another projection version, so every event was folded again, each with the rules of its own version; "+
		"this build's first checkpoint replaces it. Events appended from now on are of this build's event version: an older build will not serve this ledger afterwards (docs/replay.md, Upgrading)",
		logKeyStored, strings.Join(other, ","), logKeyProjections, projections.Version, logKeyEventVersion, ledger.CurrentVersion)
}
