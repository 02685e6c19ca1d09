package ledger

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// NATSAccess is what a client of the embedded NATS server may do. The
// streams themselves are written by the server's own connections only:
// no access lets a client publish to recledger.events.> or
// recledger.manifests.>, nor create, change, purge or delete a stream.
type NATSAccess uint8

// The accesses; a client may hold both.
const (
	// NATSSignals: publish call signals on recledger.cti.{site} and receive
	// the replies (API.md §3; the command role).
	NATSSignals NATSAccess = 1 << iota
	// NATSRead: read the streams with direct gets (not their
	// configuration, which names their capture subjects; no consumers):
	// replay, verify and restore (the auditor and admin roles).
	NATSRead
	// NATSUpload: use the manifests stream's durable consumers as upload
	// workers do (create, fetch, ack), and read it with direct gets (the
	// upload role). No other access touches the consumers, their
	// deliveries or their acks.
	NATSUpload
)

// UploadInboxPrefix starts the inboxes of recledger's upload workers: the
// manifests delivered to them arrive there, where only the upload role
// may listen (InboxFor).
const UploadInboxPrefix = "_RECLEDGER_UPLOAD"

// ReaderInboxPrefix starts the inboxes of recledger's own NATS clients
// (Connect): the replies to their reads arrive there, where a client of
// the command role, which may subscribe to _INBOX.> for its own replies,
// cannot listen (InboxFor).
const ReaderInboxPrefix = "_RECLEDGER_INBOX"

// InboxFor is the inbox prefix of a client presenting token under prefix
// (ReaderInboxPrefix, UploadInboxPrefix): prefix.<a hash of the token>, or
// prefix.open for a client without one. The embedded server lets a client
// listen only under its own token's prefix, so a reader cannot see
// another token's replies, nor learn the reply subjects it would need to
// slip a message of its choosing into another's read.
func InboxFor(prefix, token string) string {
	if token == "" {
		return prefix + ".open"
	}
	sum := sha256.Sum256(append([]byte("inbox:"), token...))
	return prefix + "." + hex.EncodeToString(sum[:12])
}

// NATSAuthorizer decides a client of the embedded server by the token it
// presents ("" for none; a password counts as its token) and its address.
// It returns the principal the client is known by and its access, or ok
// false to refuse the connection.
type NATSAuthorizer func(token string, addr netip.Addr) (principal string, access NATSAccess, ok bool)

// Embedded is a running embedded nats-server. Stop it with Shutdown and
// WaitForShutdown.
type Embedded struct {
	*server.Server
	own     string // the token of this process's own connections
	capture string // the subjects' prefix the streams take messages on
	// restart is held by RestartJetStream, and read-held by Steady and by
	// the direct-get relay while it relays a request.
	restart *sync.RWMutex
	// js is JetStream's configuration as the server started it, to turn
	// it on again after the server turned it off (RestartJetStream).
	js *server.JetStreamConfig
	// workers are the goroutines of the in-process connections started
	// on the server (the direct-get relay, the consumer gate): they end
	// once it has shut down, and WaitForShutdown waits for them.
	workers *sync.WaitGroup
}

// WaitForShutdown waits until the server has shut down and the
// goroutines this package started on it have ended.
func (e *Embedded) WaitForShutdown() {
	e.Server.WaitForShutdown()
	e.workers.Wait()
}

// Steady waits out a restart of JetStream in progress (RestartJetStream)
// and keeps the next from starting until release is called. While
// JetStream reads its streams back from their files, a stream not yet
// read is "not found": an outbox that created it then would take the
// place of the one being read back, its consumers with it.
func (e *Embedded) Steady() (release func()) {
	e.restart.RLock()
	return e.restart.RUnlock
}

