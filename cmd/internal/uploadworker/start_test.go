package uploadworker

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/recledger/recledger/ledger"
)

// A worker without a site, or without a destination directory, is refused
// at once: it could take no manifest of its own, or write none.
func TestAWorkerWithoutASiteOrADestIsRefused(t *testing.T) {
	for _, tc := range []struct{ name, site, dest string }{
		{name: "no site", dest: t.TempDir()},
		{name: "no dest", site: testSite},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			cfg := testConfig(tc.dest, nil)
			cfg.Site = tc.site
			// Nothing listens there: a worker that went on would wait for it.
			err := Run(ctx, "nats://"+freeAddr(t), cfg)
			if err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), "site and dest are required") {
				t.Fatalf("Run: %v (ctx %v); want refused at once", err, ctx.Err())
			}
		})
	}
}

// A worker with an upload token that starts before the embedded server
// has made the site's consumer (which no client may make) waits for it,
// and then takes the site's manifests: the refusal to make the consumer
// does not close its connection, as a role's refusal to read does.
func TestAWorkerWaitsForTheConsumerItsServerMakes(t *testing.T) {
	srv, js := startWithUploadToken(t)
	ctx := context.Background()
	if err := ledger.EnsureStreams(ctx, js, testSite, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Consumer(ctx, StreamName, ledger.UploadDurable(testSite)); err == nil {
		t.Fatal("the consumer is there before the test made it")
	}
	cfg := testConfig(t.TempDir(), nil)
	cfg.Token = uploadToken
	log := runAtLogged(t, srv.ClientURL(), cfg)
	// Said once the refused create has waited out its request timeout
	// (JetStream's API timeout, 5 s).
	waitFor(t, "the worker waiting for the consumer", 30*time.Second, func() bool {
		return strings.Contains(log.String(), "the server makes this consumer itself and has not yet")
	})
	// The server makes it.
	if _, err := js.CreateConsumer(ctx, StreamName, ledger.UploadConsumerConfig(testSite, ledger.UploadDurable(testSite), ledger.UploadAckWait)); err != nil {
		t.Fatal(err)
	}
	names := publishSiteManifest(t, js, testSite, "2026-12-02", 2)
	waitFor(t, "the uploads", 20*time.Second, uploaded(cfg.Dest, "2026-12-02", names))
}

// A worker whose token has a role that may not take manifests is refused
// at start, told which role it needs: no retry gets past the role.
func TestAWorkerWithAReadTokenIsToldItNeedsTheUploadRole(t *testing.T) {
	srv, js := startWithUploadToken(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := ledger.EnsureStreams(ctx, js, testSite, 1); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t.TempDir(), nil)
	cfg.Token = readToken
	err := Run(ctx, srv.ClientURL(), cfg)
	if err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), "the token's role may not take manifests: give one with the upload role") {
		t.Fatalf("Run with a read token: %v (ctx %v); want refused, naming the upload role", err, ctx.Err())
	}
}
