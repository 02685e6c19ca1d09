package ledger

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// manifestAttempts bounds publishManifest's retries after losing a race.
const manifestAttempts = 3

// publishManifest publishes the sealed manifest of day at site to
// ManifestSubject(site, day) with message id "{site}.{day}", once, under
// capture (see Embedded.Capture); a manifest larger than the NATS server
// takes or the stream stores is compressed (ManifestEncodingHeader). It
// first looks for a message already on that subject: the same manifest
// makes it a no-op (a re-publish after a crash, however long after),
// different bytes are an error wrapping ErrConflict. Messages on the
// subject that are not a manifest (foreignManifest) are removed first,
// when js may. The publish itself expects the subject to be still empty,
// so two racing publishers cannot both store it.
func publishManifest(ctx context.Context, js jetstream.JetStream, site, day string, body []byte, capture string) error {
	_, err := sendManifest(ctx, js, site, day, body, capture)
	return err
}

// manifestSent is how sendManifest sent a manifest, or found it too large.
type manifestSent struct {
	compressed bool
	bound      int64 // the largest message the server takes and the stream stores; 0: not known
}

// sendManifest is publishManifest, saying how.
func sendManifest(ctx context.Context, js jetstream.JetStream, site, day string, body []byte, capture string) (sent manifestSent, err error) {
	if err := validSite(site); err != nil {
		return sent, fmt.Errorf("publish manifest: %w", err)
	}
	if err := validSite(day); err != nil {
		return sent, fmt.Errorf("publish manifest: day: %w", err)
	}
	subj := ManifestSubject(site, day)
	s, err := js.Stream(ctx, ManifestsStream)
	if err != nil {
		return sent, fmt.Errorf("publish manifest %s: %w: %v", day, ErrUnavailable, err)
	}
	max, byStream := messageBound(js.Conn(), int64(s.CachedInfo().Config.MaxMsgSize))
	sent.bound = max
	// The expectation as a header (WithExpectLastSequencePerSubject(0)'s),
	// so that the size checked is the size sent.
	msg := &nats.Msg{Subject: captured(subj, capture), Data: body, Header: nats.Header{
		jetstream.MsgIDHeader:               []string{site + "." + day},
		jetstream.ExpectedLastSubjSeqHeader: []string{"0"},
	}}
	if !fits(msg, max) {
		z, err := gzipManifest(body)
		if err != nil {
			return sent, fmt.Errorf("publish manifest %s: gzip: %w", day, err)
		}
		msg.Data = z
		msg.Header.Set(ManifestEncodingHeader, ManifestGzip)
		if !fits(msg, max) {
			return sent, fmt.Errorf("publish manifest %s: %w: the manifest is %d bytes, %d compressed, %s", day, ErrTooLarge, len(body), len(z), raiseBound(ManifestsStream, max, byStream))
		}
		sent.compressed = true
	}
	for range manifestAttempts {
		m, err := s.GetLastMsgForSubject(ctx, subj)
		switch {
		case err == nil && sameManifest(m.Header, m.Data, body):
			return sent, nil
		case err == nil && foreignManifest(m, site, day):
			// JetStream stored something on the subject for a client
			// (jsforeign.go): remove it, and only it. The day's manifest
			// may be before it; purging that too would lose it, its
			// message id staying in the deduplication window.
			ours, err := removeForeignManifests(ctx, s, subj, site, day)
			switch {
			case err != nil:
				return sent, fmt.Errorf("publish manifest %s: %w: the subject holds a message that is not a manifest, which cannot be removed: %v", day, ErrConflict, err)
			case ours != nil && sameManifest(ours.Header, ours.Data, body):
				return sent, nil
			case ours != nil:
				return sent, fmt.Errorf("publish manifest %s: %w: stream holds a different manifest for that day", day, ErrConflict)
			}
			continue
		case err == nil:
			return sent, fmt.Errorf("publish manifest %s: %w: stream holds a different manifest for that day", day, ErrConflict)
		case !errors.Is(err, jetstream.ErrMsgNotFound):
			return sent, fmt.Errorf("publish manifest %s: %w: %v", day, ErrUnavailable, err)
		}
		_, err = js.PublishMsg(ctx, msg)
		if err == nil {
			return sent, nil
		}
		var apiErr *jetstream.APIError
		if !errors.As(err, &apiErr) || (apiErr.ErrorCode != jetstream.JSErrCodeStreamWrongLastSequence && apiErr.ErrorCode != jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
			return sent, fmt.Errorf("publish manifest %s: %w: %w", day, ErrUnavailable, err)
		}
		// Someone stored it meanwhile: look again.
	}
	return sent, fmt.Errorf("publish manifest %s: %w: subject keeps changing", day, ErrConflict)
}

// manifestBound is the largest message the NATS server js is connected to
// takes and the manifests stream stores; -1 when the stream cannot be read.
func manifestBound(ctx context.Context, js jetstream.JetStream) int64 {
	s, err := js.Stream(ctx, ManifestsStream)
	if err != nil {
		return -1
	}
	max, _ := messageBound(js.Conn(), int64(s.CachedInfo().Config.MaxMsgSize))
	return max
}

// foreignManifest reports whether m, on the manifest subject of day at
// site, was not published as its manifest: manifests carry the message id
// "{site}.{day}" (API.md §6), which no message JetStream stores for a
// client has.
func foreignManifest(m *jetstream.RawStreamMsg, site, day string) bool {
	return m.Header.Get(jetstream.MsgIDHeader) != site+"."+day
}

// removeForeignManifests deletes the messages on a day's subject that are
// not its manifest (foreignManifest), and returns the manifest when the
// subject holds it.
func removeForeignManifests(ctx context.Context, s jetstream.Stream, subj, site, day string) (ours *jetstream.RawStreamMsg, err error) {
	for p := uint64(1); ; {
		m, err := s.GetMsg(ctx, p, jetstream.WithGetMsgSubject(subj))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return ours, nil
		}
		if err != nil {
			return nil, err
		}
		if !foreignManifest(m, site, day) {
			if ours == nil {
				ours = m
			}
		} else if err := s.DeleteMsg(ctx, m.Sequence); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil, err
		}
		p = m.Sequence + 1
	}
}
