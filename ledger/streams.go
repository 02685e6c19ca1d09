package ledger

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Stream names (API.md §6).
const (
	// EventsStream holds every ledger event of every site, in ledger order per site.
	EventsStream = "RECLEDGER_EVENTS"
	// ManifestsStream holds each sealed end-of-day manifest.
	ManifestsStream = "RECLEDGER_MANIFESTS"
)

// DuplicateWindow is the streams' message-id deduplication window. It is a
// second line of defence only: the outbox's exactly-once guarantee comes
// from resuming at the stream's tail, not from deduplication.
const DuplicateWindow = 2 * time.Minute

// EventSubject is the subject of an event of type t at site:
// recledger.events.{site}.{type}.
func EventSubject(site string, t Type) string {
	return "recledger.events." + site + "." + string(t)
}

// siteEventsFilter matches every event subject of site.
func siteEventsFilter(site string) string { return "recledger.events." + site + ".>" }

// ManifestSubject is the subject of the manifest of day at site:
// recledger.manifests.{site}.{day}.
func ManifestSubject(site, day string) string {
	return "recledger.manifests." + site + "." + day
}

// siteManifestsFilter matches every manifest subject of site.
func siteManifestsFilter(site string) string { return "recledger.manifests." + site + ".*" }

// CTISubject is the subject call signals arrive on, request/reply:
// recledger.cti.{site} (API.md §6).
func CTISubject(site string) string { return "recledger.cti." + site }

// validSite reports whether site can be one token of a subject.
func validSite(site string) error {
	if site == "" {
		return fmt.Errorf("site: %w: empty", ErrInvalid)
	}
	for _, r := range site {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return fmt.Errorf("site %q: %w: a site is one token of NATS subjects and part of consumer names: letters, digits, '-' and '_'", site, ErrInvalid)
		}
	}
	return nil
}

// CheckSite reports a site name that cannot be one token of the
// subjects (API.md §6), before anything is created under it.
func CheckSite(site string) error { return validSite(site) }

// EnsureStreams creates or updates RECLEDGER_EVENTS (recledger.events.{site}.>)
// and RECLEDGER_MANIFESTS (recledger.manifests.{site}.*). Subjects of other
// sites already in a stream are kept; this site's are added.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, site string, replicas int) error {
	return EnsureStreamsCapturing(ctx, js, site, replicas, "")
}

// EnsureStreamsCapturing is EnsureStreams for the embedded server's
// streams: with a capture prefix (Embedded.Capture), each stream takes
// messages on the site's subjects under the prefix alone, and stores them
// under the public ones (recledger.events.{site}.>, …); its subjects of
// before (public, or an earlier start's prefix) are replaced. Such a
// stream also denies deleting and purging messages (for good: JetStream
// does not let that be undone), and the site's upload consumer is made
// here (ensureUploadConsumer), since clients may not make it.
func EnsureStreamsCapturing(ctx context.Context, js jetstream.JetStream, site string, replicas int, capture string) error {
	if err := validSite(site); err != nil {
		return fmt.Errorf("ensure streams: %w", err)
	}
	if replicas < 1 {
		replicas = 1
	}
	// A stream kept at fewer replicas than asked still takes the site:
	// said at the end, after the other is made.
	// So is one whose own limits remove messages (ErrStreamLimits).
	var fewer error
	if err := ensureStream(ctx, js, EventsStream, siteEventsFilter(site), replicas, capture); errors.Is(err, ErrFewerReplicas) || errors.Is(err, ErrStreamLimits) {
		fewer = err
	} else if err != nil {
		return err
	}
	if err := ensureStream(ctx, js, ManifestsStream, siteManifestsFilter(site), replicas, capture); errors.Is(err, ErrFewerReplicas) || errors.Is(err, ErrStreamLimits) {
		fewer = errors.Join(fewer, err)
	} else if err != nil {
		return err
	}
	if capture == "" {
		return fewer
	}
	return errors.Join(fewer, ensureUploadConsumer(ctx, js, site))
}

// captured is subject as a stream with capture prefix takes it: the
// prefix in place of "recledger"; subject itself without one.
func captured(subject, capture string) string {
	if capture == "" {
		return subject
	}
	return capture + strings.TrimPrefix(subject, "recledger")
}

