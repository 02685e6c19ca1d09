package ledger

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestEnsureStreamsNamesTheManifestsStreamsLimits: limits that remove
// messages on a manifests stream an operator made are named as well
// (upload workers would miss the days removed), each by its setting.
func TestEnsureStreamsNamesTheManifestsStreamsLimits(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(*jetstream.StreamConfig)
		want string
	}{
		{"max age", func(cfg *jetstream.StreamConfig) { cfg.MaxAge = 30 * time.Second }, "max_age 30s"},
		{"max messages", func(cfg *jetstream.StreamConfig) { cfg.MaxMsgs = 5 }, "max_msgs 5"},
		{"max bytes", func(cfg *jetstream.StreamConfig) { cfg.MaxBytes = 1 << 30 }, "max_bytes 1073741824"},
		{"one message per subject", func(cfg *jetstream.StreamConfig) { cfg.MaxMsgsPerSubject = 1 }, "max_msgs_per_subject 1"},
		{"work queue", func(cfg *jetstream.StreamConfig) { cfg.Retention = jetstream.WorkQueuePolicy }, "retention WorkQueue"},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
			_, js := jsConnect(t, srv)
			if err := js.DeleteStream(t.Context(), ManifestsStream); err != nil {
				t.Fatal(err)
			}
			cfg := jetstream.StreamConfig{Name: ManifestsStream, Subjects: []string{siteManifestsFilter(jsTestSite)}}
			c.edit(&cfg)
			if _, err := js.CreateStream(t.Context(), cfg); err != nil {
				t.Fatal(err)
			}
			err := EnsureStreams(t.Context(), js, jsTestSite, 1)
			if !errors.Is(err, ErrStreamLimits) || !strings.Contains(err.Error(), ManifestsStream) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want ErrStreamLimits naming %s and %q", err, ManifestsStream, c.want)
			}
			if strings.Contains(err.Error(), EventsStream) {
				t.Errorf("the events stream has no limits: %v", err)
			}
		})
	}
}
