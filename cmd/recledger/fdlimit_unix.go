//go:build unix

package main

import "syscall"

// openFilesLimit is the process's limit on open files (RLIMIT_NOFILE,
// the soft one, which Go raised to the hard one at start); 0 if unknown.
func openFilesLimit() uint64 {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0
	}
	return l.Cur
}
