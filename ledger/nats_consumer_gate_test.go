package ledger

import (
	"errors"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// TestTheGatePassesOnRequestsOnly: the consumer gate passes on a
// client's consumer creation as a request of its own and hands back
// JetStream's answer. A creation published without a reply subject is
// no request: the gate drops it, rather than have JetStream make a
// consumer for a client that hears nothing of it (nor of a refusal).
func TestTheGatePassesOnRequestsOnly(t *testing.T) {
	srv, own := natsGuardFixture(t, uploadOnly)
	c, err := dialUploader(t, srv)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	pull := `{"stream_name":"` + ManifestsStream + `","config":{"durable_name":"unasked","ack_policy":"explicit"}}`
	if err := c.nc.Publish("$JS.API.CONSUMER.CREATE."+ManifestsStream+".unasked", []byte(pull)); err != nil {
		t.Fatal(err)
	}
	// The gate takes one client's messages in order: once the request
	// after it is answered, the creation without a reply was handled.
	if _, err := c.js.CreateOrUpdateConsumer(ctx, ManifestsStream, jetstream.ConsumerConfig{Durable: "asked", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatalf("a pull consumer asked for: %v", err)
	}
	if _, err := own.Consumer(ctx, ManifestsStream, "asked"); err != nil {
		t.Fatalf("the consumer asked for: %v", err)
	}
	if _, err := own.Consumer(ctx, ManifestsStream, "unasked"); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Errorf("the creation without a reply: consumer %v, want none made", err)
	}
	if c.denied("$JS.API.CONSUMER.CREATE." + ManifestsStream + ".unasked") {
		t.Error("the publish was refused as a permission: the test did not test the gate")
	}
}
