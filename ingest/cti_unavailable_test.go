package ingest_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/recledger/recledger/ledger"
)

// TestCTISignalsTheLedgerCannotTakeAreAnswered503AndLogged: call signals
// the ledger refuses (it is closed, its disk full) are answered with
// status 503, for their sender to retry, and logged at ERROR: unlike a
// refused signal, the fault is the server's, and an operator must look.
func TestCTISignalsTheLedgerCannotTakeAreAnswered503AndLogged(t *testing.T) {
	nc := startNATS(t)
	s, logs := newLoggedStack(t)
	s.configure()
	runningCTI(t, s, nc, "test")
	signal := []byte(`{"call_id":"c-1","extension":"3420","type":"ringing"}`)
	s.store.Close()
	msg, err := nc.Request(ledger.CTISubject("test"), signal, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var r map[string]any
	if err := json.Unmarshal(msg.Data, &r); err != nil || r["status"] != 503.0 || r["reason"] != "unavailable" {
		t.Fatalf("signals on a closed ledger: %v %s", err, msg.Data)
	}
	if out := logs.String(); !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "call signals not taken") {
		t.Errorf("signals on a closed ledger, not logged at ERROR:\n%s", out)
	}
}
