package projections

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
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

// FuzzConfigDocument holds the fold to the validator: any configuration
// document the API would accept (decoded strictly, normalized, valid)
// folds without error as a whole document, Config gives it back
// unchanged, and putting its parts one by one (site, metadata keys,
// teams, users) folds to the same configuration and caches.
func FuzzConfigDocument(f *testing.F) {
	for _, c := range []ledger.Config{genConfig(5, 30), {}} {
		b, err := ledger.EncodeData(c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add([]byte(b))
	}
	f.Add([]byte(`{"site":{"timezone":"Europe/Paris","upload_time":"01:30"},"users":{"a":{"recording":"gateway","team":"t","extension":"+1#2"},"b":{"recording":"server","team":"t","extension":"+1#2"}}}`))
	f.Add([]byte(`{"teams":{"t":{"classifiers":[{"direction":"any","number_pattern":"*9","percent":100}]}},"metadata":{"k":{"type":"date"}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		var doc ledger.Config
		if dec.Decode(&doc) != nil {
			return
		}
		doc.Normalize()
		if doc.Validate() != nil {
			return
		}
		want, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		enc := func(v any) []byte {
			b, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		apply := func(s *State, g *envGen, c ledger.ConfigChange) {
			if _, err := s.Apply(g.add(ledger.TypeConfig, time.Second, c)); err != nil {
				t.Fatalf("%s %s: %v", c.Part, c.Key, err)
			}
		}
		whole, g := New(), newEnvGen(t)
		apply(whole, g, ledger.ConfigChange{Part: ledger.PartDocument, Op: ledger.OpPut, Value: want})
		if got := enc(whole.Config()); !bytes.Equal(got, want) {
			t.Fatalf("folded document\n%s\nis not the one put\n%s", got, want)
		}

		parts, g := New(), newEnvGen(t)
		apply(parts, g, ledger.ConfigChange{Part: ledger.PartSite, Op: ledger.OpPut, Value: enc(doc.Site)})
		for _, k := range slices.Sorted(maps.Keys(doc.Metadata)) {
			apply(parts, g, ledger.ConfigChange{Part: ledger.PartMetadata, Op: ledger.OpPut, Key: k, Value: enc(doc.Metadata[k])})
		}
		for _, k := range slices.Sorted(maps.Keys(doc.Teams)) {
			apply(parts, g, ledger.ConfigChange{Part: ledger.PartTeam, Op: ledger.OpPut, Key: k, Value: enc(doc.Teams[k])})
		}
		for _, k := range slices.Sorted(maps.Keys(doc.Users)) {
			parts.member(k) // made before a later change, to be mended
			apply(parts, g, ledger.ConfigChange{Part: ledger.PartUser, Op: ledger.OpPut, Key: k, Value: enc(doc.Users[k])})
		}
		if got := enc(parts.Config()); !bytes.Equal(got, want) {
			t.Fatalf("document put part by part\n%s\nis not the one put whole\n%s", got, want)
		}
		if parts.loc.String() != whole.loc.String() || parts.uploadMin != whole.uploadMin {
			t.Fatalf("site caches: parts %s %d, whole %s %d", parts.loc, parts.uploadMin, whole.loc, whole.uploadMin)
		}
		checkCaches(t, parts, "parts")
	})
}

// TestOutOfRangeConfigIsBounded: a ledger written before configuration
// numbers were bounded may hold a max_pause_seconds and a retention too
// large for a time.Duration or a four-digit year. The fold bounds them as
// validation does now: the pause expires a day after it opened, not
// before, and the retention date is 36,500 days on.
func TestOutOfRangeConfigIsBounded(t *testing.T) {
	g := newEnvGen(t)
	c := genConfig(4, 9_300_000_000)
	a := c.Teams["a"]
	a.TaggedRetentionDays = 1<<31 - 1
	c.Teams["a"] = a
	g.config(c)
	g.add(ledger.TypeCallSignal, time.Second, ledger.CallSignal{CallID: "c-1", Extension: "3000", Type: ledger.SignalRinging, Direction: ledger.DirectionInbound, ANI: "+13125550100"})
	g.add(ledger.TypeCallSignal, time.Second, ledger.CallSignal{CallID: "c-1", Extension: "3000", Type: ledger.SignalAnswered})
	g.add(ledger.TypeCommand, time.Second, ledger.Command{Command: "tag", SenderID: "u0", Transport: "cad"})
	paused := g.add(ledger.TypeCommand, time.Second, ledger.Command{Command: "pause", SenderID: "u0", Transport: "cad"})
	s := New()
	for i := range g.out {
		if _, err := s.Apply(&g.out[i]); err != nil {
			t.Fatal(err)
		}
	}
	tm, ok := s.NextTimer()
	if want := paused.Time.Add(ledger.MaxPauseSecondsLimit * time.Second); !ok || !tm.Due.Equal(want) {
		t.Fatalf("next timer %+v %v, want due %s", tm, ok, want)
	}
	if _, err := s.Apply(g.add(ledger.TypeCallSignal, time.Second, ledger.CallSignal{CallID: "c-1", Extension: "3000", Type: ledger.SignalEnded})); err != nil {
		t.Fatal(err)
	}
	cs := contactsOf(t, s, ledger.ContactQuery{})
	want := scriptDay.AddDate(0, 0, ledger.MaxRetentionDays).Format(time.DateOnly)
	if len(cs) != 1 || cs[0].RetainUntil != want {
		t.Fatalf("contacts %+v, want one retained until %s", cs, want)
	}
}

// A configuration change names the users it is about, so that a trace of
// one user (replay --user) shows it: a user put or deleted, the users of
// a team put, the users a whole document changes, added or removes.
func TestConfigChangeNamesItsUsers(t *testing.T) {
	g := newEnvGen(t)
	s := New()
	apply := applier(t, s)
	c := genConfig(4, 0) // u0..u3 in teams a, b, c, g
	g.config(c)
	if eff := apply(&g.out[len(g.out)-1]); !slices.Equal(eff.Users, []string{"u0", "u1", "u2", "u3"}) {
		t.Errorf("first document: users %v", eff.Users)
	}
	u1 := c.Users["u1"]
	u1.Extension = "3999"
	c.Users["u1"] = u1
	delete(c.Users, "u3")
	g.config(c)
	if eff := apply(&g.out[len(g.out)-1]); !slices.Equal(eff.Users, []string{"u1", "u3"}) ||
		!strings.Contains(eff.Changes[0], `; user u1 → {"name":"User 1","team":"b","recording":"server","extension":"3999"}; user u3 removed`) {
		t.Errorf("document changing u1, removing u3: %+v", eff)
	}
	v, _ := ledger.EncodeData(u1)
	eff := apply(g.add(ledger.TypeConfig, time.Second, ledger.ConfigChange{Part: ledger.PartUser, Op: ledger.OpPut, Key: "u1", Value: v}))
	if !slices.Equal(eff.Users, []string{"u1"}) || !strings.Contains(eff.Changes[0], `→ {"name":"User 1"`) {
		t.Errorf("user put: %+v", eff)
	}
	tv, _ := ledger.EncodeData(c.Teams["a"])
	if eff := apply(g.add(ledger.TypeConfig, time.Second, ledger.ConfigChange{Part: ledger.PartTeam, Op: ledger.OpPut, Key: "a", Value: tv})); !slices.Equal(eff.Users, []string{"u0"}) || eff.All {
		t.Errorf("team a put: users %v, all %v", eff.Users, eff.All)
	}
	// The site's settings and the metadata keys are every user's: a trace
	// by user shows their changes (an auditor's walk missed the change of
	// max_pause_seconds that ended a user's pauses).
	c.Site.MaxPauseSeconds = 2
	sv, _ := ledger.EncodeData(c.Site)
	if eff := apply(g.add(ledger.TypeConfig, time.Second, ledger.ConfigChange{Part: ledger.PartSite, Op: ledger.OpPut, Value: sv})); !eff.All {
		t.Errorf("site put: %+v", eff)
	}
	mv, _ := ledger.EncodeData(ledger.MetadataKey{Type: "text"})
	if eff := apply(g.add(ledger.TypeConfig, time.Second, ledger.ConfigChange{Part: ledger.PartMetadata, Op: ledger.OpPut, Key: "note", Value: mv})); !eff.All {
		t.Errorf("metadata put: %+v", eff)
	}
	c.Metadata["note"] = ledger.MetadataKey{Type: "text"}
	g.config(c)
	if eff := apply(&g.out[len(g.out)-1]); eff.All {
		t.Errorf("a document changing no site setting or key: %+v", eff)
	}
	c.Site.MaxPauseSeconds = 30
	g.config(c)
	if eff := apply(&g.out[len(g.out)-1]); !eff.All {
		t.Errorf("a document changing max_pause_seconds: %+v", eff)
	}
}

// Each event is folded with the rules of its version: a ledger written
// before the rules of version 2 folds as it did then (its sealed
// manifests and the answers its clients got do not change with an
// upgrade), and the same commands as version 2 events get today's rules.
func TestEventsFoldWithTheRulesOfTheirVersion(t *testing.T) {
	for _, tc := range []struct {
		version                        int
		login, resend, updates, retain string
	}{
		{1, "applied", "applied", "1", "5881637-06-02"},
		{2, "rejected invalid_extension", "no_effect unchanged", "0", "2126-10-30"},
	} {
		t.Run(fmt.Sprint("version ", tc.version), func(t *testing.T) {
			g := newEnvGen(t)
			g.version = tc.version
			c := genConfig(2, 0)
			a := c.Teams["a"]
			a.TaggedRetentionDays = 1<<31 - 1 // taken before version 2's bound
			c.Teams["a"] = a
			c.Metadata["account"] = ledger.MetadataKey{Type: ledger.MetaNumber}
			g.config(c)
			s := New()
			apply := applier(t, s)
			apply(&g.out[0])
			outcome := func(eff Effect) string {
				return strings.TrimSpace(eff.Result.Outcome + " " + eff.Result.Reason)
			}
			if got := outcome(apply(g.add(ledger.TypeCommand, time.Second, ledger.Command{Command: "login", SenderID: "u1", Extension: "abc*", Transport: "cad"}))); got != tc.login {
				t.Errorf("login to abc*: %s, want %s", got, tc.login)
			}
			for _, sig := range []string{ledger.SignalRinging, ledger.SignalAnswered} {
				apply(g.add(ledger.TypeCallSignal, time.Second, ledger.CallSignal{CallID: "c-1", Extension: "3000", Type: sig, Direction: ledger.DirectionInbound, ANI: "+13125550100"}))
			}
			apply(g.add(ledger.TypeCommand, time.Second, ledger.Command{Command: "tag", SenderID: "u0", Transport: "cad"}))
			apply(g.add(ledger.TypeCallSignal, time.Second, ledger.CallSignal{CallID: "c-1", Extension: "3000", Type: ledger.SignalEnded}))
			apply(g.add(ledger.TypeDayClosed, time.Second, ledger.DayClosed{Day: "2026-11-23", By: ledger.SealRequest}))
			meta := ledger.Command{Command: "metadata", SenderID: "u0", Transport: "finesse", Params: []ledger.Param{{Key: "account", Value: "5"}}}
			apply(g.add(ledger.TypeCommand, time.Second, meta))
			apply(g.add(ledger.TypeDayClosed, time.Second, ledger.DayClosed{Day: "2026-11-24", By: ledger.SealRequest}))
			if got := outcome(apply(g.add(ledger.TypeCommand, time.Second, meta))); got != tc.resend {
				t.Errorf("metadata sent again: %s, want %s", got, tc.resend)
			}
			apply(g.add(ledger.TypeDayClosed, time.Second, ledger.DayClosed{Day: "2026-11-25", By: ledger.SealRequest}))
			type manifest struct {
				Updates []struct {
					Contact ledger.Contact `json:"contact"`
				} `json:"metadata_updates"`
			}
			var first, second manifest
			for day, m := range map[string]*manifest{"2026-11-24": &first, "2026-11-25": &second} {
				b, err := s.Manifest(t.Context(), day)
				if err != nil || json.Unmarshal(b, m) != nil {
					t.Fatalf("manifest %s: %v %s", day, err, b)
				}
			}
			if len(first.Updates) != 1 || first.Updates[0].Contact.RetainUntil != tc.retain {
				t.Errorf("first update: %+v, want retained until %s", first.Updates, tc.retain)
			}
			if got := fmt.Sprint(len(second.Updates)); got != tc.updates {
				t.Errorf("updates after the value was sent again: %s, want %s", got, tc.updates)
			}
		})
	}
}

// applier folds one event into s and returns its effect, failing t on an
// error.
func applier(t *testing.T, s *State) func(*ledger.Envelope) Effect {
	return func(e *ledger.Envelope) Effect {
		t.Helper()
		eff, err := s.Apply(e)
		if err != nil {
			t.Fatal(err)
		}
		return eff
	}
}

// TestCheckpointOfNewerEventsIsRefused: a checkpoint names the newest event
// version it folded, and a build that cannot fold such events does not
// load it (it would serve, and append to, a ledger it cannot read).
func TestCheckpointOfNewerEventsIsRefused(t *testing.T) {
	g := newEnvGen(t)
	g.config(genConfig(1, 0))
	s := New()
	apply := applier(t, s)
	apply(&g.out[0])
	b, err := s.MarshalCheckpoint()
	if err != nil {
		t.Fatal(err)
	}
	mine := fmt.Sprintf(`"rules":%d,`, ledger.CurrentVersion)
	if !bytes.Contains(b, []byte(mine)) {
		t.Fatalf("the checkpoint does not name version %d: %.200s", ledger.CurrentVersion, b)
	}
	if _, err := UnmarshalCheckpoint(t.Context(), b, memSections{}); err != nil {
		t.Fatalf("this build's own checkpoint: %v", err)
	}
	newer := bytes.Replace(b, []byte(mine), fmt.Appendf(nil, `"rules":%d,`, ledger.CurrentVersion+1), 1)
	if _, err := UnmarshalCheckpoint(t.Context(), newer, memSections{}); !errors.Is(err, ledger.ErrUnknownVersion) {
		t.Fatalf("a checkpoint of newer events: %v", err)
	}
}
