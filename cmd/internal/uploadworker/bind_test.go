package uploadworker

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/ledger/ledgertest"
)

// A worker that finds its consumer made with other settings than its own
// works with the consumer's, and says so; one that finds them the same
// says nothing.
func TestWorkerWarnsOfAConsumerWithOtherSettings(t *testing.T) {
	const warning = "the consumer was made with other settings than this worker's"
	for _, tc := range []struct {
		name       string
		ackWait    time.Duration // the worker's
		maxDeliver int           // the consumer's
		ackAll     bool          // the consumer acks every message up to the one acked
		warns      bool
	}{
		{name: "same", ackWait: time.Minute, maxDeliver: -1},
		{name: "other ack wait", ackWait: 2 * time.Second, maxDeliver: -1, warns: true},
		{name: "other max deliver", ackWait: time.Minute, maxDeliver: 5, warns: true},
		{name: "other ack policy", ackWait: time.Minute, maxDeliver: -1, ackAll: true, warns: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			js := ledgertest.StartJetStream(t, testSite).JS
			made := ledger.UploadConsumerConfig(testSite, ledger.UploadDurable(testSite), time.Minute)
			made.MaxDeliver = tc.maxDeliver
			if tc.ackAll {
				made.AckPolicy = jetstream.AckAllPolicy
			}
			if _, err := js.CreateConsumer(context.Background(), StreamName, made); err != nil {
				t.Fatal(err)
			}
			cfg := testConfig(t.TempDir(), nil)
			cfg.AckWait = tc.ackWait
			log, stop := runLogged(t, js, cfg)
			waitFor(t, "the worker bound", 10*time.Second, func() bool { return strings.Contains(log.String(), "upload worker bound") })
			stop()
			out := log.String()
			if got := strings.Contains(out, warning); got != tc.warns {
				t.Fatalf("warned %v, want %v; the log:\n%s", got, tc.warns, out)
			}
			if tc.warns && !strings.Contains(out, "ack_wait=1m0s") {
				t.Errorf("the warning does not name the consumer's ack wait:\n%s", out)
			}
		})
	}
}