// captureTransform is the subject transform of a stream with capture
// prefix: its messages are stored under the public subjects.
func captureTransform(capture string) *jetstream.SubjectTransformConfig {
	if capture == "" {
		return nil
	}
	return &jetstream.SubjectTransformConfig{Source: capture + ".>", Destination: "recledger.>"}
}

// ensureStream creates stream name with subject (under capture, when set),
// or adds subject to it (with capture, makes it its only subject).
func ensureStream(ctx context.Context, js jetstream.JetStream, name, subject string, replicas int, capture string) error {
	s, err := js.Stream(ctx, name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		cfg := jetstream.StreamConfig{
			Name:             name,
			Subjects:         []string{captured(subject, capture)},
			SubjectTransform: captureTransform(capture),
			DenyDelete:       capture != "",
			DenyPurge:        capture != "",
			Storage:          jetstream.FileStorage,
			Retention:        jetstream.LimitsPolicy,
			Discard:          jetstream.DiscardOld,
			Replicas:         replicas,
			Duplicates:       DuplicateWindow,
			// Replay reads with batched direct gets (jsdirect.go).
			AllowDirect: true,
		}
		if _, err := js.CreateStream(ctx, cfg); err != nil {
			if noPeers(err) && replicas > 1 {
				// The cluster cannot place that many now: one copy is
				// better than no mirror; a later start raises it.
				cfg.Replicas = 1
				if _, err2 := js.CreateStream(ctx, cfg); err2 == nil {
					return fmt.Errorf("ensure stream %s: create: %w: %d asked, 1 made: %v: the cluster cannot place that many (fewer servers, or some down)", name, ErrFewerReplicas, replicas, err)
				}
			}
			if e := refusedConfig(err, subject, replicas); e != nil {
				return fmt.Errorf("ensure stream %s: create: %w", name, e)
			}
			if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
				return fmt.Errorf("ensure stream %s: create: %w: %v", name, ErrUnavailable, err)
			}
			// Created by someone else meanwhile: update it instead.
			return ensureStream(ctx, js, name, subject, replicas, capture)
		}
		return nil
	case errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrJetStreamNotEnabled):
		return fmt.Errorf("ensure stream %s: %w: %v: no JetStream answered; is JetStream enabled on the NATS server (nats-server -js, or a jetstream block in its configuration)?", name, ErrUnavailable, err)
	case err != nil:
		return fmt.Errorf("ensure stream %s: %w: %v", name, ErrUnavailable, err)
	}
	cfg := s.CachedInfo().Config
	changed := false
	if want := captured(subject, capture); capture != "" && !slices.Equal(cfg.Subjects, []string{want}) {
		cfg.Subjects = []string{want}
		changed = true
	} else if capture == "" && !slices.Contains(cfg.Subjects, subject) {
		cfg.Subjects = append(cfg.Subjects, subject)
		changed = true
	}
	if tr := captureTransform(capture); tr != nil && (cfg.SubjectTransform == nil || *cfg.SubjectTransform != *tr) {
		cfg.SubjectTransform = tr
		changed = true
	}
	if capture != "" && (!cfg.DenyDelete || !cfg.DenyPurge) {
		// A client allowed to use JetStream's API can have JetStream
		// send an empty answer on an API subject, and JetStream then
		// carries that out as a request of its own (a purge of a whole
		// stream, say): no message may be removed from these streams.
		cfg.DenyDelete, cfg.DenyPurge = true, true
		changed = true
	}
	had := cfg.Replicas
	if cfg.Replicas < replicas {
		// Raised, never lowered: the streams of an external cluster may
		// be shared by several sites' servers, and one started with the
		// default would take the others' replicas away.
		cfg.Replicas = replicas
		changed = true
	}
	if cfg.Duplicates == 0 {
		cfg.Duplicates = DuplicateWindow
		changed = true
	}
	if changed {
		if _, err := js.UpdateStream(ctx, cfg); err != nil {
			if noPeers(err) && cfg.Replicas > had {
				// The site's subjects are added all the same, at the
				// replicas the stream has.
				cfg.Replicas = had
				if _, err2 := js.UpdateStream(ctx, cfg); err2 == nil {
					return fmt.Errorf("ensure stream %s: update: %w: %d asked, %d kept: %v: the cluster cannot place that many (fewer servers, or some down)", name, ErrFewerReplicas, replicas, had, err)
				}
			}
			if e := refusedConfig(err, subject, replicas); e != nil {
				return fmt.Errorf("ensure stream %s: update: %w", name, e)
			}
			return fmt.Errorf("ensure stream %s: update: %w: %v", name, ErrUnavailable, err)
		}
	}
	if !cfg.AllowDirect {
		// Only a speed-up for reading the stream back (jsdirect.go): a
		// stream this account may not update is read with the ordered
		// consumer instead, so a refusal here is not an error.
		cfg.AllowDirect = true
		_, _ = js.UpdateStream(ctx, cfg)
	}
	if lim := removingLimits(cfg); len(lim) > 0 {
		// An operator's stream is the operator's: said, not changed (a
		// walk's max_age of 20 s had serve refill the whole history every
		// 20 s, each time called a deleted stream).
		return fmt.Errorf("ensure stream %s: %w: %s: JetStream removes the site's messages by itself and the mirror cannot hold the ledger (serve refills what it finds removed, again and again); remove them with the nats tool (nats stream edit %s), or let serve make the stream (nats stream rm %s)",
			name, ErrStreamLimits, strings.Join(lim, ", "), name, name)
	}
	return nil
}

