package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"
	"golang.org/x/time/rate"

	"github.com/recledger/recledger/ledger"
)

// Appender appends events durably and in order (ledger.Store). It returns
// after fsync, once the live projections have applied the events.
type Appender interface {
	Append(ctx context.Context, events ...ledger.Event) ([]ledger.Envelope, error)
}

// Views is what the API reads from the live projections (projections.Live),
// in three parts: what the write path answers from, the present state, and
// the history.
type Views interface {
	Answers
	State
	History
}

// Answers is what a write is answered from, once the projections have
// applied it.
type Answers interface {
	// Result is the answer to the command event at seq.
	Result(seq uint64) (ledger.CommandResult, bool)
	// Ignored is why the call signal at seq changed nothing, "" when it
	// did (or is too old to tell).
	Ignored(seq uint64) string
	// Seq is the seq of the last event the projections applied.
	Seq() uint64
}

// State is the present: agents, configuration, the digest.
type State interface {
	Agent(userID string) (ledger.AgentState, error)
	// Agents is every agent's state, ordered by user id.
	Agents() []ledger.AgentState
	Config() ledger.Config
	// Location is the site's time zone, the one the projections date
	// contacts and days with.
	Location() *time.Location
	// OpenContactsOfTeam lists the open contacts that opened in team.
	OpenContactsOfTeam(team string) []string
	// Digest is the hash of all projection state and the seq it covers, read together.
	Digest() (seq uint64, digest string)
}

// History is the contacts, pauses and manifests, which may be read from
// sealed history in the store.
type History interface {
	Contacts(ctx context.Context, q ledger.ContactQuery) ([]ledger.Contact, error)
	// EachContact calls fn with Contacts' contacts, in order, one at a
	// time, and stops at fn's first error.
	EachContact(ctx context.Context, q ledger.ContactQuery, fn func(*ledger.Contact) error) error
	Contact(ctx context.Context, contactID string) (ledger.Contact, error)
	Pauses(ctx context.Context, q ledger.PauseQuery) ([]ledger.PauseRow, error)
	// EachPause calls fn with Pauses' rows, in order, one at a time, and
	// stops at fn's first error; it may also fail where Pauses answers
	// (a log out of start order).
	EachPause(ctx context.Context, q ledger.PauseQuery, fn func(*ledger.PauseRow) error) error
	// Manifest is the canonical manifest of a sealed day (ledger.ErrNotFound until sealed).
	Manifest(ctx context.Context, day string) ([]byte, error)
	SealedDays() []string
	// EarliestPending is the earliest time a contact closed since the
	// last seal happened at (ok false: none): a seal files them all
	// under the day it seals.
	EarliestPending() (at ledger.Time, ok bool)
}

// Events is the ledger's read side (ledger.Store).
type Events interface {
	Scan(ctx context.Context, after uint64, fn func(ledger.Envelope) error) error
	Head() (seq uint64, hash string)
	Verify(ctx context.Context) (ledger.VerifyReport, error)
	// Backup writes a consistent copy of the ledger file to w (GET
	// /v1/backup), calling begin with what it holds before the first byte.
	Backup(ctx context.Context, w io.Writer, begin func(ledger.BackupInfo) error) (int64, error)
}

// Health reports the JetStream outbox (ledger.Outbox): how far the mirror
// is behind, and whether the stream has stopped continuing this ledger.
type Health interface {
	Lag() uint64
	Mismatch() error
}

// ManifestHealth reports the manifest outbox (ledger.ManifestOutbox): the
// sealed days not yet in the manifests stream, and why, when they have
// waited on failing publishes for a while.
type ManifestHealth interface {
	Lag() uint64
	Problem() error
}

// CheckpointHealth says why the projections' checkpoints are not being
// saved (nil while they are): replay.Checkpointer.
type CheckpointHealth interface {
	Problem() error
}

// Default limits.
const (
	// DefaultMaxBody is the vendor's limit on a Recording Controls body.
	DefaultMaxBody = 16 << 10
	// maxFeedBody bounds call-signal batches and configuration documents.
	maxFeedBody = 1 << 20
	// feedBodyBudget bounds the bytes of such bodies held at once, by
	// every request together (holdFeedBody).
	feedBodyBudget = 64 << 20
)

