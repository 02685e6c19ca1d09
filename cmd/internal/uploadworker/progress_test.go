package uploadworker

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/ledger/ledgertest"
)

// A manifest that takes longer than the consumer's AckWait to write is
// kept by its worker (InProgress every AckWait/4), not delivered again to
// another: two workers share the consumer, and each file is handled once
// and the manifest delivered once.
func TestSlowManifestIsNotRedelivered(t *testing.T) {
	_, js := startNATS(t)
	cfg := testConfig(t.TempDir(), nil)
	cfg.AckWait = time.Second
	slowManifestOnce(t, js, cfg)
}

// So with a consumer made with a shorter AckWait than the workers' own
// (the embedded server's, or another worker's): the consumer's is the one
// that redelivers, and the workers work with it. They used to send
// InProgress every --ack-wait/4 of their own, and a slow manifest went
// to a second worker while the first was still writing it.
func TestSlowManifestIsNotRedeliveredUnderTheConsumersAckWait(t *testing.T) {
	_, js := startNATS(t)
	if _, err := js.CreateConsumer(context.Background(), StreamName, ledger.UploadConsumerConfig(testSite, ledger.UploadDurable(testSite), time.Second)); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t.TempDir(), nil)
	cfg.AckWait = 8 * time.Second // InProgress every 2 s at this pace
	slowManifestOnce(t, js, cfg)
}

// slowManifestOnce runs two workers with cfg, each file taking 50 ms, on
// a manifest of 55 files (some 3 s: longer than the tests' consumers'
// AckWait of 1 s), and checks that it was delivered once and each file
// handled once.
func slowManifestOnce(t *testing.T, js jetstream.JetStream, cfg Config) {
	t.Helper()
	dest := cfg.Dest
	var mu sync.Mutex
	handled := map[string]int{}
	cfg.OnFile = func(path string) {
		mu.Lock()
		handled[path]++
		mu.Unlock()
		time.Sleep(50 * time.Millisecond)
	}
	logA, stopA := runLogged(t, js, cfg)
	logB, stopB := runLogged(t, js, cfg)
	names := publishManifests(t, js, []string{"2026-11-23"}, 50)["2026-11-23"]
	waitFor(t, "the manifest uploaded", 30*time.Second, func() bool {
		return strings.Contains(logA.String()+logB.String(), "manifest uploaded")
	})
	stopA()
	stopB()

	mu.Lock()
	defer mu.Unlock()
	var notOnce []string
	for _, n := range names {
		if c := handled[filepath.Join(dest, "2026-11-23", n)]; c != 1 {
			notOnce = append(notOnce, fmt.Sprintf("%s: %d", n, c))
		}
	}
	if len(notOnce) > 0 {
		t.Errorf("%d of %d files not handled once (file: times): %v", len(notOnce), len(names), notOnce)
	}
	info := consumerInfo(t, js)
	if info.Delivered.Consumer != 1 || info.NumRedelivered != 0 || info.AckFloor.Stream != 1 {
		t.Errorf("delivered %d times (redelivered %d, ack floor %d), want once and acked",
			info.Delivered.Consumer, info.NumRedelivered, info.AckFloor.Stream)
	}
	if out := logA.String() + logB.String(); t.Failed() || strings.Contains(out, "delivery=2") {
		t.Errorf("the workers' logs:\n%s", out)
	}
}

// The delay between two tries of a file doubles up to BackoffMax, and
// stays there.
func TestRetryBackoffIsCappedAtBackoffMax(t *testing.T) {
	_, js := startNATS(t)
	dest := t.TempDir()
	m, _ := parsedManifest(t, "2026-11-23", 1)
	// A directory where the contact's file goes: its rename fails every time.
	if err := os.MkdirAll(filepath.Join(dest, m.Day, m.Files[0].Name, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	log := &ledgertest.Buffer{}
	cfg := testConfig(dest, slog.New(slog.NewTextHandler(log, nil)))
	cfg.MaxTries, cfg.BackoffBase, cfg.BackoffMax = 6, time.Millisecond, 4*time.Millisecond
	if _, failed := New(js, cfg).writeManifest(context.Background(), m, func() {}); !slices.Equal(failed, []string{m.Files[0].ContactID}) {
		t.Fatalf("failed %v, want %s", failed, m.Files[0].ContactID)
	}
	var delays []string
	for _, match := range regexp.MustCompile(`msg="write failed; retrying".* retry_in=(\S+)`).FindAllStringSubmatch(log.String(), -1) {
		delays = append(delays, match[1])
	}
	if want := []string{"1ms", "2ms", "4ms", "4ms", "4ms"}; !slices.Equal(delays, want) {
		t.Errorf("retry delays %v, want %v; the log:\n%s", delays, want, log.String())
	}
}

// consumerInfo is the site's upload consumer as the server has it now.
func consumerInfo(t *testing.T, js jetstream.JetStream) *jetstream.ConsumerInfo {
	t.Helper()
	cons, err := js.Consumer(context.Background(), StreamName, ledger.UploadDurable(testSite))
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// A file retried for longer than the ack wait keeps its manifest in
// progress between the tries: the consumer would otherwise deliver it to
// another worker while this one still retries it.
func TestAFileRetriedLongKeepsTheManifestInProgress(t *testing.T) {
	_, js := startNATS(t)
	dest := t.TempDir()
	m, _ := parsedManifest(t, "2026-11-23", 1)
	// A directory where the contact's file goes: its rename fails every time.
	if err := os.MkdirAll(filepath.Join(dest, m.Day, m.Files[0].Name, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(dest, nil)
	// Five waits of 20 ms between the tries, each longer than a quarter
	// of the ack wait: each is followed by an InProgress.
	cfg.AckWait, cfg.MaxTries, cfg.BackoffBase, cfg.BackoffMax = 40*time.Millisecond, 6, 20*time.Millisecond, 20*time.Millisecond
	progress := 0
	if _, failed := New(js, cfg).writeManifest(context.Background(), m, func() { progress++ }); len(failed) != 1 {
		t.Fatalf("failed %v, want %s", failed, m.Files[0].ContactID)
	}
	if progress < 5 {
		t.Errorf("%d InProgress while the file was retried for 100 ms, want one after each of the 5 waits", progress)
	}
}
