package naive

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/recledger/recledger/cmd/internal/simulator"
)

// TestSimulatorAgainstNaive plays a small day against the naive server: it
// stores exactly the requests the simulator expects to be appended.
func TestSimulatorAgainstNaive(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "naive.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	rep, err := simulator.Run(context.Background(), simulator.Config{URL: srv.URL, Agents: 6, CallsPerAgent: 5, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.Count()
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Check.Match || n != uint64(rep.Check.Expected) || n == 0 {
		t.Fatalf("stored %d, simulator expected %d, check %+v", n, rep.Check.Expected, rep.Check)
	}
	if rep.HTTPErrors["404"] == 0 || rep.HTTPErrors["413"] == 0 {
		t.Fatalf("bad input was not refused: %v", rep.HTTPErrors)
	}
}
