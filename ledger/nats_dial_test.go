package ledger_test

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/ledger/ledgertest"
)

// TestKeepTryingDoesNotWaitForASilentServer: a connection that keeps
// trying (serve's) returns from Connect without waiting the whole dial
// timeout for a NATS address that does not answer, twice (its probe and
// its first round): a walk's serve took 8.8 s to start for one such
// address, 25 s for three. With a 20 s timeout, the old way took 40 s.
func TestKeepTryingDoesNotWaitForASilentServer(t *testing.T) {
	addr := ledgertest.SilentAddr(t)
	var logged ledgertest.Buffer
	start := time.Now()
	nc, _, err := ledger.Connect(t.Context(), "nats://"+addr, "test", slog.New(slog.NewTextHandler(&logged, nil)),
		ledger.KeepTrying(), nats.Timeout(20*time.Second))
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if took > 10*time.Second {
		t.Errorf("Connect took %s for a server that does not answer (timeout 20 s)", took.Round(time.Millisecond))
	}
	if nc.IsConnected() {
		t.Error("connected to a server that does not answer")
	}
	if !strings.Contains(logged.String(), "not reachable") {
		t.Errorf("the start does not say the server is not reachable:\n%s", logged.String())
	}
}
