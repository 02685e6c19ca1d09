package main

import (
	"encoding/binary"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/replay/replaytest"
)

// An event changed in the ledger and sealed again (its own hash made
// anew, as an editor who knows the format would), beside a whole mirror:
// the ledger's chain breaks at the next event, the comparison stops at
// the changed one, and verify still finds that the mirror holds every
// event whole and says how to rebuild the ledger from it.
func TestVerifySaysHowToRebuildALedgerWithAResealedEvent(t *testing.T) {
	d := writeOfflineDay(t, true, 0)
	resealPause(t, d.dir, 7)
	out, err := runCmd(t, &VerifyCommand{}, "--data", d.dir, "--nats", d.natsURL, "--site", replaytest.Site)
	for _, want := range []string{
		"chain      FAILED at seq 8",
		"jetstream  FAILED at seq 7: seq 7: stream bytes differ from the ledger's",
		"rebuild    the ledger can be rebuilt from the mirror: move " + filepath.Join(d.dir, LedgerFile) + " away",
	} {
		if !errors.Is(err, ledger.ErrChainBroken) || !strings.Contains(out, want) {
			t.Errorf("verify of a ledger with a resealed event: %v; lacks %q:\n%s", err, want, out)
		}
	}
}

// resealPause turns event seq of dir's ledger, a pause, into a tag and
// seals it again on its prev: the event is whole, the next one's prev
// is not its hash any more.
func resealPause(t *testing.T, dir string, seq uint64) {
	t.Helper()
	editLedgerFile(t, dir, func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("events"))
		k := binary.BigEndian.AppendUint64(nil, seq)
		e, err := ledger.Decode(b.Get(k))
		if err != nil {
			return err
		}
		data := string(e.Data)
		if !strings.Contains(data, `"pause`) {
			return errors.New("not the expected pause: " + data)
		}
		e.Data, e.Raw = []byte(strings.Replace(data, `"pause`, `"tag`, 1)), nil
		raw, err := e.Seal(e.Prev)
		if err != nil {
			return err
		}
		return b.Put(k, raw)
	})
}
