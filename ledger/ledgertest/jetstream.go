// Package ledgertest starts the real things the ledger's users test
// against: an in-process nats-server with JetStream on a free port, as
// nats-server's own tests do. Only tests import it.
package ledgertest

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/recledger/recledger/ledger"
)

// JetStream is a running in-process nats-server with a client on it.
type JetStream struct {
	Server *ledger.Embedded
	Conn   *nats.Conn
	JS     jetstream.JetStream
}

// URL is the server's client URL.
func (j *JetStream) URL() string { return j.Server.ClientURL() }

// StartJetStream starts nats-server with JetStream (store in a temp dir,
// client port chosen free, quiet) and connects to it; both are stopped when
// the test ends. It is unguarded: its clients may write the streams, as
// the tests of the outbox do. With sites given, it also creates recledger's streams for
// each site (ledger.EnsureStreams).
func StartJetStream(tb testing.TB, sites ...string) *JetStream {
	tb.Helper()
	return StartJetStreamOn(tb, "127.0.0.1:-1", sites...)
}

// StartJetStreamOn is StartJetStream on the client address listen, for a
// test that starts a server where a client already dials (a fresh store
// each time). Shutting it down early is allowed.
func StartJetStreamOn(tb testing.TB, listen string, sites ...string) *JetStream {
	tb.Helper()
	srv, err := ledger.StartEmbedded(ledger.EmbeddedOptions{StoreDir: tb.TempDir(), Listen: listen, Unguarded: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	for _, site := range sites {
		if err := ledger.EnsureStreams(context.Background(), js, site, 1); err != nil {
			tb.Fatal(err)
		}
	}
	return &JetStream{Server: srv, Conn: nc, JS: js}
}
