//go:build !(linux || darwin || freebsd)

package ledger

// freeBytes cannot tell the free space here; ProbeWrite relies on its
// commit alone.
func freeBytes(string) (uint64, bool) { return 0, false }
