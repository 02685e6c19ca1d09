package ledger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/time/rate"
)

// DefaultNATSListen is the client address of the embedded server when none is given.
const DefaultNATSListen = "127.0.0.1:4222"

// EmbeddedMaxPayload is the embedded server's largest message. A sealed
// day's manifest is one message (API.md §6), about 500 bytes a contact:
// NATS's default of 1 MiB would hold about 2,000 contacts, an ordinary
// day of a contact center; 32 MiB holds some 60,000. (nats-server warns
// at start that more than 8 MiB is not its recommendation.)
const EmbeddedMaxPayload = 32 << 20

// embeddedReadyTimeout bounds how long StartEmbedded waits for the server.
const embeddedReadyTimeout = 5 * time.Second

// Log attribute keys used by the JetStream half of the ledger.
const (
	jsLogKeyComponent  = "component"
	jsLogKeyRepeats    = "held_back"
	jsLogKeyStalled    = "stalled"
	jsLogKeyLag        = "outbox_lag" // as /readyz and the stop record name it
	jsLogKeyErr        = "err"
	jsLogKeyURL        = "url"
	jsLogKeyName       = "name"
	jsLogKeySeq        = "seq"
	jsLogKeySite       = "site"
	jsLogKeyBackoff    = "backoff"
	jsLogKeyCount      = "count"
	jsLogKeyStreamSeqs = "stream_seqs"
	jsLogKeyFound      = "found"
	jsLogKeyRemoved    = "removed"
	jsLogKeyDropped    = "dropped"
	jsLogKeyNotWritten = "lines_not_written"
)

// EmbeddedOptions configures the in-process nats-server.
type EmbeddedOptions struct {
	// StoreDir is where JetStream keeps its files.
	StoreDir string
	// Listen is the client address, host:port; DefaultNATSListen when empty.
	// Port -1 picks a free port (tests).
	Listen string
	// Logger receives the server's log lines; nil keeps the server quiet.
	Logger *slog.Logger
	// Site names the call-signal subject the access rules allow.
	Site string
	// Authorize decides each client (API.md §7, by the tokens file). nil
	// lets every client send call signals and read the streams, as the
	// open HTTP API lets everyone in. Either way only this process's own
	// connections (Embedded.Own) write the streams.
	Authorize NATSAuthorizer
	// Redact, when set, rewrites each line the server logs before it is
	// written: the server quotes what clients sent (a refused subject, a
	// user name), and serve has it mask card numbers and redact tokens
	// there as its answers do (a security walk found both in clear).
	Redact func(string) string
	// Unguarded lets every client do anything, as a bare nats-server does
	// (tests that write the streams themselves).
	Unguarded bool

	// own is the token of the process's own connections; empty makes a
	// fresh one. A test that restarts a server under a live connection
	// gives the first server's.
	own string
	// maxPayload replaces EmbeddedMaxPayload when set (tests).
	maxPayload int32
}

