package projections

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/recledger/recledger/ledger"
)

// TestConfigChangesMendCaches folds random configuration changes (users
// put and deleted, with shared and moved default extensions, teams changed,
// whole documents) and checks after each one that the caches a change
// mends in place are those a rebuild from the whole configuration gives:
// the default extensions' index, and every member's user and team.
func TestConfigChangesMendCaches(t *testing.T) {
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 7))
		g := newEnvGen(t)
		s := New()
		for i := range 300 {
			// Members are made as events need them: some before the
			// change, to be mended, some after.
			for range 3 {
				s.member(fmt.Sprintf("u%d", r.IntN(12)))
			}
			e := g.add(ledger.TypeConfig, time.Second, randomConfigChange(t, r))
			if _, err := s.Apply(e); err != nil {
				t.Fatalf("seed %d change %d: %v", seed, i, err)
			}
			for range 3 {
				s.member(fmt.Sprintf("u%d", r.IntN(12)))
			}
			checkCaches(t, s, fmt.Sprintf("seed %d change %d", seed, i))
		}
	}
}

func randomConfigChange(t *testing.T, r *rand.Rand) ledger.ConfigChange {
	enc := func(v any) []byte {
		b, err := ledger.EncodeData(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ext := func() string {
		if r.IntN(4) == 0 {
			return ""
		}
		return fmt.Sprintf("%d", 3000+r.IntN(4)) // few, so often shared
	}
	user := func() ledger.User {
		return ledger.User{Name: "x", Team: []string{"a", "b", "gone"}[r.IntN(3)], Recording: ledger.RecServer, Extension: ext()}
	}
	team := func() ledger.Team {
		return ledger.Team{Exclusion: []string{fmt.Sprintf("+1%d*", r.IntN(10))}, RetentionDays: 1 + r.IntN(90)}
	}
	switch n := r.IntN(20); {
	case n < 10:
		return ledger.ConfigChange{Part: ledger.PartUser, Op: ledger.OpPut, Key: fmt.Sprintf("u%d", r.IntN(12)), Value: enc(user())}
	case n < 14:
		return ledger.ConfigChange{Part: ledger.PartUser, Op: ledger.OpDelete, Key: fmt.Sprintf("u%d", r.IntN(12))}
	case n < 16:
		return ledger.ConfigChange{Part: ledger.PartTeam, Op: ledger.OpPut, Key: []string{"a", "b"}[r.IntN(2)], Value: enc(team())}
	case n < 17:
		return ledger.ConfigChange{Part: ledger.PartTeam, Op: ledger.OpDelete, Key: "b"}
	case n < 18:
		return ledger.ConfigChange{Part: ledger.PartSite, Op: ledger.OpPut, Value: enc(ledger.Site{MaxPauseSeconds: r.IntN(100)})}
	default:
		c := ledger.Config{Teams: map[string]ledger.Team{"a": team()}, Users: map[string]ledger.User{}}
		for i := range r.IntN(8) {
			c.Users[fmt.Sprintf("u%d", i*2)] = user()
		}
		return ledger.ConfigChange{Part: ledger.PartDocument, Op: ledger.OpPut, Value: enc(c)}
	}
}

// checkCaches compares s's caches with a rebuild from its configuration,
// and leaves s rebuilt.
func checkCaches(t *testing.T, s *State, at string) {
	t.Helper()
	for id, m := range s.members {
		u, ok := s.cfg.Users[id]
		if !ok {
			t.Fatalf("%s: member %s of a user no longer configured", at, id)
		}
		if m.u != u || !reflect.DeepEqual(m.team, s.cfg.Teams[u.Team]) {
			t.Fatalf("%s: member %s holds %+v of team %+v, configured %+v of team %+v", at, id, m.u, m.team, u, s.cfg.Teams[u.Team])
		}
	}
	mended := maps.Clone(s.defaults)
	for k, ids := range mended {
		mended[k] = slices.Clone(ids)
	}
	s.rebuildCaches()
	if !reflect.DeepEqual(mended, s.defaults) {
		t.Fatalf("%s: default extensions mended to %v, rebuilt %v", at, mended, s.defaults)
	}
}
