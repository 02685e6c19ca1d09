package replay_test

import (
	"flag"
	"os"
	"testing"
)

// TestMain takes -update as -rewrite: the golden files under testdata/
// are rewritten with what the code gives now (review the diff).
func TestMain(m *testing.M) {
	update := flag.Bool("update", false, "rewrite the golden files under testdata/ (as -rewrite)")
	flag.Parse()
	if *update {
		if err := flag.Set("rewrite", "true"); err != nil {
			panic(err)
		}
	}
	os.Exit(m.Run())
}