// StartEmbedded starts nats-server in this process with JetStream storing
// under opts.StoreDir, and waits until it accepts connections. The caller
// owns the server: srv.Shutdown(); srv.WaitForShutdown(), which also waits
// for the in-process connections started on it.
func StartEmbedded(opts EmbeddedOptions) (*Embedded, error) {
	listen := opts.Listen
	if listen == "" {
		listen = DefaultNATSListen
	}
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("start nats: listen %q: %w: %v", listen, ErrInvalid, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < -1 || port > 65535 {
		return nil, fmt.Errorf("start nats: listen %q: %w: bad port", listen, ErrInvalid)
	}
	if opts.StoreDir == "" {
		return nil, fmt.Errorf("start nats: %w: empty store dir", ErrInvalid)
	}
	if err := checkStoreDir(opts.StoreDir); err != nil {
		return nil, fmt.Errorf("start nats: %w", err)
	}
	if port != -1 {
		// nats-server only logs a failed bind, and is then "not ready"
		// after a while: try the address first, to say why at once.
		ln, err := net.Listen("tcp", listen)
		if err != nil {
			return nil, fmt.Errorf("start nats: %w: %v", ErrUnavailable, err)
		}
		ln.Close()
	}
	guard, err := newStreamGuard(opts.Site, opts.Authorize, opts.own)
	if err != nil {
		return nil, fmt.Errorf("start nats: %w", err)
	}
	sopts := &server.Options{
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   opts.StoreDir,
		NoSigs:     true,
		NoLog:      opts.Logger == nil,
		MaxPayload: EmbeddedMaxPayload,
		// recledger's clients hold a few subscriptions each; a walk held
		// 300,000 on one connection (240 MB of the server's memory).
		MaxSubs: embeddedMaxSubs,
		// A subscription costs the server its subject a few times over
		// (the clients' account imports the inboxes): a walk's 1,000
		// connections of 256 subscriptions with 3.9 KB subjects held
		// 4 GB. recledger's protocol lines are a few hundred bytes.
		MaxControlLine: embeddedMaxControlLine,
		// The server keeps a closed connection's record, its
		// subscriptions listed, for monitoring (which recledger does not
		// serve): 10,000 of them by default, and a walk's thousands of
		// short connections of 1,000 subscriptions each kept 1 GB after
		// they had all gone.
		MaxClosedClients: embeddedClosedClients,
		// Left unset, JetStream may store three quarters of what the disk
		// had free at start, plus what it held: a server restarted on a
		// disk nearly full found its mirror refused ("insufficient
		// resources") for good, though the disk had room again later.
		// The disk itself is the limit of the embedded server: what fills
		// it is mended by the Mender (nats_mend.go).
		JetStreamMaxStore: embeddedMaxStore,
	}
	if opts.maxPayload > 0 {
		sopts.MaxPayload = opts.maxPayload
	}
	if !opts.Unguarded {
		sopts.CustomClientAuthentication = guard
	}
	srv, err := server.NewServer(sopts)
	if err != nil {
		return nil, fmt.Errorf("start nats: %w", err)
	}
	if opts.Logger != nil {
		srv.SetLoggerV2(newNATSLogger(opts.Logger.With(jsLogKeyComponent, "nats-server"), opts.Redact), false, false, false)
	}
	srv.Start()
	if !srv.ReadyForConnections(embeddedReadyTimeout) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("start nats: %w: not ready after %s", ErrUnavailable, embeddedReadyTimeout)
	}
	capture := captureOf(guard.own)
	restart := new(sync.RWMutex)
	workers := new(sync.WaitGroup)
	if !opts.Unguarded {
		clients, err := shareWithClients(srv, capture)
		if err == nil {
			err = startDirectRelay(srv, workers, string(guard.own), capture, guard.knownInbox, restart, opts.Logger)
		}
		if err == nil {
			err = startConsumerGate(srv, workers, string(guard.own), capture, opts.Logger)
		}
		if err != nil {
			srv.Shutdown()
			srv.WaitForShutdown()
			workers.Wait()
			return nil, fmt.Errorf("start nats: %w", err)
		}
		guard.ready(srv, clients)
	}
	return &Embedded{Server: srv, own: string(guard.own), capture: capture, restart: restart, js: srv.JetStreamConfig(), workers: workers}, nil
}

// Bounds of the embedded server: the subscriptions one client may hold,
// the length of a protocol line (a subject, a CONNECT with its token),
// and the closed connections it keeps a record of. With the connections
// per token (embeddedConnsPerHolder) they bound what one token's
// subscriptions can cost it: 64 × 256 subjects of at most 1 KiB.
// The connections in all are nats-server's default (65,536): a walk held
// a lower bound (1,024) with connections that never authenticate, each
// for the 2 s the server waits, and kept every client out.
const (
	embeddedMaxSubs        = 256
	embeddedMaxControlLine = 1024
	embeddedClosedClients  = 64
)

// embeddedMaxStore is the embedded JetStream's store limit: 1 EiB, that
// is none but the disk's.
const embeddedMaxStore = 1 << 60

// natsLogger adapts slog to nats-server's Logger interface. The server's
// notices (its start-up banner among them) are debug lines here: the
// program logs its own one-line summary.
//
// nats-server logs a line for each publish a client's permissions refuse
// and each refused connection: a client sending 100,000 refused
// publishes wrote 18 MB of log in under two seconds. Lines beyond
// natsLogRate a second (natsLogBurst at once) are counted, not written,
// and the count is written on the next line that is
// (lines_not_written=N: that many before it were not).
type natsLogger struct {
	log        *slog.Logger
	limit      *rate.Limiter
	suppressed atomic.Int64
	redact     func(string) string // nil: lines as the server wrote them
}

const (
	natsLogRate  = 20
	natsLogBurst = 100
)

func newNATSLogger(log *slog.Logger, redact func(string) string) *natsLogger {
	return &natsLogger{log: log, limit: rate.NewLimiter(natsLogRate, natsLogBurst), redact: redact}
}

var _ server.Logger = (*natsLogger)(nil)

