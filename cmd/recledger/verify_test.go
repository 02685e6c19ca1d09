package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/recledger/recledger/ledger/ledgertest"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/projections"
	"github.com/recledger/recledger/replay"
	"github.com/recledger/recledger/replay/replaytest"
)

// A ledger whose stored bytes were altered fails verify, which names the
// first bad seq and exits non-zero.
func TestVerifyCommandNamesFirstBadEvent(t *testing.T) {
	d := writeOfflineDay(t, false, 0)
	out, err := runCmd(t, &VerifyCommand{}, "--data", d.dir, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var res verifyResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || !res.OK || res.Chain.Events != d.seq || res.JetStream != nil ||
		res.Checkpoint == nil || !res.Checkpoint.None {
		t.Fatalf("clean ledger without a checkpoint: %v %s", err, out)
	}

	tamperPause(t, d.dir, 7)
	out, err = runCmd(t, &VerifyCommand{}, "--data", d.dir)
	if !errors.Is(err, ledger.ErrChainBroken) || !strings.Contains(out, "chain      FAILED at seq 7") {
		t.Fatalf("tampered ledger: %v\n%s", err, out)
	}
}

// A ledger changed in the file beside a whole mirror: every check still
// prints its line (the chain names the seq), the mirror's line says the
// ledger's event cannot be read, not that the mirror differs, and verify
// says how to rebuild the ledger from it. (It used to stop at the first
// unreadable event with an error naming JetStream, and print nothing.)
func TestVerifyNamesTheLedgerDamagedBesideAWholeMirror(t *testing.T) {
	d := writeOfflineDay(t, true, 0)
	tamperPause(t, d.dir, 7)
	out, err := runCmd(t, &VerifyCommand{}, "--data", d.dir, "--nats", d.natsURL, "--site", replaytest.Site, "--json")
	var res verifyResult
	if jerr := json.Unmarshal([]byte(out), &res); jerr != nil || !errors.Is(err, ledger.ErrChainBroken) {
		t.Fatalf("verify --json: %v %v\n%s", err, jerr, out)
	}
	js := res.JetStream
	if res.OK || res.Chain.FirstBad != 7 || js == nil || js.FirstBad != 7 || !js.LedgerDamaged || !js.Restorable ||
		js.Events != 6 || !strings.Contains(res.Rebuild, "restore --from-jetstream --nats") {
		t.Fatalf("verify --json of a changed ledger beside a whole mirror: %s", out)
	}
	out, _ = runCmd(t, &VerifyCommand{}, "--data", d.dir, "--nats", d.natsURL, "--site", replaytest.Site)
	for _, want := range []string{
		"chain      FAILED at seq 7",
		"jetstream  FAILED at seq 7: the ledger's event at seq 7 cannot be read (",
		fmt.Sprintf("the mirror holds every event to seq %d, whole and chained", d.seq),
		"rebuild    the ledger can be rebuilt from the mirror: move " + filepath.Join(d.dir, LedgerFile) + " away",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("verify of a changed ledger beside a whole mirror lacks %q:\n%s", want, out)
		}
	}
}

// tamperPause turns event seq of dir's ledger, a pause, into a tag in the
// file (the store is closed), as someone editing the file would.
func tamperPause(t *testing.T, dir string, seq uint64) {
	t.Helper()
	editLedgerFile(t, dir, func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("events"))
		if b == nil {
			return errors.New("no events bucket")
		}
		var k [8]byte
		binary.BigEndian.PutUint64(k[:], seq)
		v := append([]byte(nil), b.Get(k[:])...)
		i := strings.Index(string(v), `"pause`)
		if i < 0 {
			return fmt.Errorf("event %d is not the expected pause", seq)
		}
		copy(v[i+1:], "tag  ")
		return b.Put(k[:], v)
	})
}

// editLedgerFile changes the ledger file of a stopped data dir, as
// someone editing the file (or damage that leaves it readable) would.
func editLedgerFile(t *testing.T, dir string, edit func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, LedgerFile), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(edit)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
}

