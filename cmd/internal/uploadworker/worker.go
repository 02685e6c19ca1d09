// Package uploadworker consumes the sealed end-of-day manifests from
// JetStream and writes one file per contact (and per metadata update) into
// a destination directory, acking a manifest only once every file is durable.
// Any number of workers may share the durable consumer; a worker killed at
// any point leaves each file whole or absent, and the redelivered manifest
// completes the work without writing anything twice.
package uploadworker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	neturl "net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/recledger/recledger/ledger"
)

// StreamName is the manifests stream (API.md §6).
const StreamName = "RECLEDGER_MANIFESTS"

// Log attribute keys.
const (
	logKeyDay         = "day"
	logKeyFiles       = "files"
	logKeyWritten     = "written"
	logKeySkipped     = "skipped"
	logKeyReplaced    = "replaced"
	logKeyFailed      = "failed_contacts" // the first maxFailedShown of them
	logKeyFailedCount = "failed"
	logKeyErr         = "err"
	logKeyDelivered   = "delivery"
	logKeyConsumer    = "consumer"
	logKeySubject     = "subject"
	logKeyAckWait     = "ack_wait"
	logKeyMaxDeliver  = "max_deliver"
	logKeySwept       = "temp_files_removed"
	logKeyTook        = "took"
	logKeyRetryIn     = "retry_in"
	logKeyMsgID       = "msg_id"
	logKeyURL         = "url"
	logKeySite        = "site"
	logKeyOtherSites  = "other_sites"
	logKeyContact     = "contact_id"
	logKeyFile        = "file"
	// logKeyManifestSite is the site of a manifest's subject, when it is
	// not the worker's.
	logKeyManifestSite = "manifest_site"
)