func (l *natsLogger) emit(level slog.Level, format string, v ...any) {
	ctx := context.Background()
	if !l.log.Enabled(ctx, level) {
		return
	}
	if !l.limit.Allow() {
		l.suppressed.Add(1)
		return
	}
	msg := fmt.Sprintf(format, v...)
	if l.redact != nil {
		msg = l.redact(msg)
	}
	if n := l.suppressed.Swap(0); n > 0 {
		// on the line itself: a line of its own would double the rate
		l.log.Log(ctx, level, msg, jsLogKeyNotWritten, n)
		return
	}
	l.log.Log(ctx, level, msg)
}

// Noticef logs at debug level, except what a client did wrong: the
// server tells a slow consumer (and a write deadline exceeded) as a
// notice, and a walk found them never shown.
func (l *natsLogger) Noticef(format string, v ...any) {
	if msg := fmt.Sprintf(format, v...); clientFault(msg) {
		l.emit(slog.LevelWarn, "%s", msg)
		return
	}
	l.emit(slog.LevelDebug, format, v...)
}

func (l *natsLogger) Fatalf(format string, v ...any) { l.emit(slog.LevelError, format, v...) }

// Errorf logs at error level, except what a client did wrong (a token
// refused, a permission it lacks, a connection over its limit, a reader
// too slow): warnings, since the server itself is well.
func (l *natsLogger) Errorf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	if clientFault(msg) {
		l.emit(slog.LevelWarn, "%s", msg)
		return
	}
	l.emit(slog.LevelError, "%s", msg)
}

// clientFault reports whether a nats-server error line is about what a
// client, not the server, did wrong.
func clientFault(msg string) bool {
	for _, c := range [...]string{"Violation", "authentication error", "Authorization Error", "Maximum Connections",
		"Slow Consumer", "Maximum Payload", "maximum subscriptions"} {
		if strings.Contains(msg, c) {
			return true
		}
	}
	return false
}
func (l *natsLogger) Debugf(format string, v ...any) { l.emit(slog.LevelDebug, format, v...) }
func (l *natsLogger) Tracef(format string, v ...any) { l.emit(slog.LevelDebug, format, v...) }

// Warnf logs at warning level, except the embedded server's warning
// about a max_payload over 8 MB: ours is raised on purpose, so that a
// day's manifest fits in one message (docs/manifests.md), and a warning
// at every start would teach operators to ignore warnings.
func (l *natsLogger) Warnf(format string, v ...any) {
	if strings.HasPrefix(format, "Maximum payloads over ") {
		l.emit(slog.LevelInfo, format+" (raised on purpose: a day's manifest is one message)", v...)
		return
	}
	l.emit(slog.LevelWarn, format, v...)
}

// reconnectWait is the pause between reconnect attempts of Connect.
const reconnectWait = 250 * time.Millisecond

