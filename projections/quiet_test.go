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

// TestFoldWithoutResults checks that a fold that makes no command results
// reaches the same state and touches the same users.
func TestFoldWithoutResults(t *testing.T) {
	g := newEnvGen(t)
	g.config(genConfig(12, 30))
	g.random(rand.New(rand.NewSource(11)), 12, 3000)
	full, bare := New(), New()
	if was := bare.SetResults(false); !was {
		t.Fatal("a new state makes no results")
	}
	results := 0
	for i := range g.out {
		a, err := full.Apply(&g.out[i])
		if err != nil {
			t.Fatal(err)
		}
		b, err := bare.Apply(&g.out[i])
		if err != nil {
			t.Fatal(err)
		}
		if a.Result != nil {
			results++
		}
		if b.Result != nil || !reflect.DeepEqual(a.Users, b.Users) || !reflect.DeepEqual(a.Changes, b.Changes) {
			t.Fatalf("seq %d: %+v %v %q / %+v %v %q", g.out[i].Seq, a.Result, a.Users, a.Changes, b.Result, b.Users, b.Changes)
		}
	}
	if results == 0 {
		t.Fatal("no command results: the test checks nothing")
	}
	if full.Digest() != bare.Digest() {
		t.Fatal("folds with and without results reach different states")
	}
	if bare.SetResults(true) {
		t.Fatal("SetResults(false) did not stick")
	}
}
