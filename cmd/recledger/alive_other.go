//go:build !unix

package main

import "os"

// processAlive reports whether a process pid exists: where there is no
// signal 0, whether it can be found.
func processAlive(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	_ = p.Release()
	return true
}
