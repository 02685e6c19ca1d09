package projections

import (
	stdflag "flag"
	"os"
	"testing"
)

// TestMain takes -update as -rewrite: the golden files under testdata/
// are rewritten with what the code gives now (review the diff).
func TestMain(m *testing.M) {
	update := stdflag.Bool("update", false, "rewrite the golden files under testdata/ (as -rewrite)")
	stdflag.Parse()
	if *update {
		if err := stdflag.Set("rewrite", "true"); err != nil {
			panic(err)
		}
	}
	os.Exit(m.Run())
}
