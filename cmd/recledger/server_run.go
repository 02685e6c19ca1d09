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
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/recledger/recledger/ingest"
	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/replay"
)

// workers are the parts of serve behind the intake: each runs in a
// goroutine of the server's group until the intake has drained.
type workers struct {
	outbox       *ledger.Outbox
	manifests    *ledger.ManifestOutbox
	sched        *ingest.Scheduler
	checkpointer *replay.Checkpointer
}

// newWorkers makes the outboxes (events and manifests), the scheduler
// (seals, pause expiries) and the checkpointer; saved is the seq the
// stored checkpoint covers.
func (s *Server) newWorkers(m mirror, saved uint64) workers {
	cfg, log, store := s.cfg, s.log, s.store
	outbox := ledger.NewOutbox(store, m.js, cfg.Site, log)
	outbox.CreateStreams(m.replicas) // streams missing now (JetStream down) are made when it is back
	outbox.PublishUnder(m.capture)
	if m.read {
		outbox.Holds(m.mirrored) // /readyz's lag is right before the outbox's first look
	}
	manifests := ledger.NewManifestOutbox(m.js, cfg.Site, s.live, log)
	manifests.CreateStreams(m.replicas)
	manifests.PublishUnder(m.capture)
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
	// The first save waits for saved's distance to the head in new
	// events. Its From is read in its own goroutine (run): it may take a
	// while.
	checkpointer := &replay.Checkpointer{Store: store, Source: store, Live: s.live,
		EveryEvents: cfg.CheckpointEvents, Every: cfg.CheckpointEvery, Saved: saved, Logger: log}
	s.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "recledger_checkpoint_seq",
		Help: "The seq of the newest checkpoint saved: a restart folds the events after it (recledger_ledger_head_seq minus this).",
	}, func() float64 { return float64(checkpointer.SavedSeq()) }))
	// Whether the mirror's and the call signals' connections are up: an
	// external NATS away or refusing serve's credentials shows here at
	// once, not only after the outbox has stalled (a walk).
	for _, c := range []struct {
		name string
		nc   *nats.Conn
		link *ledger.Link // not nc.IsConnected: a reconnect's dial holds its lock (a scrape waited seconds)
	}{{"mirror", s.nc, &s.ncLink}, {"call_signals", s.ctiNC, &s.ctiLink}} {
		if c.nc == nil {
			continue
		}
		s.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "recledger_nats_connected",
			Help:        "1 while serve's NATS connection (mirror: the outbox's and readers'; call_signals: the CTI subscriber's) is connected, else 0.",
			ConstLabels: prometheus.Labels{"connection": c.name},
		}, func() float64 {
			if c.link.Connected() {
				return 1
			}
			return 0
		}))
	}
	return workers{outbox: outbox, manifests: manifests, sched: sched, checkpointer: checkpointer}
}

// bind binds the HTTP listener.
func (s *Server) bind() error {
	ln, err := net.Listen("tcp", s.cfg.HTTP)
	if err != nil {
		return fmt.Errorf("serve: --http %s: %w", s.cfg.HTTP, err)
	}
	s.httpLn = ln
	return nil
}

// httpServer makes the HTTP server of api on the bound listener, bounded
// by --http-max-connections.
func (s *Server) httpServer(api *ingest.Server) (*http.Server, net.Listener) {
	ln := s.httpLn
	connState := api.ConnState
	if s.cfg.MaxConnections > 0 {
		lim := newConnLimit(ln, s.cfg.MaxConnections)
		ln, s.connLim = lim, lim
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
		ConnState: connState,
		// net/http's own errors (an accept that fails for want of file
		// descriptors, above all) are log records like the rest: a walk
		// found them in Go's plain log format.
		ErrorLog: slog.NewLogLogger(s.log.With(logKeyServer, "http").Handler(), slog.LevelWarn)}
	if n := openFilesLimit(); n > 0 && n < uint64(s.cfg.MaxConnections)+reservedFiles {
		way := "raise the limit (ulimit -n, systemd's LimitNOFILE)"
		if n >= minMaxConnections+reservedFiles {
			way += fmt.Sprintf(" or lower --http-max-connections to %d", n-reservedFiles)
		}
		s.log.Warn("the process may open fewer files than --http-max-connections needs: at the bound, accepts fail (\"too many open files\") instead of shedding with 503; "+way,
			logKeyOpenFiles, n, logKeyMaxConns, s.cfg.MaxConnections, logKeyReserved, reservedFiles)
	}
	return httpSrv, ln
}

