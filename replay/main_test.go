package replay_test

import (
	"os"
	"testing"

	"github.com/recledger/recledger/ledger/ledgertest"
)

// TestMain takes -update as -rewrite for the golden files under testdata/.
func TestMain(m *testing.M) { os.Exit(ledgertest.RunGolden(m)) }
