package ingest_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/recledger/recledger/ingest"
	"github.com/recledger/recledger/ledger"
)

// TestCTIStopFinishesTheBatchesItTook: a stop of the call signals'
// intake does not cut short the batches its workers hold: a batch taken
// before the stop is appended and answered, and RunCTI returns only after
// it.
func TestCTIStopFinishesTheBatchesItTook(t *testing.T) {
	nc := startNATS(t)
	gated := &gatedAppender{}
	s := newStackWith(t, nil, func(o *ingest.Options, store *ledger.Store) {
		gated.Appender = store
		o.Appender = gated
	})
	s.configure()
	run := runningCTI(t, s, nc, "test")
	answers, err := nc.SubscribeSync(nc.NewInbox())
	if err != nil {
		t.Fatal(err)
	}
	gated.gate.Lock()
	if err := nc.PublishRequest(ledger.CTISubject("test"), answers.Subject, []byte(`{"call_id":"c-1","extension":"3420","type":"answered"}`)); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); gated.waiting.Load() < 1; {
		if time.Now().After(deadline) {
			t.Fatal("no worker waits in an append")
		}
		time.Sleep(5 * time.Millisecond)
	}
	run.cancel()
	// Once the subscription is gone, RunCTI still waits for the worker.
	for {
		if _, err := nc.Request(ledger.CTISubject("test"), []byte(`{}`), 200*time.Millisecond); errors.Is(err, nats.ErrNoResponders) {
			break
		}
	}
	if run.returned() {
		t.Fatal("RunCTI returned while a worker held a batch")
	}
	gated.gate.Unlock()
	if err := run.stop(); err != nil {
		t.Fatal(err)
	}
	m, err := answers.NextMsg(30 * time.Second)
	if err != nil {
		t.Fatalf("the batch taken before the stop is not answered: %v", err)
	}
	if !bytes.Contains(m.Data, []byte(`"accepted":1`)) {
		t.Fatalf("the batch taken before the stop: %s", m.Data)
	}
	s.verified(3) // configuration, the first signal, the batch
}