// Own is the option that makes a connection this process's own: it may
// write the streams. Give it to ledger.Connect for the server's
// connection; never hand it out.
//
// Its replies arrive under the capture prefix (Capture + ".INBOX"), where
// no client may listen: the server's own requests (stream information,
// which names the capture subjects) are answered there, and under the
// readers' inbox prefix any reader would see them.
func (e *Embedded) Own() nats.Option {
	return func(o *nats.Options) error {
		o.Token = e.own
		o.InboxPrefix = e.capture + ".INBOX"
		return nil
	}
}

// Capture is the prefix of the subjects the streams take messages on when
// made with it (EnsureStreamsCapturing, Outbox.PublishUnder): a secret of
// this start, derived from the own token. JetStream stores on a stream
// whatever it is told to send on a subject the stream takes, its answers
// to API requests included, and a client names the reply subject of its
// requests: a stream taking recledger.events.> would store a copy of an
// event sent as the answer to a reading client's direct get. Taking
// messages on subjects no client can name closes that; the stream stores
// them under the public subjects (a subject transform), which readers
// read, and readers may not read the streams' configuration.
func (e *Embedded) Capture() string { return e.capture }

// CapturePrefix starts every capture prefix; clients may not publish
// under it.
const CapturePrefix = "_RECLEDGER_OWN"

// captureOf is the capture prefix of an own token: the same for a server
// started again with the token of the one before (as tests do), and
// unguessable without it.
func captureOf(own []byte) string {
	sum := sha256.Sum256(append([]byte("capture:"), own...))
	return CapturePrefix + "." + hex.EncodeToString(sum[:16])
}

// streamGuard is the embedded server's client authentication: the own
// token gets every permission, every other client what its access allows,
// with at most embeddedConnsPerHolder connections per holder.
type streamGuard struct {
	own       []byte
	site      string
	authorize NATSAuthorizer
	clients   atomic.Pointer[server.Account] // ClientsAccount, once made
	srv       atomic.Pointer[server.Server]  // set with clients

	mu      sync.Mutex
	conns   map[string]string // client address (host:port) → holder, admitted
	held    map[string]int    // holder → connections in conns
	counted time.Time         // of the last recount
	inboxes map[string]bool   // InboxFor of the tokens admitted (knownInbox)
}

// guardMaxInboxes bounds the inbox prefixes the guard remembers: a
// tokens file names fewer; without one any token connects.
const guardMaxInboxes = 4096

// embeddedConnsPerHolder is how many connections one holder may have
// open on the embedded server: a token, or for clients admitted by
// network, one address of it. A walk held 1,024 connections of 256
// subscriptions with one token (4 GB of the server's memory), and with a
// bound on the connections in all, kept every other client (and the
// server's own connections, when they reconnect) out.
const embeddedConnsPerHolder = 64

// recountGap is the least time between two recounts of the open
// connections (recount).
const recountGap = 100 * time.Millisecond

var _ server.Authentication = (*streamGuard)(nil)

