package ledger_test

import (
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/ledger/ledgertest"
)

// A token given in the URL (nats://TOKEN@host, as docs/clients.md
// suggests) is not written to the log when the connection is made or
// made again: nats.go's redaction masks only a password (a walk found
// the token in the server's log).
func TestConnectLogHidesAURLToken(t *testing.T) {
	srv, err := ledger.StartEmbedded(ledger.EmbeddedOptions{StoreDir: t.TempDir(), Listen: "127.0.0.1:-1", Site: "s1"})
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	logs := &ledgertest.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	const secret = "s3cr3t-token-0123456789"
	nc, _, err := ledger.Connect(t.Context(), "nats://"+secret+"@"+u.Host, "test", log)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	srv.Shutdown()
	srv.WaitForShutdown()
	srv, err = ledger.StartEmbedded(ledger.EmbeddedOptions{StoreDir: t.TempDir(), Listen: u.Host, Site: "s1"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
	for end := time.Now().Add(30 * time.Second); !strings.Contains(logs.String(), "nats reconnected"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("no reconnect logged:\n%s", logs.String())
		}
	}
	if s := logs.String(); strings.Contains(s, secret) || !strings.Contains(s, "nats://xxxxx@") {
		t.Fatalf("the log holds the URL's token, or no masked URL:\n%s", s)
	}
}
