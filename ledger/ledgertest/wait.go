package ledgertest

import (
	"testing"
	"time"
)

// WaitGuard is how long a wait polls before it gives up: a guard against
// a hang, long enough for a loaded shared machine, never a measure of
// speed.
const WaitGuard = 30 * time.Second

// Waited polls cond every 10 ms until it holds (true) or WaitGuard has
// passed (false), for a caller that says more than WaitFor when it fails.
func Waited(cond func() bool) bool {
	for deadline := time.Now().Add(WaitGuard); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

// WaitFor waits for cond as Waited does, and fails tb, naming what it
// waited for, if the guard passes without it.
func WaitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	if !Waited(cond) {
		tb.Fatalf("waited %v for %s", WaitGuard, what)
	}
}
