package ledger

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// A busy day's manifest is larger than NATS's default 1 MiB: the embedded
// server takes it, and upload workers get it.
func TestLargeManifestIsPublished(t *testing.T) {
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	_, js := jsConnect(t, srv)
	src := sealedManifests("2026-11-23")
	src.body["2026-11-23"] = append(bytes.Repeat([]byte(" "), 3<<20), '{', '}') // 3 MiB
	src.seal("2026-11-24")
	publishTwoDays(t, js, src)
}

// publishTwoDays runs a manifest outbox until src's two sealed days,
// 2026-11-23 and 2026-11-24, are in the stream, and checks them.
func publishTwoDays(t *testing.T, js jetstream.JetStream, src *memManifests) {
	t.Helper()
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
	js := smallPayloadJS(t)

	err := publishManifest(t.Context(), js, jsTestSite, "2026-11-23", incompressible(200<<10), "")
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "max_payload") || !strings.Contains(err.Error(), "compressed") {
		t.Errorf("a manifest too large: %v, want ErrTooLarge naming max_payload and the compressed size", err)
	}

	s := jsStore(t)
	jsAppend(t, s, 3)
	if _, err := s.Append(context.Background(), largeNote(80<<10)); err != nil {
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

// incompressible is a manifest-shaped body of about n bytes that gzip
// cannot shrink below the servers' small max_payload of these tests.
func incompressible(n int) []byte {
	b := make([]byte, n*3/4)
	_, _ = rand.NewChaCha8([32]byte{1}).Read(b)
	return []byte(`{"pad":"` + base64.StdEncoding.EncodeToString(b) + `"}`)
}

// A manifest larger than the server takes (a busy day's: tens of MB) is
// published compressed, with the header upload workers read it by; the
// next day's, small, as it is. Publishing either again is a no-op; a
// different manifest for the day is a conflict, compressed or not.
func TestLargerManifestIsCompressed(t *testing.T) {
	js := smallPayloadJS(t)
	src := sealedManifests("2026-11-23")
	src.body["2026-11-23"] = busyDay()
	src.seal("2026-11-24")
	publishTwoDays(t, js, src)
	msgs := manifestMsgs(t, js)
	if enc := msgs[0].Header.Get(ManifestEncodingHeader); enc != ManifestGzip || len(msgs[0].Data) >= 64<<10 {
		t.Errorf("the large manifest: encoding %q, %d bytes; want gzip, under 64 KiB", enc, len(msgs[0].Data))
	}
	if enc := msgs[1].Header.Get(ManifestEncodingHeader); enc != "" {
		t.Errorf("the small manifest: encoding %q, want none", enc)
	}
	for _, d := range []string{"2026-11-23", "2026-11-24"} {
		if err := publishManifest(t.Context(), js, jsTestSite, d, src.body[d], ""); err != nil {
			t.Errorf("%s published again: %v, want a no-op", d, err)
		}
		other := bytes.Replace(src.body[d], []byte(`"day"`), []byte(`"Day"`), 1)
		if err := publishManifest(t.Context(), js, jsTestSite, d, other, ""); !errors.Is(err, ErrConflict) {
			t.Errorf("another manifest for %s: %v, want ErrConflict", d, err)
		}
	}
	if n := len(manifestMsgs(t, js)); n != 2 {
		t.Errorf("the stream holds %d manifests, want 2", n)
	}
}

// busyDay is a manifest of 2,000 contacts, about 300 KB, that gzip
// shrinks below the servers' small max_payload of these tests.
func busyDay() []byte {
	var day bytes.Buffer
	day.WriteString(`{"format":"recledger.manifest/1","day":"2026-11-23","contacts":[`)
	for i := range 2000 {
		fmt.Fprintf(&day, `{"contact_id":"01KB%020d","call_id":"c-%d","user_id":"agent%d","metadata":{"account":"%d"}},`, i, i, i%40, 100000+i*7)
	}
	day.WriteString(`{}]}` + "\n")
	return day.Bytes()
}

// A manifest larger than the manifests stream's max_msg_size (an
// operator's setting on an external cluster) is published compressed,
// as one larger than the server's max_payload is.
func TestManifestLargerThanTheStreamStoresIsCompressed(t *testing.T) {
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	_, js := jsConnect(t, srv)
	streamMaxMsgSize(t, js, ManifestsStream, 64<<10)
	src := sealedManifests("2026-11-23")
	src.body["2026-11-23"] = busyDay()
	src.seal("2026-11-24")
	publishTwoDays(t, js, src)
	if enc := manifestMsgs(t, js)[0].Header.Get(ManifestEncodingHeader); enc != ManifestGzip {
		t.Errorf("the large manifest: encoding %q, want gzip", enc)
	}
}

// A manifest that does not fit the manifests stream's max_msg_size even
// compressed is the manifests' problem, naming that setting, and holds
// the later days back; it is not read again while the setting stays, and
// is published once it is raised.
func TestManifestWaitsForTheStreamsMaxMsgSize(t *testing.T) {
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	_, js := jsConnect(t, srv)
	streamMaxMsgSize(t, js, ManifestsStream, 16<<10)
	src := sealedManifests("2026-11-23")
	src.body["2026-11-23"] = incompressible(64 << 10)
	src.seal("2026-11-24")
	o := NewManifestOutbox(js, jsTestSite, src, nil)
	o.every = 10 * time.Millisecond
	stop := runOutbox(t, o)
	defer stop()
	jsWait(t, 10*time.Second, "the problem", func() bool { return o.Problem() != nil })
	time.Sleep(300 * time.Millisecond) // some 30 looks
	if p := o.Problem(); !errors.Is(p, ErrTooLarge) || !strings.Contains(p.Error(), "max_msg_size") {
		t.Errorf("problem: %v, want ErrTooLarge naming max_msg_size", p)
	}
	if reads := src.readCount(); reads > 2 {
		t.Errorf("the manifest too large was read %d times in 300 ms", reads)
	}
	streamMaxMsgSize(t, js, ManifestsStream, 1<<20)
	jsWait(t, 10*time.Second, "both manifests", func() bool { return len(manifestMsgs(t, js)) >= 2 && o.Lag() == 0 })
	checkManifests(t, js, src, "2026-11-23", "2026-11-24")
	if p := o.Problem(); p != nil {
		t.Errorf("problem %v once the stream stores the manifest", p)
	}
}

// A manifest that does not fit even compressed is /readyz's manifest
// problem at once (no retry can mend it), holds the later days back, and
// is not read, compressed and refused again at every look while the
// server takes no more.
func TestManifestTooLargeIsAProblem(t *testing.T) {
	js := smallPayloadJS(t)
	src := sealedManifests("2026-11-23")
	src.body["2026-11-23"] = incompressible(200 << 10)
	src.seal("2026-11-24")
	o := NewManifestOutbox(js, jsTestSite, src, nil)
	o.every = 10 * time.Millisecond
	stop := runOutbox(t, o)
	jsWait(t, 10*time.Second, "the problem", func() bool { return o.Problem() != nil })
	time.Sleep(300 * time.Millisecond) // some 30 looks
	stop()
	if p := o.Problem(); !errors.Is(p, ErrTooLarge) || !strings.Contains(p.Error(), "2 sealed days wait behind 2026-11-23") {
		t.Errorf("problem: %v", p)
	}
	if src.reads > 2 {
		t.Errorf("the manifest too large was read %d times in 300 ms", src.reads)
	}
	if n := len(manifestMsgs(t, js)); n != 0 {
		t.Errorf("%d manifests published past the one too large", n)
	}
}

// smallPayloadJS is JetStream on an embedded server that takes messages of
// at most 64 KiB.
func smallPayloadJS(t *testing.T) jetstream.JetStream {
	t.Helper()
	srv, err := StartEmbedded(EmbeddedOptions{StoreDir: t.TempDir(), Listen: "127.0.0.1:-1", Site: jsTestSite, maxPayload: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	_, js := jsConnect(t, srv)
	return js
}