// Log attribute keys.
const (
	logKeyErr       = "err"
	logKeyCommand   = "command"
	logKeyOutcome   = "outcome"
	logKeySeq       = "seq"
	logKeyPrincipal = "principal"
	logKeyRoute     = "route"
	logKeySubject   = "subject"
	logKeyFile      = "file"
	logKeyEvents    = "events"
	logKeyReply     = "reply"
	logKeyTook      = "took"
	logKeyClient    = "client"
	logKeyUndone    = "undone"
	logKeyTokens    = "tokens"
	logKeyAdded     = "added"
	logKeyKept      = "kept"
	logKeyAhead     = "ahead"
	logKeySource    = "source"
	logKeyDropped   = "dropped"
	logKeyRefused   = "refused"
	logKeyHead      = "head_seq"
	logKeyBytes     = "bytes"
)

// Options configures a Server. Appender, Views and Events are required.
type Options struct {
	Appender Appender
	Views    Views
	Events   Events
	Health   Health // nil: no outbox (lag 0)
	// Manifests is the manifest outbox; nil: none (lag 0).
	Manifests ManifestHealth
	// Checkpoints is what saves the projections' checkpoints; nil: none.
	Checkpoints CheckpointHealth
	Site        string
	Tokens      *Tokens // nil: the API is open (a warning is logged once)
	Logger      *slog.Logger
	Registry    prometheus.Registerer // nil: a private registry; served on /metrics, so it must also be a Gatherer (a *prometheus.Registry)
	MaxBody     int64                 // Recording Controls body limit; 0 = DefaultMaxBody
	// Now gives the time a call signal without `at` is stamped with; nil = time.Now.
	Now func() time.Time
}

// Server is the HTTP API and the NATS call-signal subscriber.
type Server struct {
	app         Appender
	views       Views
	events      Events
	health      Health
	manifests   ManifestHealth
	checkpoints CheckpointHealth
	site        string
	tokens      *Tokens
	log         *slog.Logger
	maxBody     int64
	now         func() time.Time
	met         *metrics
	handler     http.Handler

	writeMu sync.Mutex // serialises the check-then-append of config changes and seals

	answers sync.Pool // *bytes.Buffer, see writeJSON
	bodies  sync.Pool // *bytes.Buffer, see readBodyPooled
	// feedBytes is the budget of the large bodies (signal batches,
	// configuration) being read or held at once: see holdFeedBody.
	feedBytes *semaphore.Weighted

	// writeErr is the error of the last Append when the ledger refused
	// writes (closed, unavailable); cleared by the next successful Append.
	writeErr atomic.Pointer[error]
	// chainProblem is a broken hash chain found by CheckChain or GET
	// /v1/verify, for /readyz.
	chainProblem atomic.Pointer[string]
	// damageProblem is the first damaged part of the file a request met
	// (an answer of 500 ledger_corrupt), for /readyz.
	damageProblem atomic.Pointer[string]
	// stopping is set by Stopping: /readyz answers 503 from then on.
	stopping atomic.Bool
	// backupWriteWait bounds each write of GET /v1/backup
	// (defaultBackupWriteWait; tests make it shorter).
	backupWriteWait time.Duration
	// unavailableLog paces the log of requests refused while the ledger
	// takes no writes.
	unavailableLog rate.Sometimes
	// refusedReplyLog paces the log of NATS call signals refused for their
	// reply subject (a client may send any number).
	refusedReplyLog rate.Sometimes
	// authRefusedLog paces the log of requests refused for their token or
	// network (a client may send any number).
	authRefusedLog rate.Sometimes
	authRefused    atomic.Int64 // refusals since the last logged
	// unansweredLog paces the log of NATS call signals refused when their
	// sender asked for no answer (published, not requested).
	unansweredLog rate.Sometimes
	// ctiDroppedLog paces the log of NATS call signals dropped unanswered
	// (RunCTI).
	ctiDroppedLog rate.Sometimes
	// ctiBufferBytes bounds the NATS call signals waiting for a worker
	// (ctiBufferBytes; tests make it smaller).
	ctiBufferBytes int
	// aheadLog paces the log of call signals dated ahead of the server's
	// clock (noteAhead).
	aheadLog rate.Sometimes
	// tokenWarned paces, per token name, the log of commands that carried
	// a bearer token as a parameter (warnTokenParam).
	tokenWarnMu sync.Mutex
	tokenWarned map[string]time.Time
	// probeMu guards lastProbe, the time of /readyz's last write probe.
	probeMu   sync.Mutex
	lastProbe time.Time
}