func newStreamGuard(site string, authorize NATSAuthorizer, own string) (*streamGuard, error) {
	if own != "" {
		return &streamGuard{own: []byte(own), site: site, authorize: authorize}, nil
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	return &streamGuard{own: []byte(hex.EncodeToString(b)), site: site, authorize: authorize}, nil
}

// ready lets clients in: the server and its clients' account are made.
func (g *streamGuard) ready(srv *server.Server, clients *server.Account) {
	g.srv.Store(srv)
	g.clients.Store(clients)
}

// Check implements server.Authentication.
func (g *streamGuard) Check(c server.ClientAuthentication) bool {
	o := c.GetOpts()
	tok := o.Token
	if tok == "" {
		tok = o.Password
	}
	if subtle.ConstantTimeCompare([]byte(tok), g.own) == 1 {
		c.RegisterUser(&server.User{Username: "recledger"})
		return true
	}
	clients := g.clients.Load()
	if clients == nil { // the server is starting: its services are not there yet
		return false
	}
	principal, access := "", NATSSignals|NATSRead|NATSUpload
	addr := remoteAddr(c.RemoteAddress())
	if g.authorize != nil {
		var ok bool
		if principal, access, ok = g.authorize(tok, addr); !ok {
			return false
		}
	}
	holder := principal
	if tok == "" {
		holder += "@" + addr.String()
	}
	user := &server.User{Username: principal, Permissions: natsPermissions(g.site, access, tok), Account: clients}
	if !g.admit(holder, c, user) {
		return false
	}
	g.noteInboxes(tok, access)
	return true
}

// noteInboxes remembers the inbox prefixes a client admitted with token
// and access may listen under.
func (g *streamGuard) noteInboxes(token string, access NATSAccess) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.inboxes == nil {
		g.inboxes = make(map[string]bool)
	}
	for _, p := range []struct {
		prefix string
		access NATSAccess
	}{{ReaderInboxPrefix, NATSRead}, {UploadInboxPrefix, NATSUpload}} {
		if access&p.access != 0 && len(g.inboxes) < guardMaxInboxes {
			g.inboxes[InboxFor(p.prefix, token)] = true
		}
	}
}

