package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/recledger/recledger/ledger"
)

// TestBackupBesideRunningServer: `backup` beside a server with --tokens
// asks it for a copy with the admin's token (the auditor's is refused,
// naming the role), and the copy, served from a fresh data dir, gives the
// digest the server gave at the copy's head.
func TestBackupBesideRunningServer(t *testing.T) {
	data := t.TempDir()
	const admin, auditor = "admin-token-0123456789", "auditor-token-0123456789"
	srv := startWithTokens(t, data, `{"tokens":[{"name":"ops","token":"`+admin+`","roles":["admin"]},`+
		`{"name":"audit","token":"`+auditor+`","roles":["auditor"]}],`+
		`"networks":[{"name":"local","cidr":"127.0.0.0/8","roles":["command"]}]}`)
	base := "http://" + srv.Addr()
	for i := range 20 {
		postRinging(t, base, i)
	}
	var live digestReply
	getJSONWith(t, base+"/v1/digest", auditor, &live)
	stderr := devNull(t)
	out := filepath.Join(t.TempDir(), "copy.db")
	if _, err := runCmd(t, &BackupCommand{Stderr: stderr}, "--data", data, "--out", out, "--token", auditor); !errors.Is(err, ledger.ErrRefused) || !strings.Contains(err.Error(), "admin role") {
		t.Fatalf("with the auditor's token: %v", err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("a refused backup left a file")
	}
	if _, err := os.Stat(out + ".partial"); err == nil {
		t.Fatal("a refused backup left its partial file")
	}
	sum, err := runCmd(t, &BackupCommand{Stderr: stderr}, "--data", data, "--out", out, "--token", admin)
	if err != nil || !strings.Contains(sum, "events 1 to 20 ") || !strings.Contains(sum, "from the server at "+base) {
		t.Fatalf("backup: %v %q", err, sum)
	}
	if _, err := runCmd(t, &BackupCommand{Stderr: stderr}, "--data", data, "--out", out, "--token", admin); !errors.Is(err, ledger.ErrConflict) {
		t.Fatalf("a second backup to the same file: %v", err)
	}
	// HEAD: the headers of a copy, and no copy (none counted).
	req, _ := http.NewRequest(http.MethodHead, base+"/v1/backup", nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK || resp.Header.Get("Recledger-Head-Seq") != "20" || resp.ContentLength <= 0 ||
		resp.Header.Get("Recledger-Site") != "default" || resp.Header.Get("Cache-Control") != "no-store" ||
		resp.Header.Get("Content-Disposition") != `attachment; filename="recledger-default-20.db"` {
		t.Fatalf("HEAD /v1/backup: %v %+v", err, resp)
	}
	resp.Body.Close()
	if m := metricsText(t, base); !strings.Contains(m, `recledger_backups_total{result="sent"} 1`) || strings.Contains(m, "recledger_backup_last_sent_timestamp_seconds 0\n") {
		t.Fatalf("backup metrics after one copy:\n%s", grepLines(m, "backup"))
	}
	postRinging(t, base, 99) // the server goes on; the copy ends where it was taken

	restored := t.TempDir()
	if err := os.Rename(out, filepath.Join(restored, LedgerFile)); err != nil {
		t.Fatal(err)
	}
	if got := servedDigest(t, restored); got != live {
		t.Fatalf("the copy served gives %+v, the server gave %+v when it was taken", got, live)
	}
}

// TestBackupOfAStoppedDataDir: with no server on the dir, the copy is
// taken from the file, byte for byte the events it holds, readable by its
// owner alone, and the summary says its length, head and source; to
// standard output with --out -, whose failure is the backup's error.
func TestBackupOfAStoppedDataDir(t *testing.T) {
	d := writeOfflineDay(t, false, 0)
	out := filepath.Join(t.TempDir(), "copy.db")
	sum, err := runCmd(t, &BackupCommand{Stderr: devNull(t)}, "--data", d.dir, "--out", out)
	if err != nil || !strings.Contains(sum, "from "+filepath.Join(d.dir, LedgerFile)) {
		t.Fatalf("backup: %v %q", err, sum)
	}
	orig, err := ledger.Open(filepath.Join(d.dir, LedgerFile), ledger.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	cp, err := ledger.Open(out, ledger.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	rep, err := cp.Verify(context.Background())
	head, hash := orig.Head()
	if err != nil || !rep.OK || rep.Events != head {
		t.Fatalf("verify of the copy: %+v %v, want %d events", rep, err, head)
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("backup: %s: %d bytes, events 1 to %d (head hash %s), from %s\n", out, fi.Size(), head, hash, filepath.Join(d.dir, LedgerFile)); sum != want {
		t.Errorf("the summary is %q, want %q", sum, want)
	}
	if fi.Mode().Perm() != 0o600 { // it holds what the ledger does: for its owner alone
		t.Errorf("the copy's mode is %v, want -rw-------", fi.Mode().Perm())
	}

	// A file named - where the backup runs is not the copy's: - is
	// standard output.
	t.Chdir(t.TempDir())
	if err := os.WriteFile("-", []byte("someone's"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	c := &BackupCommand{Out: &stdout, Stderr: devNull(t)}
	if err := c.Run(context.Background(), []string{"--data", d.dir, "--out", "-"}); err != nil {
		t.Fatal(err)
	}
	file, _ := os.ReadFile(out)
	if !bytes.Equal(stdout.Bytes(), file) {
		t.Fatalf("--out - wrote %d bytes, the file has %d", stdout.Len(), len(file))
	}
	if b, _ := os.ReadFile("-"); string(b) != "someone's" {
		t.Fatalf("--out - wrote the file named -: %q", b)
	}
	// Standard output that fails is the backup's error, said once as such.
	c = &BackupCommand{Out: failingWriter{}, Stderr: devNull(t)}
	if err := c.Run(context.Background(), []string{"--data", d.dir, "--out", "-"}); err == nil || !strings.HasPrefix(err.Error(), "backup: ") ||
		strings.Contains(err.Error(), "backup: backup: ") || !strings.Contains(err.Error(), "broken pipe") {
		t.Fatalf("--out - to a failing writer: %v", err)
	}
	dir := t.TempDir()
	notDir := filepath.Join(dir, "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := runCmd(t, &BackupCommand{Stderr: devNull(t)}, "--data", d.dir, "--out", filepath.Join(notDir, "x.db")); !errors.Is(err, ledger.ErrNotFound) || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("--out in a file, not a directory: %v", err)
	}
	if _, err := runCmd(t, &BackupCommand{Stderr: devNull(t)}, "--data", d.dir, "--out", dir); !errors.Is(err, ledger.ErrInvalid) || !strings.Contains(err.Error(), "is a directory") {
		t.Fatalf("--out a directory: %v", err)
	}
	if _, err := runCmd(t, &BackupCommand{Stderr: devNull(t)}, "--data", d.dir, "--out", filepath.Join(dir, "no", "x.db")); !errors.Is(err, ledger.ErrNotFound) || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("--out in a missing directory: %v", err)
	}
	if _, err := runCmd(t, &BackupCommand{Stderr: devNull(t)}, "--data", d.dir); !errors.Is(err, errCommandLine) {
		t.Fatalf("without --out: %v", err)
	}
}

// TestBackupContinuedFromTheMirror: a copy put back in a dir whose mirror
// holds later events is refused by serve, and restore continues it with
// them: the backup and the mirror give back every event.
func TestBackupContinuedFromTheMirror(t *testing.T) {
	data := t.TempDir()
	srv, err := StartServer(context.Background(), testServeConfig(data))
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + srv.Addr()
	for i := range 10 {
		postRinging(t, base, i)
	}
	out := filepath.Join(t.TempDir(), "copy.db")
	if sum, err := runCmd(t, &BackupCommand{Stderr: devNull(t)}, "--data", data, "--out", out); err != nil || !strings.Contains(sum, "events 1 to 10 ") {
		t.Fatalf("backup: %v %q", err, sum)
	}
	for i := 10; i < 25; i++ {
		postRinging(t, base, i)
	}
	var live digestReply
	getJSON(t, base+"/v1/digest", &live)
	e2eStop(t, srv)

	if err := os.Rename(out, filepath.Join(data, LedgerFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := StartServer(context.Background(), testServeConfig(data)); err == nil || !strings.Contains(err.Error(), "restore --from-jetstream") {
		t.Fatalf("serve of a copy behind its mirror: %v, want a refusal naming restore", err)
	}
	restoreAndServe(t, data, live)
}

// grepLines is the lines of s that hold sub.
func grepLines(s, sub string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// dataDirServedBy records a server answering with h as the one running
// on a data dir of its own, which it returns.
func dataDirServedBy(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	data := t.TempDir()
	if err := writeServing(data, servingInfo{PID: os.Getpid(), HTTP: srv.URL}); err != nil {
		t.Fatal(err)
	}
	return data
}

// fakeBackupServer serves the ledger file of dir as GET /v1/backup,
// announcing the head seq and hash it is given, and records itself as
// the server running on a data dir of its own, which it returns.
func fakeBackupServer(t *testing.T, dir string, seq uint64, hash string, length bool) string {
	t.Helper()
	file, err := os.ReadFile(filepath.Join(dir, LedgerFile))
	if err != nil {
		t.Fatal(err)
	}
	return dataDirServedBy(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/backup" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Recledger-Head-Seq", strconv.FormatUint(seq, 10))
		w.Header().Set("Recledger-Head-Hash", hash)
		if length {
			w.Header().Set("Content-Length", strconv.Itoa(len(file)))
		} else {
			w.(http.Flusher).Flush() // chunked: no length
		}
		w.Write(file)
	})
}

// A copy that does not read back as the server announced it (another
// head, a damaged file) is not kept at --out, nor half-written beside it:
// --out is only ever a whole copy that passed its check, and the backup
// can be run again (a copy whose last event cannot be read is damaged,
// wherever it ends). A copy sent without its length is refused. Each error
// says "backup: " once, first.
func TestBackupThatFailsItsCheckIsNotKept(t *testing.T) {
	d := writeOfflineDay(t, false, 0)
	st, err := ledger.Open(filepath.Join(d.dir, LedgerFile), ledger.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	head, hash := st.Head()
	st.Close()
	garbled := t.TempDir()
	if err := os.WriteFile(filepath.Join(garbled, LedgerFile), bytes.Repeat([]byte("not a ledger "), 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	// A copy whose last event cannot be read, announced to end where it
	// reads as ending.
	damaged := t.TempDir()
	whole, err := os.ReadFile(filepath.Join(d.dir, LedgerFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(damaged, LedgerFile), whole, 0o600); err != nil {
		t.Fatal(err)
	}
	garbleEvent(t, damaged, head)
	st, err = ledger.Open(filepath.Join(damaged, LedgerFile), ledger.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	dhead, dhash := st.Head()
	st.Close()
	for _, tc := range []struct {
		name   string
		seq    uint64
		hash   string
		length bool
		want   error
		says   string
		served string // the data dir whose ledger file is sent: d.dir when ""
	}{
		{"the head announced", head, hash, true, nil, "events 1 to ", ""},
		{"another head hash", head, strings.Repeat("0", 64), true, ledger.ErrCorrupt, "not kept", ""},
		{"a later head", head + 1, hash, true, ledger.ErrCorrupt, "not kept", ""},
		{"no length", head, hash, false, ledger.ErrUnavailable, "no head seq or length", ""},
		{"not a ledger file", head, hash, true, ledger.ErrCorrupt, "not kept", garbled},
		{"its last event unreadable", dhead, dhash, true, ledger.ErrCorrupt, "not kept", damaged},
	} {
		t.Run(tc.name, func(t *testing.T) {
			served := cmp.Or(tc.served, d.dir)
			data := fakeBackupServer(t, served, tc.seq, tc.hash, tc.length)
			out := filepath.Join(t.TempDir(), "copy.db")
			sum, err := runCmd(t, &BackupCommand{Stderr: devNull(t)}, "--data", data, "--out", out)
			if tc.want == nil {
				if err != nil || !strings.Contains(sum, tc.says) {
					t.Fatalf("backup: %v %q", err, sum)
				}
				return
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) ||
				!strings.HasPrefix(err.Error(), "backup: ") || strings.Contains(err.Error(), "backup: backup: ") {
				t.Fatalf("backup: %v, want %v saying %q, after one \"backup: \"", err, tc.want, tc.says)
			}
			for _, p := range []string{out, out + ".partial"} {
				if _, err := os.Stat(p); err == nil {
					t.Errorf("%s left behind", filepath.Base(p))
				}
			}
		})
	}
	// To standard output, a writer that fails is named, not the server.
	data := fakeBackupServer(t, d.dir, head, hash, true)
	c := &BackupCommand{Out: failingWriter{}, Stderr: devNull(t)}
	if err := c.Run(context.Background(), []string{"--data", data, "--out", "-"}); err == nil || !strings.Contains(err.Error(), "writing the copy") {
		t.Fatalf("--out - to a failing writer: %v", err)
	}
}

// garbleEvent writes bytes that are no event over the event at seq in
// the ledger file of dir, as damage in the file would.
func garbleEvent(t *testing.T, dir string, seq uint64) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, LedgerFile), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		var k [8]byte
		binary.BigEndian.PutUint64(k[:], seq)
		return tx.Bucket([]byte("events")).Put(k[:], []byte("{garbled"))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
}

// failingWriter fails every write, as a closed pipe does.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

// A partial file already beside --out (another backup writing it, or one
// interrupted) is neither truncated nor reused; a data dir with no ledger
// is an error, not a copy of nothing; and a backup interrupted while it
// copies leaves neither --out nor its partial file.
func TestBackupLeavesNothingHalfDone(t *testing.T) {
	d := writeOfflineDay(t, false, 0)
	out := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(out+".partial", []byte("another backup's"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := runCmd(t, &BackupCommand{Stderr: devNull(t)}, "--data", d.dir, "--out", out); !errors.Is(err, ledger.ErrConflict) || !strings.Contains(err.Error(), "remove it if none runs") {
		t.Fatalf("beside a partial file: %v", err)
	}
	if b, _ := os.ReadFile(out + ".partial"); string(b) != "another backup's" {
		t.Fatalf("the partial file of another backup was written over: %q", b)
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("a copy was written beside another backup's partial file")
	}

	empty := filepath.Join(t.TempDir(), "copy.db")
	if _, err := runCmd(t, &BackupCommand{Stderr: devNull(t)}, "--data", t.TempDir(), "--out", empty); err == nil {
		t.Fatal("a backup of a data dir with no ledger succeeded")
	}
	if _, err := os.Stat(empty); err == nil {
		t.Fatal("a backup of a data dir with no ledger wrote a file")
	}

	// A server that sends half the copy, then nothing until the client
	// gives up.
	file, err := os.ReadFile(filepath.Join(d.dir, LedgerFile))
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Recledger-Head-Seq", "1")
		w.Header().Set("Recledger-Head-Hash", "x")
		w.Header().Set("Content-Length", strconv.Itoa(len(file)))
		w.Write(file[:len(file)/2])
		w.(http.Flusher).Flush()
		close(started)
		<-r.Context().Done()
	}))
	defer hs.Close()
	data := t.TempDir()
	if err := writeServing(data, servingInfo{PID: os.Getpid(), HTTP: hs.URL}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-started; cancel() }()
	cut := filepath.Join(t.TempDir(), "copy.db")
	c := &BackupCommand{Out: io.Discard, Stderr: devNull(t)}
	if err := c.Run(ctx, []string{"--data", data, "--out", cut}); err == nil || !strings.Contains(err.Error(), "interrupted") || !strings.Contains(err.Error(), "nothing was written to "+cut) {
		t.Fatalf("an interrupted backup: %v", err)
	}
	for _, p := range []string{cut, cut + ".partial"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("an interrupted backup left %s", filepath.Base(p))
		}
	}
}