// removingLimits names what in stream configuration cfg removes
// messages without anyone asking: the limits serve never sets.
func removingLimits(cfg jetstream.StreamConfig) []string {
	var lim []string
	if cfg.MaxAge > 0 {
		lim = append(lim, "max_age "+cfg.MaxAge.String())
	}
	if cfg.MaxMsgs > 0 {
		lim = append(lim, fmt.Sprintf("max_msgs %d", cfg.MaxMsgs))
	}
	if cfg.MaxBytes > 0 {
		lim = append(lim, fmt.Sprintf("max_bytes %d", cfg.MaxBytes))
	}
	if cfg.MaxMsgsPerSubject > 0 {
		lim = append(lim, fmt.Sprintf("max_msgs_per_subject %d", cfg.MaxMsgsPerSubject))
	}
	if cfg.Retention != jetstream.LimitsPolicy {
		lim = append(lim, "retention "+cfg.Retention.String())
	}
	if cfg.Storage == jetstream.MemoryStorage {
		lim = append(lim, "memory storage (lost when its server stops)")
	}
	return lim
}

// nats-server's refusals of a stream's configuration that never go
// through however long one waits, unlike a cluster short of peers for a
// while: a stream of more than one replica asked of a server that is not
// a cluster (JSStreamReplicasNotSupportedErr), and subjects another
// stream takes (JSStreamSubjectOverlapErr).
const (
	jsReplicasNotSupported jetstream.ErrorCode = 10074
	jsSubjectOverlap       jetstream.ErrorCode = 10065
)

// jsNoPeers is nats-server's JSClusterNoPeersErrF: no placement for the
// replicas asked (a cluster of fewer servers, or some of them down).
const jsNoPeers jetstream.ErrorCode = 10005

// noPeers reports err is jsNoPeers.
func noPeers(err error) bool {
	var api *jetstream.APIError
	return errors.As(err, &api) && api.ErrorCode == jsNoPeers
}

// refusedConfig is, for such a refusal of a stream's configuration (the
// site's subject, the replicas asked), an error wrapping ErrInvalid that
// says what to do; nil for any other error.
func refusedConfig(err error, subject string, replicas int) error {
	var api *jetstream.APIError
	if !errors.As(err, &api) {
		return nil
	}
	switch api.ErrorCode {
	case jsReplicasNotSupported:
		return fmt.Errorf("%w: %v: the NATS server is not a cluster; serve with --replicas 1, or point --nats at a cluster of %d servers", ErrInvalid, err, replicas)
	case jsSubjectOverlap:
		return fmt.Errorf("%w: %v: another stream takes %s; remove that subject from it (nats stream info lists every stream's subjects), then the outbox goes on", ErrInvalid, err, subject)
	}
	return nil
}