// Config is what a worker needs. Zero values take the defaults in Defaults.
type Config struct {
	Site     string // site name, part of the subject
	Dest     string // destination directory: Dest/{day}/{contact_id}.json
	Durable  string // durable consumer name; default "upload-{site}"
	MaxTries int    // attempts per file before the manifest is Nak'd; default 5
	Token    string // presented to NATS (a server with a tokens file wants the upload role); none when empty

	AckWait      time.Duration // consumer AckWait; default 5 min
	NakDelay     time.Duration // redelivery delay of a manifest that failed; default 1 min
	BackoffBase  time.Duration // first retry delay of a file; default 50 ms
	BackoffMax   time.Duration // retry delay cap; default 5 s
	StaleTemp    time.Duration // temp files older than this are swept; default 1 min
	FetchMaxWait time.Duration // how long one pull waits; default 2 s

	Logger *slog.Logger
	// OnFile, when set, is called after each file was handled (written or
	// skipped), with its path. Used for progress display and tests.
	OnFile func(path string)
	// OnSync, when set, is called after each directory fsync, with the
	// directory. Used for tests.
	OnSync func(dir string)
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.Durable == "" {
		c.Durable = ledger.UploadDurable(c.Site)
	}
	if c.MaxTries <= 0 {
		c.MaxTries = 5
	}
	if c.AckWait <= 0 {
		c.AckWait = ledger.UploadAckWait
	}
	if c.NakDelay <= 0 {
		c.NakDelay = time.Minute
	}
	if c.BackoffBase <= 0 {
		c.BackoffBase = 50 * time.Millisecond
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = 5 * time.Second
	}
	if c.StaleTemp <= 0 {
		c.StaleTemp = time.Minute
	}
	if c.FetchMaxWait <= 0 {
		c.FetchMaxWait = 2 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Subject is the filter of the worker's consumer.
func Subject(site string) string { return manifestsPrefix + site + ".*" }

// ConsumerConfig is the durable pull consumer every worker of a site binds.
func ConsumerConfig(cfg Config) jetstream.ConsumerConfig {
	return ledger.UploadConsumerConfig(cfg.Site, cfg.Durable, cfg.AckWait)
}

// refusedLogEvery paces the log of a token refused while reconnecting.
const refusedLogEvery = time.Minute

// maxFailedShown is how many failed contact ids a log line names.
const maxFailedShown = 10

// refusedHint follows a refusal of the worker's credentials. The worker
// cannot tell recledger's embedded server from an external one when
// refused (it learns nothing more than "Authorization Violation"), so it
// names both causes: a walk against an external server with a wrong
// password was sent to a tokens file that server did not have.
const refusedHint = "the server refuses this worker's credentials: for recledger's embedded server, give a token with the upload role (--token or RECLEDGER_TOKEN); " +
	"for an external NATS server, check the user/password or token in --nats"

// Run connects to url and works until ctx is done.
func Run(ctx context.Context, url string, cfg Config) error {
	if cfg.Site == "" || cfg.Dest == "" {
		return errors.New("upload-worker: site and dest are required")
	}
	cfg.Defaults()
	// A worker may start before the server: it keeps trying to connect,
	// as it keeps trying to bind once connected.
	var refusedLogged atomic.Int64 // unix ns of the last refusal logged
	opts := []nats.Option{nats.Name("recledger-upload-worker"), nats.MaxReconnects(-1),
		// A token refused while reconnecting (the server restarted with
		// a tokens file that no longer has it) is tried again: nats.go
		// would close the connection after two refusals, and the worker
		// went on fetching on it, warning "connection closed" for good,
		// even once the token was back (a walk).
		nats.IgnoreAuthErrorAbort(),
		nats.ErrorHandler(func(nc *nats.Conn, _ *nats.Subscription, err error) {
			switch {
			case errors.Is(err, nats.ErrPermissionViolation) && !strings.Contains(err.Error(), "CREATE."):
				// A token that may not read the manifests never will:
				// stop at the first refusal rather than wait for its
				// request's timeout.
				nc.Close()
			case errors.Is(err, nats.ErrAuthorization):
				if now := time.Now().UnixNano(); now-refusedLogged.Load() >= int64(refusedLogEvery) {
					refusedLogged.Store(now)
					cfg.Logger.Error("the server refuses this worker's credentials (a tokens file changed, or an external server's user or password): NO MANIFEST IS TAKEN until it accepts them; "+
						"the worker keeps trying (repeats are logged every minute)", logKeyURL, ledger.RedactURLs(url), logKeyErr, err)
				}
			}
		})}
	if cfg.Token != "" {
		opts = append(opts, nats.Token(cfg.Token))
	}
	// The deliveries arrive under this token's own inbox prefix, where
	// no other token may listen (ledger.InboxFor).
	opts = append(opts, func(o *nats.Options) error {
		o.InboxPrefix = ledger.InboxFor(ledger.UploadInboxPrefix, ledger.OptionsToken(o, url))
		return nil
	})
	opts = append(opts, nats.ReconnectHandler(func(*nats.Conn) {
		// The last line was the fetch that failed when the server went:
		// say it is back (an operator's walk could not tell).
		cfg.Logger.Info("upload worker reconnected", logKeyURL, ledger.RedactURLs(url))
	}))
	nc, err := connect(ctx, url, opts, cfg.Logger)
	if err != nil || nc == nil {
		return err // nil when ctx ended first
	}
	cfg.Logger.Info("upload worker connected", logKeyURL, ledger.RedactURLs(url))
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("upload-worker: jetstream: %w", err)
	}
	return New(js, cfg).Run(ctx)
}

// connectRetry is how long a worker started before its server waits
// between two tries to connect.
const connectRetry = 2 * time.Second

// connect connects to url, trying again while no server answers (a
// worker may start before its server), until ctx is done. A refused
// token ends it at once: nats.go's own retry of a first connect took
// the refusal for a server away, and a worker with a mistyped token
// waited in silence (an operator's walk).
func connect(ctx context.Context, url string, opts []nats.Option, log *slog.Logger) (*nats.Conn, error) {
	waiting := false
	for {
		nc, err := nats.Connect(url, opts...)
		var bad *neturl.Error
		switch {
		case err == nil:
			return nc, nil
		case errors.Is(err, nats.ErrAuthorization):
			return nil, fmt.Errorf("upload-worker: connect: %w: %s (the embedded server also takes 64 connections per token at most)", err, refusedHint)
		case errors.As(err, &bad):
			// A URL that does not parse never will: refused at once, as
			// the other commands refuse it, and without its password
			// (a walk's worker waited for good, printing it).
			return nil, fmt.Errorf("upload-worker: --nats %s: %s", ledger.RedactURLs(url), ledger.RedactSecrets(err.Error(), url))
		}
		if !waiting {
			// Said once, so that a worker started before its server is
			// not silent until the server comes up.
			waiting = true
			log.Info("upload worker waiting for the server's NATS", logKeyURL, ledger.RedactURLs(url), logKeyErr, ledger.RedactSecrets(err.Error(), url))
		}
		select {
		case <-ctx.Done():
			return nil, nil
		case <-time.After(connectRetry):
		}
	}
}

// Worker is one upload worker bound to the site's durable consumer.
type Worker struct {
	js  jetstream.JetStream
	cfg Config
	log *slog.Logger
	// ackWait is the AckWait of the consumer bound, which JetStream
	// applies whatever cfg.AckWait says (checkConsumer); zero before bind.
	ackWait time.Duration
}

// New returns a worker; cfg gets its defaults.
func New(js jetstream.JetStream, cfg Config) *Worker {
	cfg.Defaults()
	return &Worker{js: js, cfg: cfg, log: cfg.Logger}
}

// Run binds the consumer (waiting for the stream to exist) and handles
// manifests one at a time until ctx is done. It returns nil on cancellation.
func (w *Worker) Run(ctx context.Context) error {
	cons, err := w.bind(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	for ctx.Err() == nil {
		msg, err := cons.Next(jetstream.FetchMaxWait(w.cfg.FetchMaxWait))
		if err != nil {
			if errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
				continue
			}
			if ctx.Err() != nil {
				return nil
			}
			if nc := w.js.Conn(); nc != nil && nc.IsClosed() {
				// Closed for good (a token whose role may not take
				// manifests): no fetch will ever succeed on it.
				return fmt.Errorf("upload-worker: the NATS connection is closed: %w (last error: %v)", err, nc.LastError())
			}
			w.log.Warn("fetching a manifest", logKeyErr, err)
			if !sleep(ctx, w.cfg.FetchMaxWait) {
				return nil
			}
			if gone(err) {
				// The consumer is not there any more (a JetStream store
				// lost or restored behind the same address): bind again,
				// which makes it anew and waits for the stream.
				if cons, err = w.bind(ctx); err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return err
				}
			}
			continue
		}
		if err := w.handle(ctx, msg); err != nil {
			return err
		}
	}
	return nil
}

