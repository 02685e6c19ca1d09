package ledger

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestBackupWhileAppending: a backup taken while appenders go on is a
// ledger file that holds exactly the events up to the head it announced,
// verifies, and takes appends after them; the store goes on meanwhile.
func TestBackupWhileAppending(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, Options{})
	for i := 0; i < 500; i++ {
		if _, err := s.Append(ctx, cmd("tag")); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.Append(ctx, cmd("pause"), cmd("resume")); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	var buf bytes.Buffer
	var info BackupInfo
	// The copy's first write waits for appends committed after its
	// transaction began: they go on, and the copy does not hold them.
	w := writerFunc(func(p []byte) (int, error) {
		for head, _ := s.Head(); head < info.Head+100; head, _ = s.Head() {
			runtime.Gosched()
		}
		return buf.Write(p)
	})
	n, err := s.Backup(ctx, w, func(i BackupInfo) error { info = i; return nil })
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) || n != info.Size || info.Head < 500 || info.Hash == "" {
		t.Fatalf("backup: %d bytes written, %d taken, info %+v", n, buf.Len(), info)
	}
	head, _ := s.Head()
	if head < info.Head+100 {
		t.Fatalf("the store is at %d, the backup at %d: appends waited for it", head, info.Head)
	}

	path := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("open the copy: %v", err)
	}
	defer c.Close()
	if seq, hash := c.Head(); seq != info.Head || hash != info.Hash {
		t.Fatalf("the copy's head is %d %s, the backup announced %d %s", seq, hash, info.Head, info.Hash)
	}
	mustVerify(t, c, info.Head)
	for seq := uint64(1); seq <= info.Head; seq += 97 {
		a, err1 := s.Get(ctx, seq)
		b, err2 := c.Get(ctx, seq)
		if err1 != nil || err2 != nil || !bytes.Equal(a.Raw, b.Raw) {
			t.Fatalf("seq %d differs: %v %v", seq, err1, err2)
		}
	}
	if envs, err := c.Append(ctx, cmd("tag")); err != nil || envs[0].Seq != info.Head+1 {
		t.Fatalf("append to the copy: %v %v", envs, err)
	}
	mustVerify(t, c, info.Head+1)
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestBackupEnds: a store with no event is copied, begin told so; a
// begin that refuses writes nothing; a done context ends the copy with
// its error; a closed store refuses.
func TestBackupEnds(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, Options{})
	var empty bytes.Buffer
	var info *BackupInfo
	if n, err := s.Backup(ctx, &empty, func(i BackupInfo) error { info = &i; return nil }); err != nil || info == nil ||
		info.Head != 0 || info.Hash != "" || info.Size != n || n != int64(empty.Len()) {
		t.Fatalf("backup of a store with no event: %d bytes, %v, begin told %+v", n, err, info)
	}
	if _, err := s.Append(ctx, cmd("tag")); err != nil {
		t.Fatal(err)
	}
	no := errors.New("no")
	var buf bytes.Buffer
	if _, err := s.Backup(ctx, &buf, func(BackupInfo) error { return no }); !errors.Is(err, no) || buf.Len() != 0 {
		t.Fatalf("refused by begin: %v, %d bytes written", err, buf.Len())
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Backup(cctx, &buf, nil); !errors.Is(err, context.Canceled) || buf.Len() != 0 {
		t.Fatalf("done context: %v, %d bytes written", err, buf.Len())
	}
	s.Close()
	if _, err := s.Backup(ctx, &buf, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("closed store: %v", err)
	}
}

// A ledger whose last event cannot be read is not copied: the copy would
// be announced to end at a head nobody can check. Nothing is written and
// begin is not called.
func TestBackupRefusesAnUnreadableHead(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, Options{})
	for range 3 {
		if _, err := s.Append(ctx, cmd("tag")); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketEvents).Put(seqKey(3), []byte("{garbled")) }); err != nil {
		t.Fatal(err)
	}
	var w bytes.Buffer
	began := false
	_, err := s.Backup(ctx, &w, func(BackupInfo) error { began = true; return nil })
	if !errors.Is(err, ErrCorrupt) || began || w.Len() != 0 {
		t.Fatalf("backup of a ledger whose head is garbled: %v, begun %v, %d bytes written", err, began, w.Len())
	}
}
