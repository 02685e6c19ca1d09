//go:build linux

package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// lockHolders names the processes holding a lock on the file at path, as
// "pid 4991 (recledger replay --data d1)", from /proc/locks, and whether
// one holds it for writing (bbolt's exclusive lock: a serve, a restore);
// nil when they cannot be told.
func lockHolders(path string) (names []string, writer bool) {
	var st unix.Stat_t
	if unix.Stat(path, &st) != nil {
		return nil, false
	}
	f, err := os.Open("/proc/locks")
	if err != nil {
		return nil, false
	}
	defer f.Close()
	major, minor := unix.Major(st.Dev), unix.Minor(st.Dev)
	want := fmt.Sprintf(":%d", st.Ino)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// 1: FLOCK  ADVISORY  READ  4991 fd:01:1234567 0 EOF
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[1] != "FLOCK" || !strings.HasSuffix(fields[5], want) {
			continue
		}
		dev := strings.Split(fields[5], ":")
		if len(dev) != 3 {
			continue
		}
		ma, err1 := strconv.ParseUint(dev[0], 16, 64)
		mi, err2 := strconv.ParseUint(dev[1], 16, 64)
		if err1 != nil || err2 != nil || ma != uint64(major) || mi != uint64(minor) {
			continue
		}
		pid, err := strconv.Atoi(fields[4])
		if err != nil {
			continue
		}
		name := "pid " + fields[4]
		if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline"); err == nil && len(b) > 0 {
			// The program and its command only: the rest may hold a
			// secret (--token, credentials in a URL).
			args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
			name += " (" + strings.Join(args[:min(len(args), 2)], " ") + ")"
		}
		names = append(names, name)
		writer = writer || fields[3] == "WRITE"
	}
	return names, writer
}