// gone reports a fetch error that says the consumer no longer answers.
func gone(err error) bool {
	return errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrConsumerNotFound) ||
		errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrNoHeartbeat)
}

// bind binds the durable consumer, retrying until the stream exists
// (workers may start before the server). A consumer that is there is
// used as it is (the embedded server makes its site's, upload-{site},
// itself, and no client may change it), unless it filters other
// subjects than this site's manifests: that one is refused
// (checkFilter). One that is not there is created (an external NATS,
// another --durable); the embedded server refuses to create its own for
// a client, and the worker waits for the server to.
func (w *Worker) bind(ctx context.Context) (jetstream.Consumer, error) {
	delay := w.cfg.BackoffBase
	for {
		cons, err := w.js.Consumer(ctx, StreamName, w.cfg.Durable)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			cons, err = w.create(ctx)
		}
		if errors.Is(err, jetstream.ErrNotPullConsumer) {
			// A push consumer under that name never becomes a pull one:
			// refused, as any consumer the worker cannot use (a walk's
			// worker retried it for good).
			return nil, fmt.Errorf("upload-worker: %w: consumer %q of stream %s delivers to a subject (a push consumer); the workers take manifests from a pull consumer: choose another --durable, or remove that consumer",
				err, w.cfg.Durable, StreamName)
		}
		if err == nil {
			got := cons.CachedInfo().Config
			if err := checkFilter(got, w.cfg.Site); err != nil {
				return nil, err
			}
			w.checkConsumer(cons)
			w.ackWait = got.AckWait
			// The consumer's own filter, not the one this worker would
			// have made: a walk's line named this site's subject for a
			// consumer of another site's.
			w.log.Info("upload worker bound", logKeyConsumer, w.cfg.Durable, logKeySubject, describeFilters(got))
			w.checkSite(ctx)
			return cons, nil
		}
		if nc := w.js.Conn(); nc != nil && errors.Is(nc.LastError(), nats.ErrPermissionViolation) && strings.Contains(nc.LastError().Error(), "CREATE.") {
			// The server makes this consumer itself: it will be there.
			w.log.Warn("the server makes this consumer itself and has not yet; waiting for it", logKeyConsumer, w.cfg.Durable)
		} else if nc != nil && errors.Is(nc.LastError(), nats.ErrPermissionViolation) {
			// No retry gets past the token's role.
			return nil, fmt.Errorf("upload-worker: bind: %w: the token's role may not take manifests: give one with the upload role (--token or RECLEDGER_TOKEN)", nc.LastError())
		}
		if nc := w.js.Conn(); nc != nil && nc.IsClosed() {
			// Closed for good: the server refused the credentials (nats.go
			// gives up after two refusals), or the worker is stopping.
			if errors.Is(nc.LastError(), nats.ErrAuthorization) {
				return nil, fmt.Errorf("upload-worker: %w: %s", nc.LastError(), refusedHint)
			}
			return nil, fmt.Errorf("upload-worker: bind: the connection is closed: %w", err)
		}
		away := false // not connected: said once, as the wait for the server's NATS
		if nc := w.js.Conn(); nc != nil && !nc.IsConnected() {
			away = true
		}
		// ErrConsumerExists: made by another worker since this one looked;
		// the next turn binds it.
		if !away && ctx.Err() == nil && !errors.Is(err, jetstream.ErrStreamNotFound) && !errors.Is(err, nats.ErrTimeout) &&
			!errors.Is(err, jetstream.ErrConsumerExists) &&
			!errors.Is(err, jetstream.ErrNoHeartbeat) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			var url string
			if nc := w.js.Conn(); nc != nil {
				url = ledger.RedactURLs(strings.Join(nc.Servers(), ","))
			}
			w.log.Warn("binding the manifests consumer", logKeyURL, url, logKeyErr, err)
		}
		delay = min(delay*2, w.cfg.BackoffMax)
		if !sleep(ctx, delay) {
			return nil, fmt.Errorf("upload-worker: bind: %w", ctx.Err())
		}
	}
}

