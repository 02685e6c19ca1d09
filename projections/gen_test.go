package projections

import (
	"fmt"
	"math/rand"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/recledger/recledger/ledger"
)

// envGen builds a sequence of sealed envelopes for property tests and
// benchmarks.
type envGen struct {
	tb   testing.TB
	seq  uint64
	now  time.Time
	prev string
	out  []ledger.Envelope

	clientTimes bool // realistic: signals carry their own time (At), as a CTI feed's may
	version     int  // the events' version; 0 is ledger.CurrentVersion
}

func newEnvGen(tb testing.TB) *envGen {
	return &envGen{tb: tb, now: scriptDay.Add(8 * time.Hour)}
}

func (g *envGen) add(typ ledger.Type, step time.Duration, data any) *ledger.Envelope {
	g.now = g.now.Add(step)
	g.seq++
	raw, err := ledger.EncodeData(data)
	if err != nil {
		g.tb.Fatal(err)
	}
	id := ulid.MustNew(ulid.Timestamp(g.now), seqEntropy(g.seq))
	version := ledger.CurrentVersion
	if g.version != 0 {
		version = g.version
	}
	e := ledger.Envelope{Seq: g.seq, ID: id, Time: ledger.T(g.now), Type: typ, Version: version, Data: raw}
	if _, err := e.Seal(g.prev); err != nil {
		g.tb.Fatal(err)
	}
	g.prev = e.Hash
	g.out = append(g.out, e)
	return &g.out[len(g.out)-1]
}

// genConfig is a site with agents of every recording type, four teams and
// every metadata type.
func genConfig(agents int, maxPause int) ledger.Config {
	c := ledger.Config{
		Site: ledger.Site{MaxPauseSeconds: maxPause, ServerHost: "qm"},
		Metadata: map[string]ledger.MetadataKey{"account": {Type: ledger.MetaNumber}, "name": {Type: ledger.MetaText},
			"callback": {Type: ledger.MetaDate}},
		Teams: map[string]ledger.Team{
			"a": {Exclusion: []string{"+1800*"}, Classifiers: []ledger.Classifier{{Direction: "inbound", Percent: 30}}, RetentionDays: 30, TaggedRetentionDays: 90},
			"b": {Archive: true, Inclusion: []string{"3*"}, RetentionDays: 10, TaggedRetentionDays: 20},
			"c": {Exclusion: []string{"9999"}, Classifiers: []ledger.Classifier{{Direction: "outbound", NumberPattern: "+1*", Percent: 100}}},
			"g": {Archive: true, Exclusion: []string{"+1800*"}},
		},
		Users: map[string]ledger.User{},
	}
	types := []string{ledger.RecDesktop, ledger.RecServer, ledger.RecNetwork, ledger.RecGateway}
	teams := []string{"a", "b", "c", "g"}
	for i := 0; i < agents; i++ {
		c.Users[fmt.Sprintf("u%d", i)] = ledger.User{Name: fmt.Sprintf("User %d", i), Team: teams[i%4],
			Recording: types[i%4], Extension: fmt.Sprintf("%d", 3000+i)}
	}
	c.Normalize()
	return c
}

func (g *envGen) config(c ledger.Config) {
	v, err := ledger.EncodeData(c)
	if err != nil {
		g.tb.Fatal(err)
	}
	g.add(ledger.TypeConfig, time.Second, ledger.ConfigChange{Part: ledger.PartDocument, Op: ledger.OpPut, Value: v})
}

var (
	genSignals  = []string{ledger.SignalRinging, ledger.SignalDialing, ledger.SignalAnswered, ledger.SignalHeld, ledger.SignalRetrieved, ledger.SignalEnded, ledger.SignalEnded}
	genCommands = []string{"tag", "recordtag", "pause", "pauseurl", "resume", "restart", "delete", "login", "logout",
		"metadata", "startsegment", "stopsegment", "start", "stop", "config", "bogus"}
	genDirs    = []string{ledger.DirectionInbound, ledger.DirectionOutbound, ledger.DirectionInternal, ""}
	genNumbers = []string{"+13125550100", "+18005550000", "9999", "3001", "+14155550100", ""}
)

// random appends n random events (any order, any sender) over agents users.
func (g *envGen) random(rng *rand.Rand, agents, n int) {
	for i := 0; i < n; i++ {
		step := time.Duration(rng.Intn(30000)) * time.Millisecond
		switch k := rng.Intn(20); {
		case k < 8:
			cs := ledger.CallSignal{CallID: fmt.Sprintf("c%d", rng.Intn(12)), Extension: fmt.Sprintf("%d", 3000+rng.Intn(agents+2)),
				Type: genSignals[rng.Intn(len(genSignals))], Direction: genDirs[rng.Intn(len(genDirs))],
				ANI: genNumbers[rng.Intn(len(genNumbers))], DNIS: genNumbers[rng.Intn(len(genNumbers))], Transport: "nats"}
			if rng.Intn(4) == 0 { // a client time, possibly before the previous event
				cs.At = ledger.T(g.now.Add(time.Duration(rng.Intn(20000)-15000) * time.Millisecond))
			}
			g.add(ledger.TypeCallSignal, step, cs)
		case k < 17:
			c := ledger.Command{Command: genCommands[rng.Intn(len(genCommands))], Transport: "http"}
			switch rng.Intn(6) {
			case 0:
				c.Extension = fmt.Sprintf("%d", 3000+rng.Intn(agents+2))
			case 1:
				c.SenderID = "nobody"
			default:
				c.SenderID = fmt.Sprintf("u%d", rng.Intn(agents))
			}
			if c.Command == "login" && rng.Intn(5) > 0 {
				c.Extension = fmt.Sprintf("%d", 3000+rng.Intn(agents+2))
			}
			if c.Command == "metadata" {
				keys := []string{"account", "name", "callback", "other"}
				vals := []string{"12", ".5", "x&y", "2026-02-30", "2026-12-01", "", "Jane"}
				for j := rng.Intn(4); j >= 0; j-- {
					c.Params = append(c.Params, ledger.Param{Key: keys[rng.Intn(len(keys))], Value: vals[rng.Intn(len(vals))]})
				}
			}
			if rng.Intn(40) == 0 {
				c.Invalid, c.Message = "invalid_input", "bad"
			}
			g.add(ledger.TypeCommand, step, c)
		case k < 19:
			// a timer for some recent event (maybe a pause, maybe not)
			id := ""
			if len(g.out) > 0 {
				id = g.out[rng.Intn(len(g.out))].ID.String()
			}
			g.add(ledger.TypeTimer, step, ledger.TimerFired{Timer: ledger.TimerPauseExpiry, PauseOpenID: id, Due: ledger.T(g.now)})
		default:
			day := g.now.Add(step).Format(time.DateOnly)
			g.add(ledger.TypeDayClosed, step, ledger.DayClosed{Day: day, By: ledger.SealRequest})
		}
	}
}

