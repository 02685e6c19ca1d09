package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/recledger/recledger/ledger"
)

// openOwnMirror serves a data dir's own embedded mirror (DIR/jetstream) on
// a loopback port, for a command run while no server runs on the dir
// (restore after its ledger file was lost, verify of a stopped server),
// and connects to it as the streams' owner. ok is false when the dir has
// no mirror; stop closes the connection and the server.
func openOwnMirror(ctx context.Context, data, site, name string, stderr io.Writer) (nc *nats.Conn, js jetstream.JetStream, stop func(), ok bool, err error) {
	mirror := filepath.Join(data, JetStreamDir)
	if !isDir(mirror) {
		return nil, nil, nil, false, nil
	}
	ns, err := ledger.StartEmbedded(ledger.EmbeddedOptions{StoreDir: mirror, Listen: "127.0.0.1:-1", Site: site})
	if err != nil {
		return nil, nil, nil, true, fmt.Errorf("the mirror in %s: %w", mirror, err)
	}
	fmt.Fprintf(stderr, "reading the mirror in %s\n", mirror)
	if nc, js, err = ledger.Connect(ctx, ns.ClientURL(), name, nil, ns.Own()); err != nil {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, nil, nil, true, err
	}
	return nc, js, func() { nc.Close(); ns.Shutdown(); ns.WaitForShutdown() }, true, nil
}
