//go:build unix

package main

import "golang.org/x/sys/unix"

// diskFree is the space left to an unprivileged writer on the file
// system holding dir; ok false when it cannot be read.
func diskFree(dir string) (free uint64, ok bool) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, false
	}
	return uint64(st.Bavail) * uint64(st.Bsize), true
}