// replay rebuilds from seq 1, so an event changed before the newest
// checkpoint fails it, as verify does; --from-checkpoint, which does not
// read that far back, says where it started.
func TestReplayFindsAChangedEventBeforeItsCheckpoint(t *testing.T) {
	d := writeOfflineDay(t, false, 30)
	tamperPause(t, d.dir, 7)
	if out, err := runCmd(t, &ReplayCommand{}, "--data", d.dir, "--digest"); !errors.Is(err, ledger.ErrCorrupt) || !strings.Contains(err.Error(), "after seq 6: scan: decode seq 7") || !strings.Contains(err.Error(), "`recledger verify` names the first") {
		t.Fatalf("replay --digest of a changed ledger: %v\n%s", err, out)
	}
	out, err := runCmd(t, &ReplayCommand{}, "--data", d.dir, "--from-checkpoint")
	if err != nil || !strings.Contains(out, "from checkpoint at seq 30, the state up to it the checkpoint's") {
		t.Fatalf("replay --from-checkpoint: %v\n%s", err, out)
	}
}

// A server started on a ledger changed before its checkpoint (so that the
// start's replay does not read the change) finds it in the background and
// shows it on /readyz, still ready.
func TestServeFindsAChangedEventBeforeItsCheckpoint(t *testing.T) {
	d := writeOfflineDay(t, false, 30)
	tamperPause(t, d.dir, 7)
	cfg := testServeConfig(d.dir)
	cfg.Site = replaytest.Site
	srv, err := StartServer(t.Context(), cfg)
	if err != nil {
		t.Fatalf("serve on a ledger changed before its checkpoint: %v", err)
	}
	defer func() { srv.Stop(); _ = srv.Wait() }()
	var ready struct {
		Ready        bool   `json:"ready"`
		ChainProblem string `json:"chain_problem"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for ready.ChainProblem == "" && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		getJSON(t, "http://"+srv.Addr()+"/readyz", &ready)
	}
	if !ready.Ready || !strings.Contains(ready.ChainProblem, "seq 7") {
		t.Errorf("readyz: %+v, want ready with the broken chain at seq 7", ready)
	}
	// A replay beside it reads the mirror, and says that the server's
	// own file is broken.
	stderr, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	_, err = runCmd(t, &ReplayCommand{Stderr: stderr, MirrorWait: 200 * time.Millisecond}, "--data", d.dir, "--digest")
	if msg, _ := os.ReadFile(stderr.Name()); err != nil || !strings.Contains(string(msg), "the server's ledger reports a broken chain") {
		t.Errorf("replay beside a server with a broken chain: %v\n%s", err, msg)
	}
}

// A ledger ahead of its mirror: verify names the first event JetStream lacks.
func TestVerifyCommandMirrorBehind(t *testing.T) {
	d := writeOfflineDay(t, true, 0)
	store, err := ledger.Open(filepath.Join(d.dir, LedgerFile), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = store.Append(t.Context(), ledger.Event{Type: ledger.TypeDayClosed, Data: ledger.DayClosed{Day: "2026-11-24", By: ledger.SealRequest}})
	store.Close()
	if err != nil {
		t.Fatal(err)
	}
	out, err := runCmd(t, &VerifyCommand{}, "--data", d.dir, "--nats", d.natsURL, "--site", "test")
	if !errors.Is(err, errMirrorBehind) || !strings.Contains(out, "chain      ok") ||
		!strings.Contains(out, "jetstream  BEHIND: the stream ends at seq "+strconv.FormatUint(d.seq, 10)) ||
		!strings.Contains(out, fmt.Sprintf("the %d events it holds are the ledger's", d.seq)) {
		t.Fatalf("mirror behind: %v\n%s", err, out)
	}
}

// verify reads every section of the newest checkpoint: a manifest altered
// in the file (same length, so a restart would not notice) fails it, and
// says to rebuild. A server on that file answers the day's manifest 500
// ledger_corrupt, saying to verify, and shows damage_problem on /readyz
// while it stays ready; a start with --rebuild writes the section again
// (it used to trust any stored section of the right length, so the
// damage outlived the rebuild), after which verify passes.
func TestVerifyCommandChecksSections(t *testing.T) {
	d := writeOfflineDay(t, false, afterSeal())
	out, err := runCmd(t, &VerifyCommand{}, "--data", d.dir)
	if err != nil || !strings.Contains(out, "sections   ok: ") || !strings.Contains(out, "of the checkpoint at seq "+strconv.FormatUint(afterSeal(), 10)) {
		t.Fatalf("clean: %v\n%s", err, out)
	}
	key := []byte(projections.Version + "/m/" + replaytest.Day)
	editLedgerFile(t, d.dir, func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("sections"))
		v := append([]byte(nil), b.Get(key)...)
		if len(v) == 0 {
			return errors.New("no manifest section")
		}
		v[len(v)/2] ^= 1
		return b.Put(key, v)
	})
	out, err = runCmd(t, &VerifyCommand{}, "--data", d.dir, "--json")
	var res verifyResult
	if !errors.Is(err, ledger.ErrCorrupt) || json.Unmarshal([]byte(out), &res) != nil || res.OK || res.Sections == nil ||
		res.Sections.OK || !strings.Contains(res.Sections.Problem, string(key)) || !res.Chain.OK {
		t.Fatalf("altered section: %v\n%s", err, out)
	}
	if out, _ := runCmd(t, &VerifyCommand{}, "--data", d.dir); !strings.Contains(out, "start serve once with --rebuild, which writes them again") {
		t.Fatalf("altered section, what to do:\n%s", out)
	}

	for _, rebuild := range []bool{false, true} {
		cfg := testServeConfig(d.dir)
		cfg.Site, cfg.Rebuild = replaytest.Site, rebuild
		srv, err := StartServer(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get("http://" + srv.Addr() + "/v1/manifests/" + replaytest.Day)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		var ready map[string]any
		getJSON(t, "http://"+srv.Addr()+"/readyz", &ready)
		// verify beside the server: its chain and mirror are whole, the
		// day's stored history is not; verify says so and fails.
		vout, verr := runCmd(t, &VerifyCommand{}, "--data", d.dir)
		e2eStop(t, srv)
		if !rebuild && (!errors.Is(verr, ledger.ErrCorrupt) || !strings.Contains(vout, "server     FAILED: a request met a damaged part of the file: ") || !strings.Contains(vout, string(key))) {
			t.Fatalf("verify beside a server that met damage: %v\n%s", verr, vout)
		}
		if rebuild && verr != nil {
			t.Fatalf("verify beside the rebuilt server: %v\n%s", verr, vout)
		}
		msg, _ := body["message"].(string)
		damage, _ := ready["damage_problem"].(string)
		switch {
		case !rebuild && (resp.StatusCode != http.StatusInternalServerError || body["reason"] != "ledger_corrupt" || !strings.Contains(msg, "recledger verify")):
			t.Fatalf("the damaged day's manifest: %d %v", resp.StatusCode, body)
		case !rebuild && (ready["ready"] != true || !strings.Contains(damage, string(key))):
			t.Fatalf("readyz after a damaged read: %v", ready)
		case rebuild && (resp.StatusCode != http.StatusOK || damage != ""):
			t.Fatalf("the day's manifest after --rebuild: %d %v; readyz %v", resp.StatusCode, body, ready)
		}
	}
	if out, err := runCmd(t, &VerifyCommand{}, "--data", d.dir); err != nil || !strings.Contains(out, "sections   ok: ") {
		t.Fatalf("after --rebuild: %v\n%s", err, out)
	}
}

// An offline command on a ledger it cannot open for another reason than a
// running server's lock says that reason, not "locked".
func TestOfflineOpenErrorsSayWhy(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, LedgerFile), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := runCmd(t, &VerifyCommand{}, "--data", dir)
	if err == nil || strings.Contains(err.Error(), "locked") || !strings.Contains(err.Error(), "is empty") || !strings.Contains(err.Error(), "rebuild it with recledger restore --from-jetstream") {
		t.Fatalf("verify of an empty ledger file: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, LedgerFile), []byte("not a ledger, but long enough to be read as one by bbolt"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = runCmd(t, &VerifyCommand{}, "--data", dir)
	if err == nil || strings.Contains(err.Error(), "locked") {
		t.Fatalf("verify of a file that is not a ledger: %v", err)
	}
	t.Logf("%v", err)
	// A dir holding its own mirror and no ledger: the error says how to
	// rebuild the ledger from the mirror.
	lost := t.TempDir()
	if err := os.Mkdir(filepath.Join(lost, JetStreamDir), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []func() error{func() error { return nil }, func() error { return os.WriteFile(filepath.Join(lost, LedgerFile), nil, 0o600) }} {
		if err := f(); err != nil {
			t.Fatal(err)
		}
		_, err = runCmd(t, &ReplayCommand{}, "--data", lost, "--digest")
		if !errors.Is(err, ledger.ErrNotFound) || !strings.Contains(err.Error(), "rebuild the ledger from it with recledger restore --from-jetstream --data "+lost) {
			t.Fatalf("replay of a dir whose ledger is lost beside its mirror: %v", err)
		}
	}
	// --json: automation reading stdout gets a failed verify, not nothing.
	out, err := runCmd(t, &VerifyCommand{}, "--data", t.TempDir(), "--json")
	var res struct {
		OK    *bool
		Error string
	}
	if err == nil || json.Unmarshal([]byte(out), &res) != nil || res.OK == nil || *res.OK || !strings.Contains(res.Error, "no ledger at") {
		t.Fatalf("verify --json of a dir with no ledger: %v\n%s", err, out)
	}
}

// A checkpoint whose state is not what its events give (here its head
// was edited: a team's retention changed, which the chain and the
// sections do not cover) fails verify, which rebuilds the state from the
// events; a start with --rebuild serves the events' state and replaces
// the checkpoint, after which verify passes.
func TestVerifyRebuildsTheCheckpoint(t *testing.T) {
	d := writeOfflineDay(t, false, 30)
	out, err := runCmd(t, &VerifyCommand{}, "--data", d.dir)
	if err != nil || !strings.Contains(out, "checkpoint ok: the state at seq 30, rebuilt from the events, has the stored digest "+d.digests[30]) {
		t.Fatalf("clean: %v\n%s", err, out)
	}
	store, err := ledger.Open(filepath.Join(d.dir, LedgerFile), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	seq, head, err := store.LoadCheckpoint(t.Context(), projections.Version)
	if err == nil {
		// the same length: the head's parts are sized
		i := strings.Index(string(head), `"retention_days":90,`)
		if i < 0 {
			t.Fatalf("no retention of 90 days in the head: %.300s", head)
		}
		head[i+len(`"retention_days":9`)] = '1'
		err = store.SaveCheckpoint(t.Context(), projections.Version, seq, head, nil)
	}
	store.Close()
	if err != nil {
		t.Fatal(err)
	}
	out, err = runCmd(t, &VerifyCommand{}, "--data", d.dir)
	if !errors.Is(err, ledger.ErrCorrupt) || !strings.Contains(out, "checkpoint FAILED: the state stored at seq 30 is not what its events give") ||
		!strings.Contains(out, "rebuilt "+d.digests[30]) || !strings.Contains(out, "chain      ok") {
		t.Fatalf("edited head: %v\n%s", err, out)
	}

	cfg := testServeConfig(d.dir)
	cfg.Site = replaytest.Site
	cfg.Rebuild = true
	srv, err := StartServer(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	// replaced before serving: a crash now would not bring the edited one back
	if st := replay.FromCheckpoint(t.Context(), srv.store); st == nil {
		t.Error("no checkpoint once --rebuild serves")
	} else if st.Digest() != d.digests[st.Seq()] {
		t.Errorf("the checkpoint once --rebuild serves: digest %s at seq %d, the events give %s", st.Digest(), st.Seq(), d.digests[st.Seq()])
	}
	var dg digestReply
	getJSON(t, "http://"+srv.Addr()+"/v1/digest", &dg)
	e2eStop(t, srv) // the final save replaces the checkpoint
	if dg.Digest != d.digests[dg.Seq] {
		t.Errorf("served with --rebuild: digest %s at seq %d, the events give %s", dg.Digest, dg.Seq, d.digests[dg.Seq])
	}
	if out, err := runCmd(t, &VerifyCommand{}, "--data", d.dir); err != nil || !strings.Contains(out, "checkpoint ok") {
		t.Fatalf("after --rebuild: %v\n%s", err, out)
	}
}

// TestVerifyOfANewerBuildsCheckpoint: a checkpoint that folded events of
// a version this build does not read was saved by a newer build, not
// damaged: a rollback's verify said "ledger corrupt", exit 1, and to
// serve the dir, which the newer events refuse. Replay from it says why
// it goes from seq 1.
func TestVerifyOfANewerBuildsCheckpoint(t *testing.T) {
	d := writeOfflineDay(t, false, 30)
	store, err := ledger.Open(filepath.Join(d.dir, LedgerFile), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	seq, head, err := store.LoadCheckpoint(t.Context(), projections.Version)
	if err == nil {
		mine := fmt.Sprintf(`"rules":%d,`, ledger.CurrentVersion)
		if !strings.Contains(string(head), mine) {
			t.Fatalf("no %s in the head: %.300s", mine, head)
		}
		head = []byte(strings.Replace(string(head), mine, fmt.Sprintf(`"rules":%d,`, ledger.CurrentVersion+1), 1))
		err = store.SaveCheckpoint(t.Context(), projections.Version, seq, head, nil)
	}
	store.Close()
	if err != nil {
		t.Fatal(err)
	}
	out, err := runCmd(t, &VerifyCommand{}, "--data", d.dir)
	if err != nil || !strings.Contains(out, "checkpoint not checked: saved by a newer build") || strings.Contains(out, "corrupt") {
		t.Fatalf("verify of a newer build's checkpoint: %v\n%s", err, out)
	}
	stderr, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	out, err = runCmd(t, &ReplayCommand{Stderr: stderr}, "--data", d.dir, "--from-checkpoint", "--digest")
	said, _ := os.ReadFile(stderr.Name())
	if err != nil || !strings.Contains(string(said), "the checkpoint was saved by a newer build") || !strings.Contains(out, d.digest) {
		t.Fatalf("replay --from-checkpoint of a newer build's checkpoint: %v\n%s%s", err, out, said)
	}
}

// TestVerifySaysWhenNoMirrorWasCompared: a data dir served with an
// external NATS has no mirror of its own; verify must say it did not
// compare one, not print "ok" for the chain alone.
func TestVerifySaysWhenNoMirrorWasCompared(t *testing.T) {
	data := t.TempDir()
	st, err := ledger.Open(filepath.Join(data, LedgerFile), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.ClaimSite(t.Context(), "siteA"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Append(t.Context(), ledger.Event{Type: ledger.TypeCallSignal, Data: ledger.CallSignal{CallID: "c-1", Extension: "3420", Type: ledger.SignalRinging}}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	out, err := runCmd(t, &VerifyCommand{}, "--data", data)
	if err != nil || !strings.Contains(out, "jetstream  not checked: the data dir has no mirror of its own") {
		t.Fatalf("verify of a dir without its own mirror: %v\n%s", err, out)
	}
}

// A mirror compared by its head alone (beside a server) claims no event
// good, and names no first bad seq it does not know (a walk read "FAILED
// at seq 2264 … 0 events good before it" where 2,263 were the same).
// One compared event by event names its first bad seq, the first one
// too; one that holds none of the site's events says what that may
// mean; and a stream with nothing but events has no note of others.
func TestVerifyLineOfHeadsCompared(t *testing.T) {
	var b strings.Builder
	writeVerifyLine(&b, "jetstream", ledger.VerifyReport{FirstBad: 2264, Problem: copiesDiffer(2264, "aa", "bb")})
	if out := b.String(); strings.Contains(out, "good before it") || !strings.HasPrefix(out, "jetstream  FAILED: at seq 2264 the stream's hash is aa") {
		t.Errorf("heads compared: %q", out)
	}
	b.Reset()
	writeVerifyLine(&b, "jetstream", ledger.VerifyReport{FirstBad: 6, Events: 5, Problem: "seq 6: stream bytes differ from the ledger's"})
	if out := b.String(); !strings.Contains(out, "FAILED at seq 6: seq 6: stream bytes differ from the ledger's (5 events good before it)") {
		t.Errorf("compared event by event: %q", out)
	}
	b.Reset()
	writeVerifyLine(&b, "jetstream", ledger.VerifyReport{FirstBad: 1, Problem: "seq 1: stream bytes differ from the ledger's"})
	if out := b.String(); !strings.Contains(out, "FAILED at seq 1: seq 1: stream bytes differ from the ledger's (0 events good before it)") {
		t.Errorf("compared event by event, the first bad: %q", out)
	}
	b.Reset()
	writeVerifyLine(&b, "jetstream", ledger.VerifyReport{FirstBad: 1, Behind: true, Problem: "the stream ends at seq 0; the ledger goes on to seq 9"})
	if out := b.String(); !strings.Contains(out, "BEHIND: the stream ends at seq 0; the ledger goes on to seq 9: the mirror holds no event of the site (a --site other than the server's") {
		t.Errorf("a mirror without the site's events: %q", out)
	}
	if strings.Contains(b.String(), "note:") {
		t.Errorf("a note of messages that are not events, with none: %q", b.String())
	}
}

// verify walks the stopped file's pages: a leaf page listed as free (a
// write would hand it out and overwrite events) fails it with every event
// whole, and, the mirror being the same, it prints how to rebuild.
func TestVerifyChecksTheFilesPages(t *testing.T) {
	d := writeOfflineDay(t, true, afterSeal())
	path := filepath.Join(d.dir, LedgerFile)
	out, err := runCmd(t, &VerifyCommand{}, "--data", d.dir, "--nats", d.natsURL, "--site", replaytest.Site)
	if err != nil || !strings.Contains(out, "file       ok: ") {
		t.Fatalf("clean: %v\n%s", err, out)
	}
	leaf := listALeafFree(t, path)
	out, err = runCmd(t, &VerifyCommand{}, "--data", d.dir, "--nats", d.natsURL, "--site", replaytest.Site)
	if !errors.Is(err, ledger.ErrCorrupt) || !strings.Contains(out, "chain      ok") ||
		!strings.Contains(out, fmt.Sprintf("file       FAILED: page %d: in use and on the free-page list", leaf)) ||
		!strings.Contains(out, "rebuild    the ledger can be rebuilt from the mirror: move "+path+" away") {
		t.Fatalf("a leaf page listed free: %v\n%s", err, out)
	}
}

// listALeafFree damages the stopped ledger file at path as a bad write
// does: one of its leaf pages, in use, is put on the free-page list. It
// returns that page's number.
func listALeafFree(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	ps := int(le.Uint32(data[16+8:]))
	var meta0, meta1 = data[16:], data[ps+16:]
	meta := meta0
	if le.Uint64(meta1[48:]) > le.Uint64(meta0[48:]) {
		meta = meta1
	}
	leaf := 0
	for off := 2 * ps; off+ps <= len(data) && leaf == 0; off += ps {
		if le.Uint64(data[off:]) == uint64(off/ps) && le.Uint16(data[off+8:]) == 0x02 {
			leaf = off / ps
		}
	}
	fl := data[int(le.Uint64(meta[32:]))*ps:]
	n := le.Uint16(fl[10:])
	if leaf == 0 || n == 0xFFFF || 16+int(n+1)*8 > ps {
		t.Fatalf("no leaf page (%d), or a free-page list of %d", leaf, n)
	}
	le.PutUint64(fl[16+int(n)*8:], uint64(leaf))
	le.PutUint16(fl[10:], n+1)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return leaf
}

// A damaged ledger file beside a mirror that lost an event: neither copy
// is whole, and verify names no way to make one from the other (the
// mirror made again from a damaged file would carry its damage).
func TestVerifyOfTwoDamagedCopiesNamesNoWayOut(t *testing.T) {
	d := writeOfflineDay(t, true, afterSeal())
	listALeafFree(t, filepath.Join(d.dir, LedgerFile))
	nc, js, err := ledger.Connect(t.Context(), d.natsURL, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if s, err := js.Stream(t.Context(), ledger.EventsStream); err != nil || s.DeleteMsg(t.Context(), 5) != nil {
		t.Fatalf("deleting event 5 from the mirror: %v", err)
	}
	out, err := runCmd(t, &VerifyCommand{}, "--data", d.dir, "--nats", d.natsURL, "--site", replaytest.Site)
	if !errors.Is(err, ledger.ErrCorrupt) || !strings.Contains(out, "file       FAILED: ") || !strings.Contains(out, "jetstream  FAILED") ||
		strings.Contains(out, "remirror ") || strings.Contains(out, "rebuild ") {
		t.Fatalf("verify of a damaged file beside a mirror that lost an event: %v\n%s", err, out)
	}
}

// A head damaged in the file, same length and still decodable (a walk
// changed a value inside it), was served as the state until verify folded
// the events. The head's stored sum refuses it now: the start folds every
// event, serves their state, and says why; verify says so before.
func TestServeFoldsPastADamagedHead(t *testing.T) {
	d := writeOfflineDay(t, false, 30)
	editLedgerFile(t, d.dir, func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("checkpoints"))
		v := bytes.Clone(b.Get([]byte(projections.Version)))
		i := bytes.Index(v, []byte(`"retention_days":90,`))
		if i < 0 {
			return errors.New("no retention of 90 days in the stored head")
		}
		v[i+len(`"retention_days":9`)] = '1'
		return b.Put([]byte(projections.Version), v)
	})
	out, err := runCmd(t, &VerifyCommand{}, "--data", d.dir)
	// The next serve replaces it by itself: no --rebuild is asked for.
	if !errors.Is(err, ledger.ErrCorrupt) || !strings.Contains(out, "checkpoint FAILED: ") || !strings.Contains(out, "does not hash to its stored sum") ||
		!strings.Contains(err.Error(), "the next serve folds every event instead and replaces it") {
		t.Fatalf("verify of a damaged head: %v\n%s", err, out)
	}
	var logs ledgertest.Buffer
	cfg := testServeConfig(d.dir)
	cfg.Site, cfg.Logger = replaytest.Site, slog.New(slog.NewTextHandler(&logs, nil))
	srv, err := StartServer(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var dg digestReply
	getJSON(t, "http://"+srv.Addr()+"/v1/digest", &dg)
	e2eStop(t, srv)
	if dg.Digest != d.digests[dg.Seq] || !strings.Contains(logs.String(), "the stored checkpoint is damaged") {
		t.Fatalf("served on a damaged head: digest %s at seq %d, the events give %s\n%s", dg.Digest, dg.Seq, d.digests[dg.Seq], logs.String())
	}
	if out, err := runCmd(t, &VerifyCommand{}, "--data", d.dir); err != nil || !strings.Contains(out, "checkpoint ok") {
		t.Fatalf("verify once served: %v\n%s", err, out)
	}
}

// deleteEvents deletes the events from..to from a stopped dir's ledger, as
// a damaged page hides them.
func deleteEvents(t *testing.T, dir string, from, to uint64) {
	t.Helper()
	editLedgerFile(t, dir, func(tx *bolt.Tx) error {
		for seq := from; seq <= to; seq++ {
			if err := tx.Bucket([]byte("events")).Delete(binary.BigEndian.AppendUint64(nil, seq)); err != nil {
				return err
			}
		}
		return nil
	})
}

// Events gone from the middle of the ledger or from its end, the mirror
// whole: verify says how to rebuild (it named no way out for a gap, and
// for a lost tail said that restore "continues it", which left the damaged
// file), replay refuses a ledger that lost its tail (it gave the digest of
// the events left, exit 0), and so does serve, saying what to run.
func TestVerifyRebuildsAfterEventsAreLost(t *testing.T) {
	for _, c := range []struct {
		name     string
		from, to uint64
	}{
		{"a gap", 5, 9},
		{"a lost tail", 20, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := writeOfflineDay(t, true, afterSeal())
			to := c.to
			if to == 0 {
				to = d.seq
			}
			deleteEvents(t, d.dir, c.from, to)
			path := filepath.Join(d.dir, LedgerFile)
			out, err := runCmd(t, &VerifyCommand{}, "--data", d.dir, "--nats", d.natsURL, "--site", replaytest.Site)
			if err == nil || !strings.Contains(out, "chain      FAILED at seq "+strconv.FormatUint(c.from, 10)) ||
				!strings.Contains(out, "rebuild    the ledger can be rebuilt from the mirror: move "+path+" away") {
				t.Fatalf("verify: %v\n%s", err, out)
			}
			if out, err := runCmd(t, &ReplayCommand{}, "--data", d.dir, "--digest"); err == nil {
				t.Fatalf("replay of a ledger that lost events: %s", out)
			}
			if c.to == 0 {
				cfg := testServeConfig(d.dir)
				cfg.Site = replaytest.Site
				_, err := StartServer(t.Context(), cfg)
				if !errors.Is(err, ledger.ErrCorrupt) || !strings.Contains(err.Error(), "Move "+path+" away") {
					t.Fatalf("serve of a ledger that lost its tail: %v", err)
				}
				// restore does not continue it (it would keep the damage)...
				js := []string{"--from-jetstream", "--data", d.dir, "--nats", d.natsURL, "--site", replaytest.Site}
				if _, err := runCmd(t, &RestoreCommand{}, js...); !errors.Is(err, ledger.ErrChainBroken) || !strings.Contains(err.Error(), "move it away and restore into an empty data dir") {
					t.Fatalf("restore over a ledger that lost its tail: %v", err)
				}
				// ...and fills an empty file in its place (it failed reading one).
				if err := os.Truncate(path, 0); err != nil {
					t.Fatal(err)
				}
				if out, err := runCmd(t, &RestoreCommand{}, js...); err != nil || !strings.Contains(out, d.digest) {
					t.Fatalf("restore over an empty ledger file: %v\n%s", err, out)
				}
				if out, err := runCmd(t, &VerifyCommand{}, "--data", d.dir, "--nats", d.natsURL, "--site", replaytest.Site); err != nil {
					t.Fatalf("verify after the restore: %v\n%s", err, out)
				}
			}
		})
	}
}

// Whatever part of a verify fails the command fails its JSON too: "ok"
// is false whenever the exit status is, so that a script reading --json
// cannot take a damaged dir for a whole one.
func TestVerifyJSONIsNotOKWhenVerifyFails(t *testing.T) {
	whole := verifyResult{OK: true, Chain: ledger.VerifyReport{OK: true, Events: 9}}
	for name, change := range map[string]func(*verifyResult){
		"the file's pages": func(r *verifyResult) {
			r.File = &ledger.FileReport{Problems: []string{"page 3: in use and on the free-page list"}}
		},
		"an unfinished restore": func(r *verifyResult) { r.RestoreUnfinished = true },
		"the server's damage":   func(r *verifyResult) { r.ServerDamage = "page 3" },
		"the mirror differs":    func(r *verifyResult) { r.JetStream = &ledger.VerifyReport{FirstBad: 4, Problem: "hash"} },
		"the mirror behind":     func(r *verifyResult) { r.JetStream = &ledger.VerifyReport{Behind: true, Problem: "3 of 9"} },
		"the checkpoint":        func(r *verifyResult) { r.Checkpoint = &checkpointReport{Seq: 5, Digest: "a", Rebuilt: "b"} },
	} {
		r := whole
		change(&r)
		var out bytes.Buffer
		err := writeVerify(&out, r, true, nil)
		var got struct{ OK bool }
		if jerr := json.Unmarshal(out.Bytes(), &got); jerr != nil || err == nil || got.OK {
			t.Errorf("%s: exit %v, JSON %s", name, err, out.String())
		}
	}
	var out bytes.Buffer
	if err := writeVerify(&out, whole, true, nil); err != nil || !strings.Contains(out.String(), `"ok":true`) {
		t.Errorf("whole: exit %v, JSON %s", err, out.String())
	}
}

// Damaged sections beside a broken chain ask for no --rebuild: it folds
// the events, which must be mended first (the chain's line and the
// mirror's say how).
func TestDamagedSectionsBesideABrokenChainAskNoRebuild(t *testing.T) {
	res := verifyResult{Chain: ledger.VerifyReport{FirstBad: 7, Problem: "prev is not the hash of seq 6"},
		Sections: &sectionsReport{Checkpoint: 30, Problem: "section m/2026-11-23: does not hash to its stored sum"}}
	var out bytes.Buffer
	err := writeVerify(&out, res, false, ledger.ErrCorrupt)
	if !errors.Is(err, ledger.ErrChainBroken) || !strings.Contains(out.String(), "sections   FAILED: ") || strings.Contains(out.String()+err.Error(), "--rebuild") {
		t.Errorf("exit %v; output:\n%s", err, out.String())
	}
}