// checkConsumer warns when the consumer found differs from what this
// worker would have made: the server's settings (or another worker's)
// are used, not its flags. Its filter is not among them: checkFilter
// has refused one that is not this site's.
func (w *Worker) checkConsumer(cons jetstream.Consumer) {
	got, want := cons.CachedInfo().Config, ConsumerConfig(w.cfg)
	if got.AckWait != want.AckWait || got.AckPolicy != want.AckPolicy || got.MaxDeliver != want.MaxDeliver {
		w.log.Warn("the consumer was made with other settings than this worker's; working with its own",
			logKeyConsumer, w.cfg.Durable, logKeyAckWait, got.AckWait, logKeySubject, describeFilters(got), logKeyMaxDeliver, got.MaxDeliver)
	}
}

// checkSite warns when the stream holds manifests of another site but none
// of this one: a --site spelt otherwise than the server's waits forever.
// It reads with direct gets: a reader of the embedded server may not read
// the stream's configuration.
func (w *Worker) checkSite(ctx context.Context) {
	last := func(filter string) (subject string, ok bool) {
		req, _ := json.Marshal(map[string]string{"last_by_subj": filter})
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		m, err := w.js.Conn().RequestWithContext(ctx, "$JS.API.DIRECT.GET."+StreamName, req)
		if err != nil || m.Header.Get("Status") != "" {
			return "", false
		}
		return m.Header.Get(jetstream.SubjectHeader), true
	}
	if _, ok := last(Subject(w.cfg.Site)); ok {
		return
	}
	subj, ok := last(manifestsPrefix + "*.*")
	if !ok {
		return
	}
	// The direct get names the last manifest's site only: list them all
	// (a walk's named one of three), or say the list is an example.
	others, all := w.otherSites(ctx)
	switch {
	case all && len(others) > 0:
		w.log.Warn("the stream holds manifests of other sites and none of this one yet: is --site the server's?",
			logKeySite, w.cfg.Site, logKeyOtherSites, others)
	case len(others) > 0:
		w.log.Warn("the stream holds manifests of other sites (e.g. these; the list may miss some) and none of this one yet: is --site the server's?",
			logKeySite, w.cfg.Site, logKeyOtherSites, others)
	default:
		other, _ := siteDay(subj)
		w.log.Warn("the stream holds manifests of other sites (e.g. this one; the others could not be listed) and none of this one yet: is --site the server's?",
			logKeySite, w.cfg.Site, logKeyOtherSites, []string{other})
	}
}

// handle processes one message. It returns an error only when the
// worker must stop: the message was another site's manifest, which is
// not this worker's to take nor to terminate (anotherSitesManifest).
func (w *Worker) handle(ctx context.Context, msg jetstream.Msg) error {
	if site, _ := siteDay(msg.Subject()); site != w.cfg.Site {
		return w.anotherSitesManifest(msg, site)
	}
	w.upload(ctx, msg)
	return nil
}

