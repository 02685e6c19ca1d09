package uploadworker

import (
	"strings"
	"testing"
	"time"
)

// A worker with no manifest to take says nothing of it: a fetch that
// found none is not a failure to warn of (nor to wait after), and an
// idle worker's log stays quiet however long it waits.
func TestAnIdleWorkerWarnsOfNothing(t *testing.T) {
	_, js := startNATS(t)
	cfg := testConfig(t.TempDir(), nil)
	log, stop := runLogged(t, js, cfg)
	waitFor(t, "the worker bound", 10*time.Second, func() bool { return strings.Contains(log.String(), "upload worker bound") })
	time.Sleep(4 * cfg.FetchMaxWait) // some fetches that find nothing
	stop()
	if out := log.String(); strings.Contains(out, "level=WARN") || strings.Contains(out, "level=ERROR") {
		t.Errorf("an idle worker's log:\n%s", out)
	}
}