// New checks opts, registers the metrics and builds the routes.
func New(opts Options) (*Server, error) {
	if opts.Appender == nil || opts.Views == nil || opts.Events == nil {
		return nil, errors.New("ingest: Appender, Views and Events are required")
	}
	s := &Server{
		app: opts.Appender, views: opts.Views, events: opts.Events, health: opts.Health, manifests: opts.Manifests, checkpoints: opts.Checkpoints,
		site: opts.Site, tokens: opts.Tokens, log: opts.Logger, maxBody: opts.MaxBody, now: opts.Now,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.backupWriteWait = defaultBackupWriteWait
	s.unavailableLog.Interval = 10 * time.Second
	s.refusedReplyLog.Interval = 10 * time.Second
	s.unansweredLog.Interval = 10 * time.Second
	s.authRefusedLog.Interval = 10 * time.Second
	s.ctiDroppedLog.Interval = 10 * time.Second
	s.ctiBufferBytes = ctiBufferBytes
	s.aheadLog.Interval = time.Minute
	s.feedBytes = semaphore.NewWeighted(feedBodyBudget)
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBody
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.site == "" {
		s.site = "default"
	}
	var lag func() uint64
	if s.health != nil {
		lag = s.health.Lag
	}
	var manifestLag func() uint64
	if s.manifests != nil {
		manifestLag = s.manifests.Lag
	}
	head := func() uint64 { seq, _ := s.events.Head(); return seq }
	met, err := newMetrics(opts.Registry, lag, manifestLag, head)
	if err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	s.met = met
	if s.tokens == nil {
		s.log.Warn("no tokens file: the API is open to every client, as the vendor's is")
	}
	s.handler = cleanPaths(met.instrument(s.routes()))
	return s, nil
}

// Handler is the whole HTTP API.
func (s *Server) Handler() http.Handler { return s.handler }

func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc(commandPathPrefix+"{command}", s.handleCommand)
	mux.HandleFunc(commandPathPrefix, s.handleCommand) // no command, or a path below one: 404 with the list
	// Without the slash too: ServeMux would redirect it there, with an
	// HTML body a desktop's HTTP action neither follows nor reads.
	mux.HandleFunc(strings.TrimSuffix(commandPathPrefix, "/"), s.handleCommand)
	mux.HandleFunc("POST /v1/calls/events", s.handleCalls)

	mux.HandleFunc("GET /v1/config", s.admin(s.takes(s.handleGetConfig)))
	mux.HandleFunc("PUT /v1/config/site", s.admin(s.handlePutSite))
	mux.HandleFunc("PUT /v1/config/metadata/{key}", s.admin(s.handlePutMetadata))
	mux.HandleFunc("DELETE /v1/config/metadata/{key}", s.admin(s.handleDelete(ledger.PartMetadata, "key")))
	mux.HandleFunc("PUT /v1/config/teams/{team}", s.admin(s.handlePutTeam))
	mux.HandleFunc("DELETE /v1/config/teams/{team}", s.admin(s.handleDelete(ledger.PartTeam, "team")))
	mux.HandleFunc("PUT /v1/config/users/{user_id}", s.admin(s.handlePutUser))
	mux.HandleFunc("DELETE /v1/config/users/{user_id}", s.admin(s.handleDelete(ledger.PartUser, "user_id")))
	mux.HandleFunc("POST /v1/manifests/{day}/close", s.admin(s.handleCloseDay))

	mux.HandleFunc("GET /v1/agents", s.auditor(s.takes(s.handleAgents, "logged_in")))
	mux.HandleFunc("GET /v1/agents/{user_id}", s.auditor(s.takes(s.handleAgent)))
	mux.HandleFunc("GET /v1/contacts", s.auditor(s.takes(s.handleContacts, "user_id", "day", "disposition")))
	mux.HandleFunc("GET /v1/contacts/{contact_id}", s.auditor(s.takes(s.handleContact)))
	mux.HandleFunc("GET /v1/pauses", s.auditor(s.takes(s.handlePauses, "user_id", "contact_id", "call_id", "from", "to", "format")))
	mux.HandleFunc("GET /v1/manifests/{day}", s.auditor(s.takes(s.handleManifest)))
	mux.HandleFunc("GET /v1/events", s.auditor(s.takes(s.handleEvents, "after_seq", "limit")))
	mux.HandleFunc("GET /v1/verify", s.auditor(s.takes(s.handleVerify)))
	mux.HandleFunc("GET /v1/digest", s.auditor(s.takes(s.handleDigest)))
	mux.HandleFunc("GET /v1/backup", s.admin(s.takes(s.handleBackup)))

	mux.HandleFunc("GET /healthz", s.handleHealthz)
	mux.HandleFunc("GET /readyz", s.handleReadyz)
	mux.Handle("GET /metrics", s.met.handler())
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if allow := allowedMethods(mux, r); len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			s.writeError(w, r, newError(reasonMethod,
				fmt.Sprintf("%s %s: use %s", r.Method, r.URL.Path, strings.Join(allow, " or "))))
			return
		}
		s.writeError(w, r, newError(reasonNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path))
	})
	return mux
}

