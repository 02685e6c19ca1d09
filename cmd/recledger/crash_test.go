package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/ledger/ledgertest"
)

// serveCrashEnv names the data dir TestServeCrashChild serves; unset, the
// child test is skipped.
const serveCrashEnv = "RECLEDGER_SERVE_CRASH_DATA"

// crashCheckpointEvents and crashCheckpointEvery are how often the
// killed server saves a checkpoint: often, so that kills also fall
// during saves, and restarts load a checkpoint and fold a tail.
const (
	crashCheckpointEvents = 150
	crashCheckpointEvery  = 50 * time.Millisecond
)

// TestServeCrashChild is the server TestServeKilledKeepsEveryAnsweredRequest
// kills: it serves the data dir and prints "serving ADDR NATSURL REPLAYED"
// (the events folded at start, after the checkpoint loaded), then waits.
func TestServeCrashChild(t *testing.T) {
	data := os.Getenv(serveCrashEnv)
	if data == "" {
		t.Skip("run by TestServeKilledKeepsEveryAnsweredRequest")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // in case nobody kills us
	defer cancel()
	cfg := testServeConfig(data)
	cfg.CheckpointEvents, cfg.CheckpointEvery = crashCheckpointEvents, crashCheckpointEvery
	var logs ledgertest.Buffer
	cfg.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	srv, err := StartServer(ctx, cfg)
	if err != nil {
		fmt.Println("serve:", err)
		os.Exit(2)
	}
	replayed := -1
	for line := range strings.Lines(logs.String()) {
		var l struct {
			Msg      string `json:"msg"`
			Replayed int    `json:"replayed"`
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "projections ready" {
			replayed = l.Replayed
		}
	}
	fmt.Println("serving", srv.Addr(), srv.NATSURL(), replayed)
	_ = srv.Wait()
}

// TestServeKilledKeepsEveryAnsweredRequest kills the whole server (HTTP,
// ledger, checkpoints, embedded JetStream) with SIGKILL at a random
// moment under traffic, several times, and restarts it on the same data
// dir: every request answered with a seq is in the ledger at that seq,
// the chain verifies, the state the restarted server serves (from its
// checkpoint and the tail) has the digest of a replay of the mirror, and
// the mirror holds every event.
func TestServeKilledKeepsEveryAnsweredRequest(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	data := t.TempDir()
	answered := map[uint64]string{} // seq → what the answer said was stored
	deadline := time.Now().Add(8 * time.Second)
	fromCheckpoint := false // a restart folded only the events after a checkpoint
	for round := 0; round < 4 && (round < 2 || time.Now().Before(deadline)); round++ {
		child := startCrashChild(t, data)
		if round == 0 {
			configureCrashDesks(t, child.base)
		} else {
			head := checkAnswered(t, child.base, answered, round)
			fromCheckpoint = fromCheckpoint || child.replayed < head
			t.Logf("restart %d folded %d of %d events", round, child.replayed, head)
		}
		want := crashCheckpointEvents + rand.IntN(300)
		n := crashTraffic(t, child, round, want, answered)
		t.Logf("round %d: killed after %d answers (%d read)", round, want, n)
	}
	if n := countSignalsOf(answered, "3400"); n == 0 {
		t.Errorf("no call signal on NATS was answered") // the first agent's
	}
	child := startCrashChild(t, data)
	base := child.base
	if head := checkAnswered(t, base, answered, -1); !fromCheckpoint && child.replayed >= head {
		t.Errorf("no restart loaded a checkpoint (the last folded %d of %d events): the kills were not tested against one", child.replayed, head)
	}

	// The restarted server's state is the events' state, and its mirror
	// is whole once the outbox has caught up.
	waitOutboxCaughtUp(t, base)
	var live struct {
		Seq    uint64 `json:"seq"`
		Digest string `json:"digest"`
	}
	getJSON(t, base+"/v1/digest", &live)
	out, err := runCmd(t, &ReplayCommand{Stderr: os.Stderr}, "--data", data, "--digest")
	if err != nil || strings.TrimSpace(out) != fmt.Sprintf("%d %s", live.Seq, live.Digest) {
		t.Errorf("replay of the mirror after the kills: %q %v; the server serves %d %s", out, err, live.Seq, live.Digest)
	}
	out, err = runCmd(t, &VerifyCommand{Stderr: os.Stderr}, "--data", data)
	if err != nil || !strings.Contains(out, fmt.Sprintf("jetstream  ok: %d events", live.Seq)) {
		t.Errorf("verify after the kills: %v\n%s", err, out)
	}
}

// crashChild is a running TestServeCrashChild.
type crashChild struct {
	cmd      *exec.Cmd
	base     string // its HTTP API
	nats     string // its embedded NATS server
	replayed uint64 // the events it folded at start
}

// startCrashChild starts TestServeCrashChild on data.
func startCrashChild(t *testing.T, data string) crashChild {
	t.Helper()
	c := exec.Command(os.Args[0], "-test.run=^TestServeCrashChild$", "-test.count=1")
	c.Env = append(os.Environ(), serveCrashEnv+"="+data)
	c.Stderr = os.Stderr
	out, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	// Whatever the test's end, the child does not outlive it (a killed
	// child has been waited for already; Wait then only says so).
	t.Cleanup(func() { _ = c.Process.Kill(); _ = c.Wait() })
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 4 && f[0] == "serving" {
			replayed, err := strconv.ParseUint(f[3], 10, 64)
			if err != nil {
				t.Fatalf("child: %s: the start's log did not say what it folded", sc.Text())
			}
			go func() { // the rest of the child's output, until it ends
				for sc.Scan() {
				}
			}()
			return crashChild{cmd: c, base: "http://" + f[1], nats: f[2], replayed: replayed}
		}
		t.Logf("child: %s", sc.Text())
	}
	t.Fatalf("the server did not start on the data dir it was killed on")
	return crashChild{}
}

// crashDesks is how many agents send requests at once.
const crashDesks = 6

const ctiPath = "/v1/calls/events"

func configureCrashDesks(t *testing.T, base string) {
	t.Helper()
	put := func(path, body string) {
		req, _ := http.NewRequest(http.MethodPut, base+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("PUT %s: %v %v", path, resp, err)
		}
		resp.Body.Close()
	}
	put("/v1/config/metadata/account", `{"type":"number"}`)
	put("/v1/config/teams/sales", `{"archive":true,"retention_days":90,"tagged_retention_days":365}`)
	for g := range crashDesks {
		put(fmt.Sprintf("/v1/config/users/u%d", g),
			fmt.Sprintf(`{"name":"Agent %d","team":"sales","recording":"desktop","extension":"34%02d","peripheral_id":"5001"}`, g, g))
	}
}

// crashTraffic has crashDesks agents take calls with pauses, resumes and
// metadata (the first agent's call signals on NATS, the others' over
// HTTP), SIGKILLs the server after want answers, and adds every answered
// request to answered. It returns the answers read.
func crashTraffic(t *testing.T, child crashChild, round, want int, answered map[uint64]string) int {
	t.Helper()
	base := child.base
	client := &http.Client{Timeout: 10 * time.Second}
	nc, err := nats.Connect(child.nats, nats.MaxReconnects(0))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	type answer struct {
		seq  uint64
		what string
	}
	answers := make(chan answer)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range crashDesks {
		wg.Go(func() {
			user, ext := fmt.Sprintf("u%d", g), fmt.Sprintf("34%02d", g)
			send := func(path, ctype, body string) bool {
				var raw []byte
				if path == ctiPath && g == 0 {
					m, err := nc.Request(ledger.CTISubject(DefaultServeConfig().Site), []byte(body), 5*time.Second)
					if err != nil {
						return false // killed: not answered
					}
					raw = m.Data
				} else {
					resp, err := client.Post(base+path, ctype, strings.NewReader(body))
					if err != nil {
						return false // killed: not answered
					}
					raw, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					if err != nil {
						return false // cut off by the kill
					}
				}
				var a struct {
					EventID string `json:"event_id"`
					Seq     uint64 `json:"seq"`
					LastSeq uint64 `json:"last_seq"`
				}
				if err := json.Unmarshal(raw, &a); err != nil {
					return false // cut off by the kill
				}
				switch {
				case a.EventID != "" && a.Seq > 0:
					select {
					case answers <- answer{a.Seq, a.EventID}:
					case <-stop:
						return false
					}
				case a.LastSeq > 0:
					select {
					case answers <- answer{a.LastSeq, "signal " + body}:
					case <-stop:
						return false
					}
				default:
					t.Errorf("%s answered without a seq: %s", path, raw)
					return false
				}
				return true
			}
			signal := func(call, typ string) bool {
				return send(ctiPath, "application/json",
					fmt.Sprintf(`{"call_id":%q,"extension":%q,"type":%q,"direction":"inbound"}`, call, ext, typ))
			}
			command := func(name, params string) bool {
				return send("/recordingcontrols/rest/"+name, "application/x-www-form-urlencoded",
					"sender_id="+user+"&peripheral_id=5001"+params)
			}
			for i := 0; ; i++ {
				call := fmt.Sprintf("c-%d-%d-%d", round, g, i)
				if !signal(call, "ringing") || !signal(call, "answered") ||
					!command("metadata", "&account="+strconv.Itoa(i)) ||
					!command("pause", "") || !command("resume", "") ||
					(i%3 == 0 && !command("tag", "")) || !signal(call, "ended") {
					return
				}
			}
		})
	}
	go func() { wg.Wait(); close(answers) }()
	n := 0
	for a := range answers {
		if old, ok := answered[a.seq]; ok && old != a.what {
			t.Errorf("seq %d answered twice: %s and %s", a.seq, old, a.what)
		}
		answered[a.seq] = a.what
		if n++; n == want {
			if err := child.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			close(stop)
		}
	}
	if err := child.cmd.Wait(); n < want || err == nil {
		t.Fatalf("round %d: the server stopped on its own after %d of %d answers: %v", round, n, want, err)
	}
	return n
}

// checkAnswered reads every event of the server at base and checks that
// each answered request is stored at the seq its answer gave, and that the
// chain verifies. It returns the events read.
func checkAnswered(t *testing.T, base string, answered map[uint64]string, round int) uint64 {
	t.Helper()
	stored := map[uint64]string{}
	for after := uint64(0); ; {
		var page struct {
			Events []struct {
				Seq  uint64          `json:"seq"`
				ID   string          `json:"id"`
				Type string          `json:"type"`
				Data json.RawMessage `json:"data"`
			} `json:"events"`
			Next uint64 `json:"next_after_seq"`
		}
		getJSON(t, base+"/v1/events?limit=10000&after_seq="+url.QueryEscape(strconv.FormatUint(after, 10)), &page)
		for _, e := range page.Events {
			stored[e.Seq] = e.ID
			if e.Type == "call_signal" {
				var d struct {
					CallID    string `json:"call_id"`
					Extension string `json:"extension"`
					Type      string `json:"type"`
				}
				_ = json.Unmarshal(e.Data, &d)
				stored[e.Seq] = fmt.Sprintf(`signal {"call_id":%q,"extension":%q,"type":%q,"direction":"inbound"}`, d.CallID, d.Extension, d.Type)
			}
		}
		if len(page.Events) == 0 || page.Next <= after {
			break
		}
		after = page.Next
	}
	for seq, what := range answered {
		if stored[seq] != what {
			t.Fatalf("after kill %d: answered seq %d (%s) is stored as %q", round, seq, what, stored[seq])
		}
	}
	var v struct {
		OK     bool   `json:"ok"`
		Events uint64 `json:"events"`
	}
	getJSON(t, base+"/v1/verify", &v)
	if !v.OK || v.Events != uint64(len(stored)) {
		t.Fatalf("after kill %d: verify %+v, %d events read", round, v, len(stored))
	}
	return v.Events
}

// waitOutboxCaughtUp waits until the server at base has its mirror
// confirmed up to its ledger.
func waitOutboxCaughtUp(t *testing.T, base string) {
	t.Helper()
	var ready struct {
		Ready     bool   `json:"ready"`
		OutboxLag uint64 `json:"outbox_lag"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		// Not ready (503) while the mirror lags is an answer too.
		if resp, err := http.Get(base + "/readyz"); err == nil {
			err = json.NewDecoder(resp.Body).Decode(&ready)
			resp.Body.Close()
			if err == nil && ready.Ready && ready.OutboxLag == 0 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the mirror did not catch up after the kills: %+v", ready)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// countSignalsOf counts the answered call signals of extension ext.
func countSignalsOf(answered map[uint64]string, ext string) int {
	n := 0
	for _, what := range answered {
		if strings.HasPrefix(what, "signal ") && strings.Contains(what, fmt.Sprintf(`"extension":%q`, ext)) {
			n++
		}
	}
	return n
}
