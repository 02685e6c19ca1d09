package ledger

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
)

// crashEnv names the ledger file TestCrashChild appends to; unset, the
// child test is skipped.
const crashEnv = "RECLEDGER_CRASH_CHILD_DB"

// TestCrashChild is the process TestCrashKeepsAcknowledgedEvents kills: it
// appends from several goroutines and prints "ack <seq> <id>" for each
// acknowledged event, one write per line, until it is killed.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("run by TestCrashKeepsAcknowledgedEvents")
	}
	s, err := Open(path, Options{})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second) // in case nobody kills us
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Go(func() {
			for ctx.Err() == nil {
				envs, err := s.Append(ctx, cmd("crash"+strconv.Itoa(g)))
				if err != nil {
					return
				}
				mu.Lock()
				os.Stdout.WriteString("ack " + strconv.FormatUint(envs[0].Seq, 10) + " " + envs[0].ID.String() + "\n")
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	s.Close()
}

func TestCrashKeepsAcknowledgedEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	path := filepath.Join(t.TempDir(), "ledger.db")
	acked := map[uint64]ulid.ULID{} // across rounds: later rounds append to the survivor
	deadline := time.Now().Add(5 * time.Second)
	for round := 0; round < 8 && time.Now().Before(deadline); round++ {
		want := 1 + rand.IntN(600)
		got := crashRound(t, path, want, acked)
		s, err := Open(path, Options{})
		if err != nil {
			t.Fatalf("round %d: reopen after kill: %v", round, err)
		}
		for seq, id := range acked {
			e, err := s.Get(context.Background(), seq)
			if err != nil || e.ID != id {
				s.Close()
				t.Fatalf("round %d: acknowledged seq %d (%s) lost: %+v %v", round, seq, id, e, err)
			}
		}
		rep, err := s.Verify(context.Background())
		if err != nil || !rep.OK {
			s.Close()
			t.Fatalf("round %d: verify after kill: %+v %v", round, rep, err)
		}
		head, _ := s.Head()
		t.Logf("round %d: killed after %d acks (%d read), head %d", round, want, got, head)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// crashRound runs a child on path, SIGKILLs it after want acks, and adds
// every ack it printed (also those still in the pipe) to acked. It returns
// the number of acks read.
func crashRound(t *testing.T, path string, want int, acked map[uint64]ulid.ULID) int {
	t.Helper()
	c := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	c.Env = append(os.Environ(), crashEnv+"="+path)
	c.Stderr = os.Stderr
	out, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	n, killed := 0, false
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 || f[0] != "ack" {
			t.Logf("child: %s", sc.Text())
			continue
		}
		seq, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			t.Fatalf("child ack %q: %v", sc.Text(), err)
		}
		id, err := ulid.ParseStrict(f[2])
		if err != nil {
			t.Fatalf("child ack %q: %v", sc.Text(), err)
		}
		if old, ok := acked[seq]; ok && old != id {
			t.Fatalf("seq %d acknowledged twice: %s and %s", seq, old, id)
		}
		acked[seq] = id
		n++
		if n == want && !killed {
			if err := c.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	err = c.Wait()
	if !killed || err == nil {
		t.Fatalf("child ended on its own after %d of %d acks: %v", n, want, err)
	}
	return n
}