// allowedMethods lists the methods some route other than the catch-all
// serves r's path with, so that a wrong method is a JSON 405, not a 404.
func allowedMethods(mux *http.ServeMux, r *http.Request) []string {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
		probe := &http.Request{Method: m, URL: r.URL, Host: r.Host}
		if _, pattern := mux.Handler(probe); pattern != "/" && pattern != "" {
			allow = append(allow, m)
			if m == http.MethodGet {
				allow = append(allow, http.MethodHead) // a GET pattern serves HEAD too
			}
		}
	}
	return allow
}

// principalKey carries the authorised principal to a handler.
type principalKey struct{}

func principalOf(r *http.Request) string {
	p, _ := r.Context().Value(principalKey{}).(string)
	return p
}

// require wraps h with the role check.
func (s *Server) require(role Role, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := s.authorize(r, role)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	}
}

// authorize is Tokens.authorize, with refusals logged (at most every
// 10 s, with how many since): a security walk sent 300 wrong tokens and
// only a counter on /metrics saw them. The token itself is not logged.
func (s *Server) authorize(r *http.Request, role Role) (string, error) {
	p, err := s.tokens.authorize(r, role)
	if err != nil {
		n := s.authRefused.Add(1)
		s.authRefusedLog.Do(func() {
			s.log.Warn("requests refused for their token or network (repeats are logged every 10 s)",
				logKeyClient, r.RemoteAddr, logKeyRoute, s.tokens.RedactText(r.URL.Path), logKeyErr, err, logKeyRefused, n)
			s.authRefused.Store(0)
		})
	}
	return p, err
}

func (s *Server) admin(h http.HandlerFunc) http.HandlerFunc   { return s.require(RoleAdmin, h) }
func (s *Server) auditor(h http.HandlerFunc) http.HandlerFunc { return s.require(RoleAuditor, h) }

// appendEvents appends and records the metrics of the call.
func (s *Server) appendEvents(ctx context.Context, source string, events ...ledger.Event) ([]ledger.Envelope, error) {
	start := time.Now()
	envs, err := s.app.Append(ctx, events...)
	s.met.observeAppend(source, len(events), time.Since(start), err)
	if err != nil {
		if errors.Is(err, ledger.ErrClosed) || errors.Is(err, ledger.ErrUnavailable) {
			s.writeErr.Store(&err)
		}
		return nil, err // the store's error says "append: …"
	}
	s.writeErr.Store(nil)
	if len(envs) != len(events) {
		return nil, fmt.Errorf("append: %d envelopes for %d events", len(envs), len(events))
	}
	return envs, nil
}

// maxPooledAnswer is the largest answer buffer put back for reuse; one
// grown by a large read is let go.
const maxPooledAnswer = 64 << 10

// writeJSON answers v as JSON with status (as json.Marshal writes it, and
// a newline), encoded into a reused buffer.
func (s *Server) writeJSON(w http.ResponseWriter, status int, v any) {
	buf, _ := s.answers.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	buf.Reset()
	defer func() {
		if buf.Cap() <= maxPooledAnswer {
			s.answers.Put(buf)
		}
	}()
	if err := json.NewEncoder(buf).Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"reason":"internal","message":"cannot encode the answer"}` + "\n")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// writeError answers err with statusOf(err) and the error body.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status := statusOf(err)
	switch {
	case r.Context().Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)):
		// The client went away (or the server is stopping): its request
		// was withdrawn, not refused by the ledger. Not worth a line.
	case status == http.StatusServiceUnavailable:
		// The ledger refusing writes refuses every request alike: logged
		// once every few seconds, not once a request (the store logs the
		// cause; /readyz says it).
		s.unavailableLog.Do(func() {
			s.log.Error("requests refused: the ledger takes no writes (repeats are logged every 10 s)", logKeyRoute, r.Pattern, logKeyErr, err)
		})
	case status >= 500:
		s.log.Error("request failed", logKeyRoute, r.Pattern, logKeyErr, err)
		if errors.Is(err, ledger.ErrCorrupt) {
			p := err.Error() + corruptAdvice
			s.damageProblem.CompareAndSwap(nil, &p)
		}
	}
	// What the client sent and was not read is read and dropped first
	// (up to maxDrain): a 405 or 404 of a large body was lost as a reset
	// as the 413 was (a walk).
	drainRefusedBody(r)
	switch status {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="recledger"`)
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "1")
	}
	s.writeJSON(w, status, s.errorBody(err))
}