// Connect dials NATS (urls: comma-separated) and returns the connection and
// its JetStream context. The connection reconnects forever and logs each
// disconnect and reconnect. The caller closes the connection.
//
// extra options come last: Embedded.Own for the server's own connection,
// nats.Token for a client of a server with a tokens file.
func Connect(ctx context.Context, urls string, name string, log *slog.Logger, extra ...nats.Option) (*nats.Conn, jetstream.JetStream, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("connect: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With(jsLogKeyComponent, "nats", jsLogKeyName, name)
	paced := &errorPace{every: natsErrorEvery}
	opts := []nats.Option{
		nats.Name(name),
		nats.CustomInboxPrefix(ReaderInboxPrefix),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(reconnectWait),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if err == nil && nc.IsClosed() {
				return // our own Close; the closed handler says so
			}
			log.Warn("nats disconnected", jsLogKeyErr, err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("nats reconnected", jsLogKeyURL, RedactURLs(nc.ConnectedUrl()))
		}),
		nats.ConnectHandler(func(nc *nats.Conn) {
			// Only after a first connect that failed (RetryOnFailedConnect).
			log.Info("nats connected", jsLogKeyURL, RedactURLs(nc.ConnectedUrl()))
		}),
		nats.ClosedHandler(func(*nats.Conn) {
			log.Info("nats connection closed")
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			// a refusal is also told by Refused
			if n, ok := paced.allow(err.Error(), time.Now()); ok {
				log.Warn("nats error", jsLogKeyErr, err, jsLogKeyRepeats, n)
			}
		}),
	}
	if dl, ok := ctx.Deadline(); ok {
		opts = append(opts, nats.Timeout(time.Until(dl)))
	}
	opts = append(opts, extra...)
	opts = append(opts, func(o *nats.Options) error {
		if o.InboxPrefix == ReaderInboxPrefix || o.InboxPrefix == UploadInboxPrefix { // not Embedded.Own's
			o.InboxPrefix = InboxFor(o.InboxPrefix, OptionsToken(o, urls))
		}
		return nil
	})
	nc, err := connectFirst(urls, opts, log)
	if err != nil {
		// nats.go quotes a URL it cannot parse whole, password and all.
		if msg := RedactSecrets(err.Error(), urls); msg != err.Error() {
			err = &redactedError{msg: msg, err: err}
		}
	}
	if errors.Is(err, nats.ErrAuthorization) {
		return nil, nil, fmt.Errorf("connect %s: %w: the NATS server wants credentials this connection lacks, or refused them: a recledger server with a tokens file wants a token (--token or RECLEDGER_TOKEN) whose role may connect, and its embedded NATS takes %d connections per token at most; an external NATS server wants its own, in the URL (--nats nats://user:password@host)", RedactURLs(urls), ErrRefused, embeddedConnsPerHolder)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("connect %s: %w: %v", RedactURLs(urls), ErrUnavailable, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("connect %s: jetstream: %w", RedactURLs(urls), err)
	}
	return nc, js, nil
}

// OptionsToken is the token a connection made with o presents to the
// server, as the embedded server reads it (streamGuard.Check): the token,
// else the password, else the user part of the first of urls that has one
// (nats://TOKEN@host).
func OptionsToken(o *nats.Options, urls string) string {
	switch {
	case o.Token != "":
		return o.Token
	case o.Password != "":
		return o.Password
	}
	for _, u := range strings.Split(urls, ",") {
		if p, err := url.Parse(strings.TrimSpace(u)); err == nil && p.User != nil {
			if pw, ok := p.User.Password(); ok {
				return pw
			}
			return p.User.Username()
		}
	}
	return ""
}

// Refused returns err, unless nc was refused an operation for its
// credentials meanwhile (a NATS permissions violation: a token whose role
// may not do what was asked). Then it returns an error wrapping
// ErrRefused that says so, since the operation itself only timed out.
func Refused(nc *nats.Conn, err error) error {
	if err == nil || nc == nil {
		return err
	}
	last := nc.LastError()
	switch {
	case !errors.Is(last, nats.ErrPermissionViolation):
		return err
	case strings.Contains(last.Error(), "$JS.API.STREAM.INFO."):
		// Readers ask for the stream's configuration only when a direct
		// get found no stream: it is missing (lost, or being created
		// again by the server), not their role at fault.
		return fmt.Errorf("%w: the stream did not answer a direct get: it is missing, being created again by the server, or the embedded server's relay of direct gets is reconnecting (its log says so); try again in a few seconds: %v", ErrUnavailable, err)
	}
	return fmt.Errorf("%w: %v (a server with a tokens file lets the auditor and admin roles read its streams): %v", ErrRefused, last, err)
}

// RedactURLs is a comma-separated list of NATS URLs as logs and errors may
// show it: a password, or a token given as the user, is "xxxxx". The
// user part is found by its '@', not by url.Parse: nats.go takes a URL
// without a scheme (user:password@host:4222), which url.Parse reads as
// scheme "user", and a password url.Parse refuses (a space in it) was
// shown whole.
func RedactURLs(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		start, end, user := userInfo(p)
		if end < 0 {
			continue
		}
		red := "xxxxx"
		if user >= 0 {
			red = p[start:user] + ":xxxxx"
		}
		parts[i] = p[:start] + red + p[end:]
	}
	return strings.Join(parts, ",")
}

// StripURLCredentials is a comma-separated list of NATS URLs without
// their user parts (serving.json's, which any local user may read),
// found as RedactURLs finds them.
func StripURLCredentials(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if start, end, _ := userInfo(p); end >= 0 {
			parts[i] = p[:start] + p[end+1:]
		}
	}
	return strings.Join(parts, ",")
}

// userInfo finds the user part of NATS URL u: it is u[start:end], and the
// user's name ends at user (-1: no password, the whole part is a token
// or a name). end is -1 when u has no user part.
func userInfo(u string) (start, end, user int) {
	if k := strings.Index(u, "://"); k >= 0 {
		start = k + 3
	}
	at := strings.LastIndexByte(u[start:], '@')
	if at < 0 {
		return 0, -1, -1
	}
	end = start + at
	user = strings.IndexByte(u[start:end], ':')
	if user >= 0 {
		user += start
	}
	return start, end, user
}