// upload processes one message of this site's subjects and acks, naks
// or terms it.
func (w *Worker) upload(ctx context.Context, msg jetstream.Msg) {
	start := time.Now()
	delivery := uint64(1)
	if md, err := msg.Metadata(); err == nil {
		delivery = md.NumDelivered
	}
	// The id is checked against the message's own subject's site and
	// day (a walk's was checked against the worker's site alone).
	site, day := siteDay(msg.Subject())
	if id, want := msg.Headers().Get(jetstream.MsgIDHeader), site+"."+day; id != want {
		// Not published as a manifest: JetStream stored it for a client
		// (docs/clients.md). The server puts the day's manifest in its place.
		w.log.Warn("not a manifest: the message lacks the day's message id; terminated",
			logKeySubject, msg.Subject(), logKeyMsgID, id)
		if err := msg.TermWithReason("not a manifest"); err != nil {
			w.log.Error("term", logKeyErr, err)
		}
		return
	}
	body, err := ledger.ManifestBody(msg.Headers(), msg.Data(), ledger.MaxManifestBytes)
	if errors.Is(err, ledger.ErrUnknownVersion) {
		err = fmt.Errorf("%w: %v", ErrFormat, err)
	}
	var m Manifest
	if err == nil {
		m, err = ParseManifest(body)
	}
	if errors.Is(err, ErrFormat) {
		// Written by a newer server: stop rather than guess, keep it for a newer worker.
		w.log.Error("MANIFEST NOT UPLOADED: unknown format; upgrade the upload worker",
			logKeySubject, msg.Subject(), logKeyDelivered, delivery, logKeyRetryIn, w.cfg.NakDelay, logKeyErr, err)
		if err := msg.NakWithDelay(w.cfg.NakDelay); err != nil {
			w.log.Error("nak", logKeyErr, err)
		}
		return
	}
	if err != nil {
		// No retry can fix a malformed manifest: term it, loudly.
		w.log.Error("MANIFEST REJECTED: cannot be parsed; terminated, fix and republish it",
			logKeySubject, msg.Subject(), logKeyDelivered, delivery, logKeyErr, err)
		if err := msg.TermWithReason("unparseable manifest"); err != nil {
			w.log.Error("term", logKeyErr, err)
		}
		return
	}
	stats, failed := w.writeManifest(ctx, m, func() { _ = msg.InProgress() })
	if ctx.Err() != nil {
		// Stopping: neither ack nor nak; AckWait redelivers it.
		w.log.Info("stopping in the middle of a manifest: left unacknowledged, it is delivered again after the consumer's ack wait; the files written are skipped then",
			logKeyDay, m.Day, logKeyWritten, stats.written+stats.replaced, logKeyFiles, len(m.Files))
		return
	}
	if len(failed) > 0 {
		// The first few ids name the problem; a whole day's would make a
		// line of tens of kilobytes, at every redelivery.
		shown := failed
		if len(shown) > maxFailedShown {
			shown = shown[:maxFailedShown]
		}
		w.log.Error("MANIFEST NOT UPLOADED: contacts could not be written; redelivery scheduled",
			logKeyDay, m.Day, logKeyFailedCount, len(failed), logKeyFailed, shown, logKeyDelivered, delivery,
			logKeyRetryIn, w.cfg.NakDelay, logKeyWritten, stats.written, logKeyFiles, len(m.Files), logKeyErr, stats.err)
		if err := msg.NakWithDelay(w.cfg.NakDelay); err != nil {
			w.log.Error("nak", logKeyDay, m.Day, logKeyErr, err)
		}
		return
	}
	if err := msg.DoubleAck(ctx); err != nil {
		// Not acked: it comes back and every file is skipped as identical.
		w.log.Warn("ack failed; the manifest will be redelivered", logKeyDay, m.Day, logKeyErr, err)
		return
	}
	w.log.Info("manifest uploaded", logKeyDay, m.Day, logKeyFiles, len(m.Files),
		logKeyWritten, stats.written, logKeySkipped, stats.skipped, logKeyReplaced, stats.replaced,
		logKeyDelivered, delivery, logKeyTook, time.Since(start).Round(time.Millisecond))
}

type writeStats struct {
	written, skipped, replaced int
	err                        error // the first write that failed, for the log
}

