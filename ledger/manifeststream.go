package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// manifestAttempts bounds PublishManifest's retries after losing a race.
const manifestAttempts = 3

// PublishManifest publishes the sealed manifest of day at site to
// ManifestSubject(site, day) with message id "{site}.{day}", once. It first
// looks for a message already on that subject: the same bytes make it a
// no-op (a re-publish after a crash, however long after), different bytes
// are an error wrapping ErrConflict. The publish itself expects the subject
// to be still empty, so two racing publishers cannot both store it.
func PublishManifest(ctx context.Context, js jetstream.JetStream, site, day string, body []byte) error {
	if err := validSite(site); err != nil {
		return fmt.Errorf("publish manifest: %w", err)
	}
	if err := validSite(day); err != nil {
		return fmt.Errorf("publish manifest: day: %w", err)
	}
	if max := js.Conn().MaxPayload(); max > 0 && int64(len(body))+msgOverhead > max {
		return fmt.Errorf("publish manifest %s: %w: the manifest is %d bytes, the server takes %d; raise its max_payload", day, ErrTooLarge, len(body), max)
	}
	subj := ManifestSubject(site, day)
	s, err := js.Stream(ctx, ManifestsStream)
	if err != nil {
		return fmt.Errorf("publish manifest %s: %w: %v", day, ErrUnavailable, err)
	}
	for range manifestAttempts {
		m, err := s.GetLastMsgForSubject(ctx, subj)
		switch {
		case err == nil:
			if bytes.Equal(m.Data, body) {
				return nil
			}
			return fmt.Errorf("publish manifest %s: %w: stream holds a different manifest for that day", day, ErrConflict)
		case !errors.Is(err, jetstream.ErrMsgNotFound):
			return fmt.Errorf("publish manifest %s: %w: %v", day, ErrUnavailable, err)
		}
		_, err = js.Publish(ctx, subj, body,
			jetstream.WithMsgID(site+"."+day),
			jetstream.WithExpectLastSequencePerSubject(0))
		if err == nil {
			return nil
		}
		var apiErr *jetstream.APIError
		if !errors.As(err, &apiErr) || (apiErr.ErrorCode != jetstream.JSErrCodeStreamWrongLastSequence && apiErr.ErrorCode != jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
			return fmt.Errorf("publish manifest %s: %w: %v", day, ErrUnavailable, err)
		}
		// Someone stored it meanwhile: look again.
	}
	return fmt.Errorf("publish manifest %s: %w: subject keeps changing", day, ErrConflict)
}