// run starts every goroutine of the server in its group: the workers, the
// intake (HTTP on ln, the CTI subscriber) and the stop that drains them,
// then the one that closes everything when the group is done.
//
// Stopping goes in two steps. The intake stops first and finishes its
// requests; the workers behind it run on workCtx until then, so that the
// final checkpoint and the mirror hold every command acknowledged during
// the drain.
func (s *Server) run(ctx context.Context, w workers, api *ingest.Server, httpSrv *http.Server, ln net.Listener) {
	cfg, log := s.cfg, s.log
	asked, cancel := context.WithCancel(ctx) // done when a stop is asked (a signal, Stop)
	s.cancel = cancel
	g, gctx := errgroup.WithContext(asked)

	workCtx, stopWork := context.WithCancel(context.WithoutCancel(gctx))
	// The intake (the CTI subscriber; HTTP has its own Shutdown) stops
	// when the drain says, after its delay, not at the signal.
	intakeCtx, stopIntake := context.WithCancel(context.WithoutCancel(gctx))
	ctiDone := make(chan struct{})
	g.Go(func() error { return w.outbox.Run(workCtx) })
	g.Go(func() error { return w.manifests.Run(workCtx) })
	g.Go(func() error { return w.sched.Run(workCtx) })
	g.Go(func() error {
		// Its own copy of the state starts from the same checkpoint the
		// live state did (read again: the live one is not to be shared).
		read := time.Now()
		w.checkpointer.From = replay.FromCheckpoint(workCtx, s.store)
		w.checkpointer.FromTook = time.Since(read)
		if err := w.checkpointer.Run(workCtx); err != nil {
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
			return (&ledger.Mender{Server: s.nsrv, Publishers: []ledger.Staller{w.outbox, w.manifests},
				Dir: filepath.Join(cfg.Data, JetStreamDir), After: cfg.MendAfter, Log: log}).Run(workCtx)
		})
	}
	g.Go(func() error {
		defer close(ctiDone)
		return api.RunCTI(intakeCtx, s.ctiNC, cfg.Site)
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
		return s.drain(gctx, asked.Err() != nil, api, httpSrv, stopIntake, ctiDone, w.outbox)
	})
	s.recordServing(gctx, g, ln)
	go func() {
		s.err = g.Wait()
		head, _ := s.store.Head()
		lag, known, problem := w.outbox.Lag(), w.outbox.LagKnown(), w.outbox.Mismatch()
		removeServing(cfg.Data)
		s.closeAll()
		// What the mirror lacks is said, not left for /readyz: nothing
		// serves it now.
		switch {
		case s.err != nil && !errors.Is(s.err, context.Canceled):
			log.Error("recledger stopped", logKeyErr, s.err, logKeyHead, head, logKeyLag, lag)
		case lag > 0 && errors.Is(problem, ledger.ErrMismatch):
			log.Warn("recledger stopped; the mirror does not continue this ledger, so its events are not published until that is resolved (docs/replay.md, Verify and restore)",
				logKeyHead, head, logKeyLag, lag, logKeyErr, problem)
		case lag > 0 && !known:
			log.Warn("recledger stopped without having reached the mirror: what it holds is not known, up to every event (outbox_lag); the next start that reaches it publishes what it lacks",
				logKeyHead, head, logKeyLag, lag)
		case lag > 0:
			log.Warn("recledger stopped with events not yet in the mirror: the next start publishes them", logKeyHead, head, logKeyLag, lag)
		default:
			log.Info("recledger stopped", logKeyHead, head)
		}
		close(s.done)
	}()
}

// drain stops the intake once gctx is done: it finishes the HTTP requests
// in flight (each answers only once its append is durable), waits for the
// CTI subscriber to stop, and lets the outbox mirror what the drain
// appended, for a moment.
func (s *Server) drain(gctx context.Context, asked bool, api *ingest.Server, httpSrv *http.Server, stopIntake func(), ctiDone <-chan struct{}, outbox *ledger.Outbox) error {
	log := s.log
	why := context.Cause(gctx)
	api.Stopping()
	if d := s.cfg.DrainDelay; d > 0 && asked {
		// Not when a part of the server failed: then it stops at once.
		log.Info("stopping: /readyz answers 503 while requests are still served, for the drain delay, so that load balancers send new work elsewhere; a second signal stops at once",
			logKeyDelay, d, logKeyWhy, why)
		time.Sleep(d)
	}
	if why != nil && strings.Contains(why.Error(), "hangup") {
		// An operator's "reload" is a stop here: say so.
		log.Info("stopping: finishing the requests in flight (SIGHUP stops recledger, as a closing terminal sends it; it does not reload: start it again to read changed files)", logKeyWhy, why)
	} else {
		log.Info("stopping: finishing the requests in flight", logKeyWhy, why)
	}
	stopIntake()
	sctx, scancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer scancel()
	err := httpSrv.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		// Requests still open at the timeout are cut off. Each was
		// either answered (durable) or never appended: nothing
		// acknowledged is lost, so the stop is still clean.
		httpSrv.Close()
		log.Warn("stopping: requests still open after the shutdown timeout were cut off; their clients got no answer, and what a request had not finished sending was not appended",
			logKeyTimeout, s.cfg.ShutdownTimeout)
		err = nil
	}
	if s.connLim != nil {
		s.connLim.wait() // connections it was answering 503, a second at most
	}
	<-ctiDone
	for wait := time.Now().Add(mirrorGrace); outbox.Lag() > 0 && time.Now().Before(wait); {
		time.Sleep(10 * time.Millisecond)
	}
	return err
}

// recordServing writes where the server is served into the data dir, for
// the offline commands; a write that fails (a full disk) is tried again
// in a goroutine of g until it goes through.
func (s *Server) recordServing(gctx context.Context, g *errgroup.Group, ln net.Listener) {
	serving := servingInfo{PID: os.Getpid(), HTTP: "http://" + ln.Addr().String(), NATS: s.natsURL, Site: s.cfg.Site}
	err := writeServing(s.cfg.Data, serving)
	if err == nil {
		return
	}
	s.log.Warn("cannot record where this server is served; offline commands will not find it until it can; trying again every 5 s", logKeyErr, err)
	g.Go(func() error {
		t := time.NewTicker(servingRetry)
		defer t.Stop()
		for {
			select {
			case <-gctx.Done():
				return nil
			case <-t.C:
				if writeServing(s.cfg.Data, serving) == nil {
					s.log.Info("recorded where this server is served")
					return nil
				}
			}
		}
	})
}
