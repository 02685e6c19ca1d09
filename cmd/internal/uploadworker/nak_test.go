package uploadworker

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A manifest with one contact that cannot be written is not acked for
// the others written: it is nak'd, naming that contact, and delivered
// again only after NakDelay, not at once (a failing disk is not hammered,
// nor the log filled, at the pace of the fetches).
func TestOneUnwritableContactNaksTheManifestForLater(t *testing.T) {
	_, js := startNATS(t)
	dest := t.TempDir()
	day := "2026-11-23"
	publishManifests(t, js, []string{day}, 3)
	m, _ := parsedManifest(t, day, 3)
	// A directory where the first contact's file goes: its rename fails.
	if err := os.MkdirAll(filepath.Join(dest, day, m.Files[0].Name, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(dest, nil)
	cfg.MaxTries = 1
	cfg.AckWait, cfg.NakDelay = time.Minute, time.Minute // within the test, neither delivers it again
	log, stop := runLogged(t, js, cfg)
	waitFor(t, "the nak", 20*time.Second, func() bool { return strings.Contains(log.String(), "MANIFEST NOT UPLOADED") })
	time.Sleep(10 * cfg.FetchMaxWait) // a nak without its delay would have it back meanwhile
	stop()
	out := log.String()
	if n := strings.Count(out, "MANIFEST NOT UPLOADED"); n != 1 || strings.Contains(out, "manifest uploaded") {
		t.Errorf("the manifest failed %d times, want once and not acked:\n%s", n, out)
	}
	if !strings.Contains(out, "failed=1 failed_contacts=["+m.Files[0].ContactID+"]") {
		t.Errorf("the failed contact is not named:\n%s", out)
	}
	if info := consumerInfo(t, js); info.AckFloor.Stream != 0 || info.NumAckPending != 1 {
		t.Errorf("ack floor %d, ack pending %d: want the manifest pending, not acked", info.AckFloor.Stream, info.NumAckPending)
	}
}
