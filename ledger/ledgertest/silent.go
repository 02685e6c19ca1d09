package ledgertest

import (
	"fmt"
	"syscall"
	"testing"
)

// SilentAddr returns a loopback address where a TCP connect neither
// succeeds nor fails until its timeout, as with a host behind a partition:
// a socket listening with no room in its accept queue, filled by one
// connection, so that the kernel drops the SYNs that follow (Linux).
func SilentAddr(tb testing.TB) string {
	tb.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		tb.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		tb.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		tb.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	// The one connection the queue takes.
	cfd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { syscall.Close(cfd) })
	if err := syscall.Connect(cfd, sa); err != nil {
		tb.Fatal(err)
	}
	return addr
}