// RedactSecrets is text with every password or token of urls in it
// "xxxxx" (as RedactURLs shows them), in the forms a URL holds it: as
// written, and percent-decoded. nats.go quotes a URL it cannot parse
// whole in its error.
func RedactSecrets(text, urls string) string {
	for _, p := range strings.Split(urls, ",") {
		start, end, user := userInfo(p)
		if end < 0 {
			continue
		}
		secret := p[start:end]
		if user >= 0 {
			secret = p[user+1 : end]
		}
		if secret == "" {
			continue
		}
		text = strings.ReplaceAll(text, secret, "xxxxx")
		if dec, err := url.PathUnescape(secret); err == nil && dec != "" {
			text = strings.ReplaceAll(text, dec, "xxxxx")
		}
	}
	return text
}

// redactedError is err with its text redacted (RedactSecrets); errors.Is
// still sees err.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// connectFirst connects with opts. A connection that keeps trying
// (KeepTrying) is tried once without it first, to say why it is not
// connected: nats.go tells nothing of the refusals while it retries a
// first connect (a walk's serve, refused at start, said only that the
// server was not reachable, err=<nil>). Neither try waits long for a
// server that does not answer (startDialer).
func connectFirst(urls string, opts []nats.Option, log *slog.Logger) (*nats.Conn, error) {
	var probe nats.Options
	for _, o := range opts {
		_ = o(&probe)
	}
	if !probe.RetryOnFailedConnect {
		return nats.Connect(urls, opts...)
	}
	own := probe.CustomDialer == nil
	dial := func(d *startDialer) []nats.Option {
		if !own {
			return nil
		}
		return []nats.Option{dialWith(d)}
	}
	first := &startDialer{}
	once := append(slices.Clone(opts), func(o *nats.Options) error {
		o.RetryOnFailedConnect = false
		return nil
	})
	nc, err := nats.Connect(urls, append(once, dial(first)...)...)
	first.started.Store(true)
	var bad *url.Error
	retry := &startDialer{}
	switch {
	case err == nil:
		return nc, nil
	case errors.As(err, &bad):
		return nil, err // never parses: retrying would not help
	case errors.Is(err, nats.ErrAuthorization):
		log.Warn("the NATS server refuses this connection's credentials (the user and password or token in the URL): the connection keeps trying with them, without logging each refusal, and connects once the server takes them",
			jsLogKeyURL, RedactURLs(urls), jsLogKeyErr, err)
	default:
		// Tried just now: the connection's first round would only wait
		// again for the same servers; its reconnects begin at once.
		retry.fail = true
		log.Warn("the NATS server is not reachable: the connection keeps trying", jsLogKeyURL, RedactURLs(urls), jsLogKeyErr, RedactSecrets(err.Error(), urls))
	}
	nc, err = nats.Connect(urls, append(slices.Clone(opts), dial(retry)...)...)
	retry.started.Store(true)
	return nc, err
}

// KeepTrying is the option of a connection that must outlast its server:
// serve's. A first connect that fails is retried, and so is one the
// server refuses for its credentials: nats.go closes a connection refused
// twice alike for good, and a walk's serve never mirrored again after an
// external server's password was changed and changed back.
func KeepTrying() nats.Option {
	return func(o *nats.Options) error {
		o.RetryOnFailedConnect = true
		o.IgnoreAuthErrorAbort = true
		return nil
	}
}

// natsErrorEvery is how often Connect logs one error again while it
// repeats (a refused reconnect, every reconnectWait).
const natsErrorEvery = time.Minute

// errorPace lets the first of a run of like errors through, then one an
// interval, with how many were held back.
type errorPace struct {
	mu    sync.Mutex
	every time.Duration
	last  string
	at    time.Time
	held  int
}

// allow reports whether error text msg is logged now, and how many like
// it were not since the last that was.
func (p *errorPace) allow(msg string, now time.Time) (held int, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if msg == p.last && now.Sub(p.at) < p.every {
		p.held++
		return 0, false
	}
	held, p.held = p.held, 0
	p.last, p.at = msg, now
	return held, true
}

// checkStoreDir says why JetStream could not use dir, which nats-server
// reports as "storage directory is not a directory" whatever the cause
// (a permission, say): a dir that exists must be a readable, writable
// directory; one that does not is made by the server.
func checkStoreDir(dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("%w: the JetStream store %s: %v", ErrUnavailable, dir, err)
	case !fi.IsDir():
		return fmt.Errorf("%w: the JetStream store %s is not a directory", ErrUnavailable, dir)
	}
	if _, err := os.ReadDir(dir); err != nil {
		return fmt.Errorf("%w: the JetStream store %s cannot be read: %v", ErrUnavailable, dir, err)
	}
	f, err := os.CreateTemp(dir, ".write-check-*")
	if err != nil {
		return fmt.Errorf("%w: the JetStream store %s cannot be written: %v", ErrUnavailable, dir, err)
	}
	f.Close()
	os.Remove(f.Name())
	return nil
}
