package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// ServingFile names the file a running `serve` keeps in its data dir: where
// it can be reached. bbolt lets one process write a file and no other
// process read it meanwhile, so the offline commands, finding the ledger
// locked, read this file to say who holds it and, for `replay`, to read
// the same events from that server's JetStream mirror instead.
const ServingFile = "serving.json"

// servingInfo is ServingFile's content.
type servingInfo struct {
	PID  int    `json:"pid"`
	HTTP string `json:"http"` // base URL of the HTTP API
	NATS string `json:"nats"` // NATS URL(s) of the mirror, without credentials
	Site string `json:"site"`
}

// writeServing records info in dir, replacing any earlier file whole.
func writeServing(dir string, info servingInfo) error {
	info.NATS = withoutCredentials(info.NATS)
	b, err := json.Marshal(info)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, ServingFile+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, ServingFile))
}

// removeServing removes dir's ServingFile when it is this process's.
func removeServing(dir string) {
	if info, err := readServingFile(dir); err == nil && info.PID == os.Getpid() {
		_ = os.Remove(filepath.Join(dir, ServingFile))
	}
}

// readServing is the running server of dir; ok is false when there is no
// file, or its process is gone (a server that was killed leaves it).
func readServing(dir string) (info servingInfo, ok bool) {
	info, err := readServingFile(dir)
	if err != nil || info.PID <= 0 {
		return info, false
	}
	if err := syscall.Kill(info.PID, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return info, false
	}
	return info, true
}

func readServingFile(dir string) (servingInfo, error) {
	var info servingInfo
	b, err := os.ReadFile(filepath.Join(dir, ServingFile))
	if err != nil {
		return info, err
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return info, fmt.Errorf("%s: %w", ServingFile, err)
	}
	return info, nil
}

// withoutCredentials drops user:password@ from each URL of a
// comma-separated list: the file is readable by the data dir's readers.
func withoutCredentials(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			u.User = nil
			parts[i] = u.String()
		}
	}
	return strings.Join(parts, ",")
}
