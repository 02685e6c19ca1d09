package ingest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/recledger/recledger/ingest"
	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/projections"
)

// fullDisk is the real store, refusing writes as a full disk makes it
// while full is set: its Append and ProbeWrite fail with ErrUnavailable,
// the store's own error for a failed commit. While own is set, the last
// write that failed was another appender's (the scheduler's), not the
// API's: WriteFailure reports it until a probe commits.
type fullDisk struct {
	*ledger.Store
	full atomic.Bool
	own  atomic.Bool
}

func (d *fullDisk) WriteFailure() error {
	if d.own.Load() {
		return fmt.Errorf("append: %w: commit: write /data/ledger.db: no space left on device", ledger.ErrUnavailable)
	}
	return d.Store.WriteFailure()
}

func (d *fullDisk) Append(ctx context.Context, events ...ledger.Event) ([]ledger.Envelope, error) {
	if d.full.Load() {
		return nil, fmt.Errorf("append: %w: commit: write /data/ledger.db: no space left on device", ledger.ErrUnavailable)
	}
	return d.Store.Append(ctx, events...)
}

func (d *fullDisk) ProbeWrite(ctx context.Context) error {
	if d.full.Load() {
		return fmt.Errorf("probe write: %w: no space left on device", ledger.ErrUnavailable)
	}
	d.own.Store(false)
	return d.Store.ProbeWrite(ctx)
}

var _ ingest.WriteFailer = (*ledger.Store)(nil)
var _ ingest.WriteProber = (*ledger.Store)(nil)

// newFullDiskAPI serves the API over a real store that refuses writes as
// a full disk does while disk.full is set, with a clock that stands at
// *now until a test moves it.
func newFullDiskAPI(t *testing.T) (disk *fullDisk, srv *httptest.Server, now *time.Time) {
	t.Helper()
	store, err := ledger.Open(filepath.Join(t.TempDir(), "ledger.db"), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	disk = &fullDisk{Store: store}
	live := projections.NewLive(projections.New())
	store.Subscribe(live.OnCommit)
	at := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	api, err := ingest.New(ingest.Options{Appender: disk, Views: live, Events: store, Site: "test", Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	srv = httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	return disk, srv, &at
}

// A server whose only writes are its own (a quiet night: pause
// expiries, the seal) is not ready while they fail, though no request
// failed (a walk's /readyz said ready for as long as no client wrote),
// and is ready again once a probe commits.
func TestReadyzSeesTheServersOwnFailedWrites(t *testing.T) {
	disk, srv, now := newFullDiskAPI(t)
	ready := func() (int, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	disk.full.Store(true)
	disk.own.Store(true)
	if status, body := ready(); status != 503 || !strings.Contains(body, "no space left") {
		t.Fatalf("the scheduler's write failed: %d %s", status, body)
	}
	disk.full.Store(false)
	*now = now.Add(time.Second)
	if status, body := ready(); status != 200 {
		t.Fatalf("once a probe commits: %d %s", status, body)
	}
}

// While the ledger takes no writes, a command gets 503 with a message
// that says what to do (no file path) and Retry-After; once the disk has
// room again, /readyz says ready by itself, before any command comes.
func TestReadyAgainAfterTheDiskHasRoom(t *testing.T) {
	disk, srv, now := newFullDiskAPI(t)
	store := disk.Store
	get := func(method, path string) (int, http.Header, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var body map[string]any
		_ = json.Unmarshal(b, &body)
		return resp.StatusCode, resp.Header, body
	}

	disk.full.Store(true)
	status, hdr, body := get("POST", "/recordingcontrols/rest/tag?sender_id=jdoe")
	msg, _ := body["message"].(string)
	if status != 503 || body["reason"] != "unavailable" || hdr.Get("Retry-After") != "1" ||
		strings.Contains(msg, "ledger.db") || !strings.Contains(msg, "nothing was recorded") {
		t.Fatalf("command on a full disk: %d %v Retry-After %q", status, body, hdr.Get("Retry-After"))
	}
	if status, _, body := get("GET", "/readyz"); status != 503 || !strings.Contains(fmt.Sprint(body["problem"]), "no space left") {
		t.Fatalf("readyz on a full disk: %d %v", status, body)
	}

	disk.full.Store(false)
	if status, _, _ := get("GET", "/readyz"); status != 503 {
		t.Fatalf("readyz probed again within a second of the last probe: %d", status)
	}
	*now = now.Add(time.Second)
	if status, _, body := get("GET", "/readyz"); status != 200 {
		t.Fatalf("readyz once the disk has room: %d %v", status, body)
	}
	// The probe that committed cleared the refusal: asked again within
	// the second, when no probe runs, /readyz still says ready.
	if status, _, body := get("GET", "/readyz"); status != 200 {
		t.Fatalf("readyz asked again after a probe committed: %d %v", status, body)
	}
	if head, _ := store.Head(); head != 0 {
		t.Errorf("the probe appended: head %d", head)
	}
	if status, _, _ := get("POST", "/recordingcontrols/rest/tag?sender_id=jdoe"); status == 503 {
		t.Fatal("a command after the disk has room: 503")
	}
}

var _ ingest.WriteProber = (*ledger.Store)(nil)