// answered rings call id on user u's extension, step after the last
// event, and answers it: a contact opens.
func (g *envGen) answered(u int, id string, step time.Duration) {
	ext := fmt.Sprintf("%d", 3000+u)
	g.add(ledger.TypeCallSignal, step, ledger.CallSignal{CallID: id, Extension: ext, Type: ledger.SignalRinging, Direction: ledger.DirectionInbound, ANI: "+13125550100", DNIS: "8001"})
	g.add(ledger.TypeCallSignal, time.Second, ledger.CallSignal{CallID: id, Extension: ext, Type: ledger.SignalAnswered})
}

// hungUp ends call id on user u's extension.
func (g *envGen) hungUp(u int, id string) {
	g.add(ledger.TypeCallSignal, time.Second, ledger.CallSignal{CallID: id, Extension: fmt.Sprintf("%d", 3000+u), Type: ledger.SignalEnded})
}

// command has user u send command c.
func (g *envGen) command(u int, c string) {
	g.add(ledger.TypeCommand, time.Second, ledger.Command{Command: c, SenderID: fmt.Sprintf("u%d", u)})
}

// call has user u answer call id and hang up: a contact closes, the
// user's last call.
func (g *envGen) call(u int, id string) {
	g.answered(u, id, time.Minute)
	g.hungUp(u, id)
}

// foldInto applies g's events from the i-th on to each of ss, and returns
// how many g has.
func foldInto(t *testing.T, g *envGen, i int, ss ...*State) int {
	t.Helper()
	for ; i < len(g.out); i++ {
		for _, s := range ss {
			if _, err := s.Apply(&g.out[i]); err != nil {
				t.Fatal(err)
			}
		}
	}
	return len(g.out)
}

// at is the client time of a signal added step from now, when the
// generator gives signals their own times; zero otherwise.
func (g *envGen) at(step time.Duration) ledger.Time {
	if !g.clientTimes {
		return ledger.Time{}
	}
	return ledger.T(g.now.Add(step))
}

// realistic appends calls agents handle one after another: ring, maybe a
// PCI pause and resume, maybe a tag, maybe metadata, end. n is about the
// number of events.
func (g *envGen) realistic(rng *rand.Rand, agents, n int) {
	call := 0
	for len(g.out) < n {
		u := rng.Intn(agents)
		user, ext := fmt.Sprintf("u%d", u), fmt.Sprintf("%d", 3000+u)
		call++
		id := fmt.Sprintf("call-%d", call)
		g.add(ledger.TypeCallSignal, 200*time.Millisecond, ledger.CallSignal{CallID: id, Extension: ext, Type: ledger.SignalRinging,
			Direction: ledger.DirectionInbound, ANI: genNumbers[rng.Intn(3)], DNIS: "8001", At: g.at(200 * time.Millisecond), Transport: "nats"})
		g.add(ledger.TypeCallSignal, 100*time.Millisecond, ledger.CallSignal{CallID: id, Extension: ext, Type: ledger.SignalAnswered,
			At: g.at(100 * time.Millisecond), Transport: "nats"})
		if rng.Intn(3) == 0 {
			g.add(ledger.TypeCommand, 100*time.Millisecond, ledger.Command{Command: "pause", SenderID: user, Transport: "finesse"})
			g.add(ledger.TypeCommand, 100*time.Millisecond, ledger.Command{Command: "resume", SenderID: user, Transport: "finesse"})
		}
		if rng.Intn(4) == 0 {
			g.add(ledger.TypeCommand, 100*time.Millisecond, ledger.Command{Command: "tag", SenderID: user, Transport: "cad"})
		}
		if rng.Intn(3) == 0 {
			g.add(ledger.TypeCommand, 100*time.Millisecond, ledger.Command{Command: "metadata", SenderID: user, Transport: "finesse",
				Params: []ledger.Param{{Key: "account", Value: "12345"}, {Key: "name", Value: "Jane Doe"}}})
		}
		g.add(ledger.TypeCallSignal, 100*time.Millisecond, ledger.CallSignal{CallID: id, Extension: ext, Type: ledger.SignalEnded,
			At: g.at(100 * time.Millisecond), Transport: "nats"})
	}
}
