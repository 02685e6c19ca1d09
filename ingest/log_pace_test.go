package ingest_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/recledger/recledger/ingest"
	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/projections"
)

// lockedBuffer is a log sink for handlers on several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
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
	var logs lockedBuffer
	api, err := ingest.New(ingest.Options{Appender: store, Views: live, Events: store, Site: "test",
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
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
	if n := strings.Count(logs.String(), "requests refused"); n != 1 {
		t.Errorf("%d log lines for 20 refused requests, want 1:\n%s", n, logs.String())
	}
}
