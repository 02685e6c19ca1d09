package ingest_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/recledger/recledger/ingest"
	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/projections"
)

// refusals counts the log records that say requests were refused.
type refusals struct {
	slog.Handler
	n *atomic.Int64
}

func (h refusals) Enabled(context.Context, slog.Level) bool { return true }

func (h refusals) Handle(ctx context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, "requests refused") {
		h.n.Add(1)
	}
	return nil
}

// While the ledger takes no writes every request is refused alike; the log
// says so once, not once a request.
func TestRefusedRequestsAreLoggedOnce(t *testing.T) {
	store, err := ledger.Open(filepath.Join(t.TempDir(), "ledger.db"), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	live := projections.NewLive(projections.New())
	store.Subscribe(live.OnCommit)
	var logged atomic.Int64
	api, err := ingest.New(ingest.Options{Appender: store, Views: live, Events: store, Site: "test",
		Logger: slog.New(refusals{slog.DiscardHandler, &logged})})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.Handler())
	defer srv.Close()
	store.Close()
	for range 20 {
		resp, err := http.Post(srv.URL+"/recordingcontrols/rest/pause", "application/x-www-form-urlencoded", strings.NewReader("sender_id=jdoe"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("status %d, want 503", resp.StatusCode)
		}
	}
	if n := logged.Load(); n != 1 {
		t.Errorf("%d log lines for 20 refused requests, want 1", n)
	}
}

// A registry /metrics cannot gather from is refused: it would serve none
// of the API's metrics (the API fell back to the process-wide registry).
func TestNewRefusesARegistryItCannotGather(t *testing.T) {
	store, err := ledger.Open(filepath.Join(t.TempDir(), "ledger.db"), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	live := projections.NewLive(projections.New())
	reg := prometheus.WrapRegistererWith(prometheus.Labels{"site": "test"}, prometheus.NewRegistry())
	_, err = ingest.New(ingest.Options{Appender: store, Views: live, Events: store, Site: "test", Registry: reg})
	if !errors.Is(err, ledger.ErrInvalid) || !strings.Contains(err.Error(), "cannot be gathered from") {
		t.Errorf("ingest.New with a registry it cannot gather from: %v", err)
	}
}
