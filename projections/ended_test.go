package projections

import (
	"testing"
	"time"

	"github.com/recledger/recledger/ledger"
)

// An extension gone quiet kept its ends for good (add prunes only the
// extension a call ends on; an upgrade walk's backfill left 11,128 ends in
// the checkpoint): a seal forgets every end seen more than the window
// before it, and the extensions left with none.
func TestSealForgetsOldEnds(t *testing.T) {
	g := newEnvGen(t)
	g.config(genConfig(2, 0))
	for i, ext := range []string{"3000", "3001"} {
		id := []string{"a", "b"}[i]
		g.add(ledger.TypeCallSignal, time.Second, ledger.CallSignal{CallID: id, Extension: ext, Type: ledger.SignalRinging, Transport: "http"})
		g.add(ledger.TypeCallSignal, time.Second, ledger.CallSignal{CallID: id, Extension: ext, Type: ledger.SignalEnded, Transport: "http"})
	}
	g.add(ledger.TypeCallSignal, 2*time.Hour, ledger.CallSignal{CallID: "c", Extension: "3001", Type: ledger.SignalRinging, Transport: "http"})
	g.add(ledger.TypeCallSignal, time.Second, ledger.CallSignal{CallID: "c", Extension: "3001", Type: ledger.SignalEnded, Transport: "http"})
	s := fold(t, g.out, false)
	if len(s.ended["3000"].List) != 1 || len(s.ended["3001"].List) != 1 {
		t.Fatalf("before the seal: %+v", s.ended)
	}
	g.add(ledger.TypeDayClosed, time.Minute, ledger.DayClosed{Day: g.now.Format(time.DateOnly), By: ledger.SealRequest})
	if _, err := s.Apply(&g.out[len(g.out)-1]); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.ended["3000"]; ok || len(s.ended["3001"].List) != 1 || s.ended["3001"].List[0].CallID != "c" {
		t.Errorf("after the seal: %+v", s.ended)
	}
}

// A signal that changed nothing names the agent at its extension, so a
// trace by user shows it (a walk's `--user` trace missed a resent held
// of its own call).
func TestIgnoredSignalNamesTheExtensionsAgent(t *testing.T) {
	g := newEnvGen(t)
	g.config(genConfig(2, 0)) // u0 on 3000
	s := fold(t, g.out, false)
	for _, typ := range []string{ledger.SignalHeld, ledger.SignalEnded} {
		eff, err := s.Apply(g.add(ledger.TypeCallSignal, time.Second, ledger.CallSignal{CallID: "gone", Extension: "3000", Type: typ, Transport: "http"}))
		if err != nil {
			t.Fatal(err)
		}
		if eff.Ignored != IgnoredUnknownCall || len(eff.Users) != 1 || eff.Users[0] != "u0" {
			t.Errorf("%s of no call: %+v", typ, eff)
		}
	}
	eff, _ := s.Apply(g.add(ledger.TypeCallSignal, time.Second, ledger.CallSignal{CallID: "gone", Extension: "3000", Type: ledger.SignalRinging, Transport: "http",
		At: ledger.T(g.now.Add(-time.Minute))}))
	if eff.Ignored != IgnoredLate || len(eff.Users) != 1 || eff.Users[0] != "u0" {
		t.Errorf("a start after its end: %+v", eff)
	}
}
