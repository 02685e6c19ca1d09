package uploadworker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// manifestsPrefix starts every manifest's subject:
// recledger.manifests.{site}.{day} (API.md §6).
const manifestsPrefix = "recledger.manifests."

// ErrAnotherSitesConsumer: the durable consumer a worker was given
// (--durable) filters other subjects than its site's manifests. Working
// with it would hand the worker other sites' manifests, which it must
// neither write nor acknowledge: it is refused at start.
var ErrAnotherSitesConsumer = errors.New("the durable consumer does not filter this site's manifests")

// ErrAnotherSitesManifest: the consumer delivered a manifest of another
// site (its filter changed after the worker bound it). The worker nak's
// it for that site's workers and stops.
var ErrAnotherSitesManifest = errors.New("the consumer delivered another site's manifest")

// siteDay splits a manifest's subject into its site and day; both are
// empty for a subject that is not a manifest's.
func siteDay(subject string) (site, day string) {
	rest, ok := strings.CutPrefix(subject, manifestsPrefix)
	if !ok {
		return "", ""
	}
	site, day, _ = strings.Cut(rest, ".")
	return site, day
}

// filters are the subjects a consumer filters, in either of the two
// fields JetStream keeps them in.
func filters(cfg jetstream.ConsumerConfig) []string {
	if cfg.FilterSubject != "" {
		return append([]string{cfg.FilterSubject}, cfg.FilterSubjects...)
	}
	return cfg.FilterSubjects
}

// describeFilters says what a consumer's filters take, for a log line
// or an error.
func describeFilters(cfg jetstream.ConsumerConfig) string {
	if f := filters(cfg); len(f) > 0 {
		return strings.Join(f, ",")
	}
	return "(none: every site's manifests)"
}

// checkFilter refuses a consumer whose filter is not exactly site's
// manifests subject: a --durable shared with another site's workers (or
// a consumer someone made with a wider filter) would hand this worker
// manifests it must not take. Its other settings are the consumer's
// own to keep (checkConsumer only warns of them); this one is not.
func checkFilter(cfg jetstream.ConsumerConfig, site string) error {
	if f := filters(cfg); len(f) == 1 && f[0] == Subject(site) {
		return nil
	}
	return fmt.Errorf("upload-worker: %w: consumer %q of stream %s filters %s, and site %s's workers take only %s: "+
		"choose another --durable for this site, or remove that consumer if no worker of its site uses it",
		ErrAnotherSitesConsumer, cfg.Durable, StreamName, describeFilters(cfg), site, Subject(site))
}

// create makes the worker's consumer, and never changes one that is
// there: another site's worker may have made it since the worker looked
// (CreateOrUpdateConsumer would then have set that site's consumer to
// this one's filter). bind looks again when it is there.
func (w *Worker) create(ctx context.Context) (jetstream.Consumer, error) {
	return w.js.CreateConsumer(ctx, StreamName, ConsumerConfig(w.cfg))
}

// anotherSitesManifest leaves a manifest of another site to that site's
// workers: nak'd (not terminated, not written), said at ERROR, and the
// worker stops, for its consumer no longer filters its site's manifests
// only and every delivery would be another site's to refuse. Stopping,
// rather than nak'ing on, makes the operator look; a nak'd manifest
// goes at once to another worker of the consumer.
func (w *Worker) anotherSitesManifest(msg jetstream.Msg, site string) error {
	w.log.Error("ANOTHER SITE'S MANIFEST: not taken, nak'd for that site's workers; this worker stops: its consumer's filter is not this site's (changed since the worker bound it?)",
		logKeySubject, msg.Subject(), logKeyManifestSite, site, logKeySite, w.cfg.Site, logKeyConsumer, w.cfg.Durable)
	if err := msg.Nak(); err != nil {
		w.log.Error("nak", logKeySubject, msg.Subject(), logKeyErr, err)
	}
	return fmt.Errorf("upload-worker: %w: consumer %q delivered %s (site %s) to a worker of site %s: "+
		"choose another --durable for this site, or give that consumer the filter %s again",
		ErrAnotherSitesManifest, w.cfg.Durable, msg.Subject(), site, w.cfg.Site, Subject(w.cfg.Site))
}

// siteScanTimeout bounds the listing of the other sites of the stream;
// a listing cut short names the sites found "e.g.".
const siteScanTimeout = 5 * time.Second

// otherSites lists the sites whose manifests the stream holds, from the
// last message of each subject, headers only (a day's manifest is up to
// 32 MiB). It reads them through an ephemeral consumer, the server
// removing it once idle: a reader of the embedded server may not read
// the stream's subjects, and a direct get by subject finds one site
// only. all is false when the list may miss some (an error, the time
// out).
func (w *Worker) otherSites(ctx context.Context) (sites []string, all bool) {
	ctx, cancel := context.WithTimeout(ctx, siteScanTimeout)
	defer cancel()
	cons, err := w.js.CreateConsumer(ctx, StreamName, jetstream.ConsumerConfig{
		DeliverPolicy: jetstream.DeliverLastPerSubjectPolicy, AckPolicy: jetstream.AckNonePolicy,
		FilterSubject: manifestsPrefix + "*.*", HeadersOnly: true, MemoryStorage: true,
		InactiveThreshold: 30 * time.Second,
	})
	if err != nil {
		return nil, false
	}
	seen := map[string]bool{}
	for ctx.Err() == nil {
		batch, err := cons.Fetch(256, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			break
		}
		for msg := range batch.Messages() {
			if site, _ := siteDay(msg.Subject()); site != "" && site != w.cfg.Site && !seen[site] {
				seen[site] = true
				sites = append(sites, site)
			}
			if md, err := msg.Metadata(); err == nil && md.NumPending == 0 {
				// The last: not waiting out the fetch for more.
				all = true
				break
			}
		}
		if all || (batch.Error() != nil && !errors.Is(batch.Error(), jetstream.ErrNoMessages)) {
			break
		}
	}
	slices.Sort(sites)
	return sites, all
}
