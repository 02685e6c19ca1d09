package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/recledger/recledger/ingest"
	"github.com/recledger/recledger/ledger"
)

// mirror is what serve knows of the JetStream side once connected.
type mirror struct {
	js       jetstream.JetStream
	replicas int    // the streams' replicas: 1 with the embedded server
	capture  string // the embedded server's secret subjects (ledger.Embedded.Capture); "" with an external NATS
	mirrored uint64 // the mirror's head as read at start (0 when it could not be)
	read     bool   // the mirror's head was read at start
}

// connectNATS starts the embedded NATS server unless --nats names one,
// connects the streams' and the call signals' connections, makes the
// streams, and checks that the mirror continues the ledger, whose head is
// head (an empty ledger is claimed here, once its mirror was looked at).
// The embedded server lets its clients do what the tokens file lets them
// do over HTTP, and only this process write the streams.
func (s *Server) connectNATS(ctx context.Context, tokens *ingest.Tokens, head uint64) (mirror, error) {
	cfg, log := s.cfg, s.log
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
		eo.Redact = tokens.RedactText // nil tokens: card numbers masked all the same
		ns, err := ledger.StartEmbedded(eo)
		if err != nil {
			return mirror{}, fmt.Errorf("serve: embedded NATS server on --nats-listen %s: %w", cfg.NATSListen, err)
		}
		s.nsrv = ns
		urls = ns.ClientURL()
		own = append(own, ns.Own())
	} else {
		// The ledger is the durable copy: an external NATS away at start
		// (a site's power cut, a cluster not up yet), or refusing this
		// server's credentials for a while (a password being changed),
		// delays the mirror, not the agents' commands. The connections
		// keep trying.
		own = append(own, ledger.KeepTrying())
	}
	s.natsURL = urls
	// Call signals come in on a connection of their own: a client of the
	// command role sending 30 MiB signals had NATS close the server's
	// connection as a slow consumer, three times in two seconds, and the
	// outbox's mirroring with it. The two connect side by side: a NATS
	// server that does not answer delays the start once, not twice.
	var ctiNC *nats.Conn
	ctiErr := make(chan error, 1)
	go func() {
		var err error
		ctiNC, _, err = ledger.Connect(ctx, urls, "recledger-cti", log, append(slices.Clone(own), ledger.Follow(&s.ctiLink))...)
		ctiErr <- err
	}()
	nc, js, err := ledger.Connect(ctx, urls, "recledger-serve", log, append(slices.Clone(own), ledger.Follow(&s.ncLink))...)
	s.nc = nc
	errCTI := <-ctiErr
	s.ctiNC = ctiNC
	if err == nil {
		err = errCTI
	}
	if err != nil {
		return mirror{}, fmt.Errorf("serve: %w", err)
	}
	m := mirror{js: js, replicas: cfg.Replicas}
	if s.nsrv != nil {
		if m.replicas > 1 {
			log.Warn("--replicas is for an external NATS cluster (--nats): the embedded server keeps one copy of the streams", logKeyReplicas, m.replicas)
		}
		m.replicas = 1
		// The embedded server's streams take messages on secret subjects
		// of this start, so no client can have JetStream store anything
		// in them (ledger.Embedded.Capture); an external NATS is its
		// operator's.
		m.capture = s.nsrv.Capture()
	}
	if !connectedNow(nc, &s.ncLink) {
		// Nothing to check the ledger against yet: the outbox makes the
		// streams and checks that the stream continues the ledger once
		// the server is reached (an outbox_problem on /readyz if not).
		// The nats lines before say why: not reachable, or refusing
		// serve's credentials (ledger.Connect's first try).
		log.Warn("the NATS server is not connected (the nats lines before say why): serving from the ledger; the connections keep trying, and the mirror catches up once connected (see /readyz)",
			logKeyNATS, ledger.RedactURLs(urls))
		if head == 0 {
			return m, s.claim(ctx)
		}
		return m, nil
	}
	if err := ledger.EnsureStreamsCapturing(ctx, js, cfg.Site, m.replicas, m.capture); errors.Is(err, ledger.ErrFewerReplicas) || errors.Is(err, ledger.ErrStreamLimits) {
		log.Warn("jetstream streams take the site, with fewer replicas than --replicas asks or limits that remove its messages", logKeyErr, err)
	} else if err != nil {
		// The ledger is the durable copy: serve anyway, the outbox catches up.
		log.Warn("jetstream streams not ready; the outbox will catch up", logKeyErr, err)
	}
	if head == 0 {
		if err := refuseLostLedger(ctx, js, cfg); err != nil {
			return m, fmt.Errorf("serve: %w", err)
		}
		if err := s.claim(ctx); err != nil {
			return m, err
		}
	}
	if m.mirrored, m.read, err = refuseLedgerBehind(ctx, js, cfg, head); err != nil {
		return m, fmt.Errorf("serve: %w", err)
	}
	return m, nil
}

// refuseLedgerBehind fails when the mirror holds more of the site's events
// than the ledger: the outbox publishes only what the ledger committed, so
// the ledger lost its tail (an interrupted restore, a copy of the ledger
// older than the copy of its mirror), and serving would give seqs the
// mirror holds to other events. A mirror that cannot be read now does
// not stop the start.
// It returns the mirror's head, and whether it could be read.
func refuseLedgerBehind(ctx context.Context, js jetstream.JetStream, cfg ServeConfig, head uint64) (uint64, bool, error) {
	tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	n, err := ledger.JetStreamHead(tctx, js, cfg.Site)
	if err != nil {
		return 0, false, nil
	}
	if n <= head {
		return n, true, nil
	}
	path := filepath.Join(cfg.Data, LedgerFile)
	nats := ""
	if cfg.NATS != "" {
		nats = " --nats URL"
	}
	return 0, true, fmt.Errorf("%w: %s ends at seq %d, but the mirror holds %d events of site %s: the ledger lost its tail "+
		"(an interrupted restore, a copy of the ledger older than the copy of its mirror, or a damaged file: `recledger verify` checks its pages), and serving would give "+
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

// connectedNow is nc.IsConnected without waiting out a reconnect's dial:
// nats.go holds the connection's lock while it dials, and with three NATS
// addresses that did not answer a walk's start waited 2 s more here. A
// connection whose lock is held that long is dialing, so not connected;
// the look left behind ends with that dial.
func connectedNow(nc *nats.Conn, link *ledger.Link) bool {
	if link.Connected() {
		return true
	}
	answer := make(chan bool, 1)
	go func() { answer <- nc.IsConnected() }()
	t := time.NewTimer(250 * time.Millisecond)
	defer t.Stop()
	select {
	case up := <-answer:
		return up
	case <-t.C:
		return false
	}
}