// knownInbox reports whether owner, an inbox prefix replyOwner gives, is
// one a client admitted may listen under: NATS's default _INBOX, or the
// reader or upload inbox of a token admitted since the start.
func (g *streamGuard) knownInbox(owner string) bool {
	if owner == "_INBOX" {
		return true
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.inboxes[owner]
}

// admit registers user on c unless holder holds embeddedConnsPerHolder
// connections already. A client that is not on TCP (in process) is not
// counted.
func (g *streamGuard) admit(holder string, c server.ClientAuthentication, user *server.User) bool {
	addr, ok := c.RemoteAddress().(*net.TCPAddr)
	if !ok {
		c.RegisterUser(user)
		return true
	}
	key := addr.String()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.conns == nil {
		g.conns, g.held = make(map[string]string), make(map[string]int)
	}
	if prev, ok := g.conns[key]; ok { // a second CONNECT on the connection
		delete(g.conns, key)
		g.held[prev]--
	}
	if g.held[holder] >= embeddedConnsPerHolder {
		// Closed connections are forgotten by asking the server which are
		// open, at most once every recountGap: a holder connecting faster
		// waits (its own connection's goroutine), others do not.
		if wait := recountGap - time.Since(g.counted); wait > 0 {
			g.mu.Unlock()
			time.Sleep(wait)
			g.mu.Lock()
		}
		g.recount()
	}
	if g.held[holder] >= embeddedConnsPerHolder {
		return false
	}
	// Registered under the lock, so that a recount sees it in the
	// clients' account.
	c.RegisterUser(user)
	g.conns[key] = holder
	g.held[holder]++
	return true
}

// recount forgets the admitted connections that are closed, asking the
// server which are open (about a millisecond for a thousand); at most
// once every recountGap.
func (g *streamGuard) recount() {
	srv := g.srv.Load()
	if srv == nil || time.Since(g.counted) < recountGap {
		return
	}
	g.counted = time.Now()
	z, err := srv.Connz(&server.ConnzOptions{Account: ClientsAccount, Limit: 1 << 20})
	if err != nil {
		return
	}
	open := make(map[string]bool, len(z.Conns))
	for _, ci := range z.Conns {
		open[net.JoinHostPort(ci.IP, strconv.Itoa(ci.Port))] = true
	}
	for key, holder := range g.conns {
		if !open[key] {
			delete(g.conns, key)
			if g.held[holder]--; g.held[holder] <= 0 {
				delete(g.held, holder)
			}
		}
	}
}

func remoteAddr(a net.Addr) netip.Addr {
	if t, ok := a.(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(t.IP); ok {
			return ip.Unmap()
		}
	}
	return netip.Addr{}
}

// natsPermissions are the subjects an access may publish and subscribe
// to, for a client presenting token. Reading the streams goes through
// JetStream's API ($JS.API.>), less every operation that writes or removes
// a stream.
func natsPermissions(site string, access NATSAccess, token string) *server.Permissions {
	pub := &server.SubjectPermission{Allow: []string{}, Deny: []string{
		"recledger.events.>", "recledger.manifests.>", CapturePrefix + ".>",
		// the streams' configuration names the capture subjects
		"$JS.API.STREAM.INFO.>", "$JS.API.STREAM.LIST", "$JS.API.STREAM.LIST.>",
		"$JS.API.STREAM.CREATE.>", "$JS.API.STREAM.UPDATE.>", "$JS.API.STREAM.DELETE.>",
		"$JS.API.STREAM.PURGE.>", "$JS.API.STREAM.MSG.DELETE.>", "$JS.API.STREAM.SNAPSHOT.>",
		"$JS.API.STREAM.RESTORE.>", "$JS.API.STREAM.PEER.>", "$JS.API.STREAM.LEADER.>",
		"$JS.API.ACCOUNT.>", "$JS.API.SERVER.>", "$JS.API.META.>",
		// the upload workers' consumers are theirs to use, not to remove
		"$JS.API.CONSUMER.DELETE." + ManifestsStream + ".>", "$JS.API.CONSUMER.PAUSE." + ManifestsStream + ".>",
		"$JS.API.CONSUMER.RESET." + ManifestsStream + ".>", "$JS.API.CONSUMER.UNPIN." + ManifestsStream + ".>",
		// and the site's own is the server's to make (ensureUploadConsumer)
		"$JS.API.CONSUMER.CREATE." + ManifestsStream + "." + UploadDurable(site),
		"$JS.API.CONSUMER.CREATE." + ManifestsStream + "." + UploadDurable(site) + ".>",
		"$JS.API.CONSUMER.DURABLE.CREATE." + ManifestsStream + "." + UploadDurable(site),
	}}
	sub := &server.SubjectPermission{Allow: []string{"_INBOX.>"}}
	if access&NATSSignals != 0 {
		pub.Allow = append(pub.Allow, CTISubject(site))
	}
	if access&NATSRead != 0 {
		pub.Allow = append(pub.Allow, "$JS.API.DIRECT.GET.>")
		sub.Allow = append(sub.Allow, InboxFor(ReaderInboxPrefix, token)+".>")
	}
	if access&NATSUpload != 0 {
		for _, api := range []string{"CONSUMER.CREATE", "CONSUMER.DURABLE.CREATE", "CONSUMER.INFO", "CONSUMER.MSG.NEXT"} {
			pub.Allow = append(pub.Allow, "$JS.API."+api+"."+ManifestsStream+".>")
		}
		pub.Allow = append(pub.Allow, "$JS.API.DIRECT.GET."+ManifestsStream, "$JS.API.DIRECT.GET."+ManifestsStream+".>",
			"$JS.ACK."+ManifestsStream+".>")
		sub.Allow = append(sub.Allow, InboxFor(UploadInboxPrefix, token)+".>")
	}
	if len(pub.Allow) == 0 {
		pub.Allow = []string{"_INBOX.none"} // nothing: an empty allow list would allow everything
	}
	return &server.Permissions{Publish: pub, Subscribe: sub}
}

// SafeReplySubject reports whether the server's own connection may answer
// a request on reply: none, or any subject but the streams' and NATS's own
// ($JS, $SYS, …), and recledger's readers' inboxes. The own connection
// may write the streams, and only readers may listen on their inboxes, so
// a reply subject chosen by a client must not name them.
func SafeReplySubject(reply string) bool {
	for _, p := range []string{"recledger.", "$", ReaderInboxPrefix + ".", UploadInboxPrefix + ".", CapturePrefix + "."} {
		if strings.HasPrefix(reply, p) {
			return false
		}
	}
	return true
}
