package ledger

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// A busy day's manifest is larger than NATS's default 1 MiB: the embedded
// server takes it, and upload workers get it.
func TestLargeManifestIsPublished(t *testing.T) {
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	_, js := jsConnect(t, srv)
	src := &memManifests{}
	src.seal("2026-11-23")
	src.body["2026-11-23"] = append(bytes.Repeat([]byte(" "), 3<<20), '{', '}') // 3 MiB
	src.seal("2026-11-24")
	o := NewManifestOutbox(js, jsTestSite, src, nil)
	stop := runOutbox(t, o)
	jsWait(t, 10*time.Second, "both manifests", func() bool { return len(manifestMsgs(t, js)) >= 2 && o.Lag() == 0 })
	stop()
	checkManifests(t, js, src, "2026-11-23", "2026-11-24")
}

// A server that takes less than a manifest or an event holds it, and
// everything after it, back, and says why instead of retrying blindly;
// /readyz shows the event's case as the outbox's problem.
func TestTooLargeForTheServerIsSaid(t *testing.T) {
	srv, err := StartEmbedded(EmbeddedOptions{StoreDir: t.TempDir(), Listen: "127.0.0.1:-1", Site: jsTestSite, maxPayload: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	_, js := jsConnect(t, srv)

	big := strings.Repeat("x", 80<<10)
	err = PublishManifest(t.Context(), js, jsTestSite, "2026-11-23", []byte(`{"pad":"`+big+`"}`))
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "max_payload") {
		t.Errorf("a manifest too large: %v, want ErrTooLarge naming max_payload", err)
	}

	s := jsStore(t)
	jsAppend(t, s, 3)
	if _, err := s.Append(context.Background(), Event{Type: TypeCommand, Data: Command{Command: "metadata", Params: []Param{{Key: "note", Value: big}}, Transport: TransportHTTP}}); err != nil {
		t.Fatal(err)
	}
	jsAppend(t, s, 2)
	o, _ := jsOutbox(t, s, js)
	jsWait(t, 10*time.Second, "the outbox to say it waits", func() bool { return errors.Is(o.Mismatch(), ErrTooLarge) })
	jsWait(t, 10*time.Second, "the lag of the large event and the two behind it", func() bool { return o.Lag() == 3 })
	if got := len(jsStreamMsgs(t, js)); got != 3 {
		t.Errorf("the stream holds %d events, want the 3 before the large one", got)
	}
}
