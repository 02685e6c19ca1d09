//go:build !(linux || darwin || freebsd)

package ledger

// FreeBytes cannot tell the free space here; ProbeWrite relies on its
// commit alone.
func FreeBytes(string) (uint64, bool) { return 0, false }