// writeManifest writes every file of m, retrying each with capped
// exponential backoff. It returns the contact ids that could not be written.
// progress is called while working so the message's AckWait does not expire.
func (w *Worker) writeManifest(ctx context.Context, m Manifest, progress func()) (writeStats, []string) {
	var st writeStats
	began := time.Now()
	dir := filepath.Join(w.cfg.Dest, m.Day)
	lastProgress := time.Now()
	// The consumer's AckWait, not this worker's: a consumer made with a
	// shorter one than --ack-wait redelivered a slow manifest to another
	// worker while this one was still writing it.
	ackWait := w.cfg.AckWait
	if w.ackWait > 0 {
		ackWait = w.ackWait
	}
	tick := func() {
		if time.Since(lastProgress) >= ackWait/4 {
			progress()
			lastProgress = time.Now()
		}
	}
	var failed []string
	if err := w.retry(ctx, tick, func() error { return ensureDir(dir, w.syncDir) }); err != nil {
		st.err = err
		return st, ContactIDs(m.Files)
	}
	w.sweep(dir, m.Day, began.Add(-w.cfg.StaleTemp))
	for _, f := range m.Files {
		if ctx.Err() != nil {
			return st, nil
		}
		var res writeResult
		err := w.retry(ctx, tick, func() error {
			var err error
			res, err = writeAtomic(dir, f.Name, f.Body)
			return err
		})
		if err != nil {
			if ctx.Err() == nil {
				w.log.Error("contact not written", logKeyDay, m.Day, logKeyContact, f.ContactID, logKeyErr, err)
				failed = append(failed, f.ContactID)
				if st.err == nil {
					st.err = err
				}
			}
			continue
		}
		switch res {
		case written:
			st.written++
		case skipped:
			st.skipped++
		case replaced:
			st.replaced++
			w.log.Warn("contact file replaced with different bytes", logKeyDay, m.Day, logKeyFile, f.Name)
		}
		if w.cfg.OnFile != nil {
			w.cfg.OnFile(filepath.Join(dir, f.Name))
		}
		tick()
	}
	// One directory fsync makes every rename above durable; until it
	// succeeds the manifest is not acked (a crash before it redelivers).
	// Also when every file was in place already: a worker killed after
	// its renames and before this fsync left them so, and they are not
	// durable until a sync of the directory.
	if st.written+st.replaced+st.skipped > 0 && ctx.Err() == nil {
		if err := w.retry(ctx, tick, func() error { return w.syncDir(dir) }); err != nil {
			w.log.Error("day directory not synced", logKeyDay, m.Day, logKeyErr, err)
			st.err = err
			return st, ContactIDs(m.Files)
		}
	}
	if len(failed) == 0 && ctx.Err() == nil {
		// Every file is in place: a temp file written before this
		// delivery began is an earlier one's, killed mid-write. The sweep
		// above spares those under StaleTemp old, and a redelivery after
		// a kill can come sooner (a short AckWait): without this, such a
		// file, a contact's data, stayed once the manifest was acked (a
		// walk).
		w.sweep(dir, m.Day, began)
	}
	return st, failed
}

// syncDir fsyncs dir and tells OnSync.
func (w *Worker) syncDir(dir string) error {
	if err := syncDir(dir); err != nil {
		return err
	}
	if w.cfg.OnSync != nil {
		w.cfg.OnSync(dir)
	}
	return nil
}

// sweep removes the temp files of dir last written before cutoff, and
// says so.
func (w *Worker) sweep(dir, day string, cutoff time.Time) {
	if n, err := sweepTemps(dir, cutoff); err != nil {
		w.log.Warn("sweeping temp files", logKeyDay, day, logKeyErr, err)
	} else if n > 0 {
		w.log.Info("removed temp files left by an interrupted worker", logKeyDay, day, logKeySwept, n)
	}
}

// retry runs fn up to MaxTries times with capped exponential backoff.
func (w *Worker) retry(ctx context.Context, tick func(), fn func() error) error {
	delay := w.cfg.BackoffBase
	var err error
	for try := 1; try <= w.cfg.MaxTries; try++ {
		if err = fn(); err == nil {
			return nil
		}
		if try == w.cfg.MaxTries {
			break
		}
		w.log.Warn("write failed; retrying", logKeyErr, err, logKeyRetryIn, delay)
		if !sleep(ctx, delay) {
			return ctx.Err()
		}
		tick()
		delay = min(delay*2, w.cfg.BackoffMax)
	}
	return err
}

// sleep waits d or until ctx is done; it reports whether d elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
