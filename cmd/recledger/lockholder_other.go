//go:build !linux

package main

// lockHolders cannot tell the holders of a file lock on this system.
func lockHolders(string) ([]string, bool) { return nil, false }
