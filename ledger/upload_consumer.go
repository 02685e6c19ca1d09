package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// UploadAckWait is the upload workers' consumer's AckWait: how long a
// worker has for a manifest before JetStream hands it to another.
const UploadAckWait = 5 * time.Minute

// UploadDurable is the name of a site's upload workers' durable consumer
// on the manifests stream: upload-{site}.
func UploadDurable(site string) string { return "upload-" + site }

// UploadConsumerConfig is the upload workers' durable pull consumer
// (docs/upload-worker.md): explicit acks, redelivered without limit,
// every manifest of site from the first.
func UploadConsumerConfig(site, durable string, ackWait time.Duration) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       durable,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxDeliver:    -1,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		FilterSubject: siteManifestsFilter(site),
	}
}

// ensureUploadConsumer makes the site's upload consumer
// (UploadDurable, UploadAckWait), or sets it back to that configuration.
// The embedded server provisions it itself, and no client may create or
// change it (natsPermissions): the upload role could otherwise give it a
// configuration that loses manifests (max_deliver 1), or an
// inactive_threshold that has JetStream remove it.
func ensureUploadConsumer(ctx context.Context, js jetstream.JetStream, site string) error {
	if _, err := js.CreateOrUpdateConsumer(ctx, ManifestsStream, UploadConsumerConfig(site, UploadDurable(site), UploadAckWait)); err != nil {
		return fmt.Errorf("ensure streams: upload consumer: %w: %v", ErrUnavailable, err)
	}
	return nil
}
