package ledgertest

import (
	"flag"
	"testing"
)

// RunGolden runs a package's tests taking -update as -rewrite: the
// golden files under testdata/ (datadriven's) are rewritten with what the
// code gives now, for review of the diff. A package whose tests read
// golden files calls it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(ledgertest.RunGolden(m)) }
func RunGolden(m *testing.M) int {
	update := flag.Bool("update", false, "rewrite the golden files under testdata/ (as -rewrite)")
	flag.Parse()
	if *update {
		if err := flag.Set("rewrite", "true"); err != nil {
			panic(err)
		}
	}
	return m.Run()
}
