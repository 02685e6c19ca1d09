package projections

import (
	"math/rand"
	"reflect"
	"testing"

	"github.com/recledger/recledger/ledger"
)

// TestQuietFoldsTheSame checks that a fold without change lines reaches
// the same state and gives the same results and users, and no lines.
func TestQuietFoldsTheSame(t *testing.T) {
	g := newEnvGen(t)
	g.config(genConfig(12, 30))
	g.random(rand.New(rand.NewSource(7)), 12, 3000)
	loud, quiet := New(), New()
	if was := quiet.SetQuiet(true); was {
		t.Fatal("a new state is quiet")
	}
	lines := 0
	for i := range g.out {
		a, err := loud.Apply(&g.out[i])
		if err != nil {
			t.Fatal(err)
		}
		b, err := quiet.Apply(&g.out[i])
		if err != nil {
			t.Fatal(err)
		}
		lines += len(a.Changes)
		// config changes and seals are rare and keep their lines
		if typ := g.out[i].Type; len(b.Changes) != 0 && typ != ledger.TypeConfig && typ != ledger.TypeDayClosed {
			t.Fatalf("seq %d: quiet fold wrote %q", g.out[i].Seq, b.Changes)
		}
		if !reflect.DeepEqual(a.Result, b.Result) || !reflect.DeepEqual(a.Users, b.Users) {
			t.Fatalf("seq %d: results or users differ: %+v %v / %+v %v", g.out[i].Seq, a.Result, a.Users, b.Result, b.Users)
		}
	}
	if lines == 0 {
		t.Fatal("the loud fold wrote no lines: the test checks nothing")
	}
	if loud.Digest() != quiet.Digest() {
		t.Fatal("quiet and loud folds reach different states")
	}
}
