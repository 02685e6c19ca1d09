package uploadworker

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// tempPrefix starts every temporary file; final names never start with a dot.
const tempPrefix = ".upload-"

// writeResult says what writeAtomic did.
type writeResult int

const (
	written  writeResult = iota // the file was created (or replaced)
	skipped                     // the file already held exactly these bytes
	replaced                    // the file held other bytes and was replaced
)

// writeAtomic makes dir/name hold body: a temp file in dir is written,
// fsynced and renamed over the name, so the file is either whole or absent.
// When the file already holds body, nothing is written. The rename is
// durable only once dir is fsynced (syncDir): the caller does that once
// after a manifest's files, before acking it.
func writeAtomic(dir, name string, body []byte) (writeResult, error) {
	final := filepath.Join(dir, name)
	old, err := os.ReadFile(final)
	switch {
	case err == nil && bytes.Equal(old, body):
		return skipped, nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return 0, fmt.Errorf("read %s: %w", name, err)
	}
	res := written
	if err == nil {
		res = replaced
	}
	f, err := os.CreateTemp(dir, tempPrefix+name+".*")
	if err != nil {
		return 0, fmt.Errorf("create temp for %s: %w", name, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(body); err != nil {
		return 0, fmt.Errorf("write %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("fsync %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return 0, fmt.Errorf("close %s: %w", name, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return 0, fmt.Errorf("rename %s: %w", name, err)
	}
	ok = true
	return res, nil
}

// syncDir fsyncs a directory so a rename in it is durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	return nil
}

// ensureDir creates dir (and its parent) and makes its entry durable with
// sync, of its parent: also when dir is there already, since a worker
// killed between its mkdir and that sync left it so.
func ensureDir(dir string, sync func(string) error) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("mkdir %s: %w", dir, err)
	}
	return sync(filepath.Dir(dir))
}

// sweepTemps removes temporary files in dir last written before cutoff:
// what a worker killed in the middle of a write left behind. A write
// takes milliseconds, so an old temp file belongs to nobody; a live
// writer whose temp file was removed anyway fails its rename and retries.
func sweepTemps(dir string, cutoff time.Time) (int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, nil
		}
		return 0, fmt.Errorf("sweep %s: %w", dir, err)
	}
	n := 0
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), tempPrefix) {
			continue
		}
		info, err := e.Info()
		if err != nil || !info.ModTime().Before(cutoff) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err == nil {
			n++
		}
	}
	return n, nil
}
