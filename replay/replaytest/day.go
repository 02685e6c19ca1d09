// Package replaytest builds realistic ledgers for the tests and benchmarks
// of replay and of the offline subcommands: a configured site, logins,
// calls with pauses, tags, metadata, deletes and segments, a seal, and the
// open business of the next morning. It writes through ledger.Store.Append,
// exactly as the server does.
package replaytest

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/recledger/recledger/ledger"
)

// Site is the site name the helpers use.
const Site = "test"

// Day is the day of the generated business (the site's timezone is UTC).
const Day = "2026-11-23"

// Start is when the generated ledger begins.
var Start = time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)

// Clock is a deterministic clock for ledger.Options.Now: every reading
// advances it by Step. Safe for concurrent use.
type Clock struct {
	mu   sync.Mutex
	t    time.Time
	Step time.Duration
}

// NewClock starts a clock at t, stepping by step.
func NewClock(t time.Time, step time.Duration) *Clock { return &Clock{t: t, Step: step} }

// Now returns the current reading and advances the clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.t
	c.t = c.t.Add(c.Step)
	return t
}

// Config is the site's configuration: three metadata keys, two teams and
// four users (three desktop agents and one gateway-recorded one).
func Config() ledger.Config {
	c := ledger.Config{
		Site: ledger.Site{UploadTime: "23:00", Timezone: "UTC", ServerHost: "qm-base-1"},
		Metadata: map[string]ledger.MetadataKey{
			"account":   {Type: ledger.MetaNumber},
			"agentname": {Type: ledger.MetaText},
			"callback":  {Type: ledger.MetaDate},
		},
		Teams: map[string]ledger.Team{
			"sales": {Exclusion: []string{"+1800555*"},
				Classifiers:   []ledger.Classifier{{Direction: ledger.DirectionInbound, NumberPattern: "*", Percent: 100}},
				RetentionDays: 90, TaggedRetentionDays: 365},
			"support": {Archive: true, RetentionDays: 30, TaggedRetentionDays: 365},
		},
		Users: map[string]ledger.User{
			"jdoe":   {Name: "Jane Doe", Team: "sales", Recording: ledger.RecDesktop, Extension: "3420", PeripheralID: "5001"},
			"asmith": {Name: "Al Smith", Team: "sales", Recording: ledger.RecDesktop, Extension: "3421"},
			"bkim":   {Name: "Bo Kim", Team: "support", Recording: ledger.RecServer, Extension: "3430"},
			"gwu":    {Name: "Gate Way", Team: "support", Recording: ledger.RecGateway, Extension: "3500"},
		},
	}
	c.Normalize()
	return c
}

// ConfigEvent is the event that sets the whole configuration document.
func ConfigEvent(c ledger.Config) ledger.Event {
	b, err := json.Marshal(c)
	if err != nil {
		panic(err) // a Config always encodes
	}
	return ledger.Event{Type: ledger.TypeConfig, Data: ledger.ConfigChange{
		Part: ledger.PartDocument, Op: ledger.OpPut, Value: b, Principal: "admin", Source: "file"}}
}

// Cmd is a command event from user with params as key, value pairs.
func Cmd(command, user string, kv ...string) ledger.Event {
	d := ledger.Command{Command: command, SenderID: user, Transport: ledger.TransportCAD, Method: "GET", Client: "10.0.0.7"}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i] == "extension" {
			d.Extension = kv[i+1]
			continue
		}
		d.Params = append(d.Params, ledger.Param{Key: kv[i], Value: kv[i+1]})
	}
	return ledger.Event{Type: ledger.TypeCommand, Data: d}
}

// Signal is a call signal event dated at by its sender (none when at is
// zero).
func Signal(callID, ext, typ, dir, ani, dnis string, at time.Time) ledger.Event {
	return ledger.Event{Type: ledger.TypeCallSignal, Data: ledger.CallSignal{
		CallID: callID, Extension: ext, Type: typ, Direction: dir, ANI: ani, DNIS: dnis,
		ACD: dir == ledger.DirectionInbound, At: ledger.T(at), Transport: ledger.TransportHTTP}}
}

// liveSignal is a call signal with no time of its own, as a live feed's
// should not (docs/clients.md): the ledger stamps it. (DayEvents' signals
// were once dated by the hours of a day while the ledger's clock takes
// seconds: all ahead of it, they are taken when the ledger took them
// since rules version 5.)
func liveSignal(callID, ext, typ, dir, ani, dnis string) ledger.Event {
	return Signal(callID, ext, typ, dir, ani, dnis, time.Time{})
}

// Seal is the day_closed event of day.
func Seal(day string) ledger.Event {
	return ledger.Event{Type: ledger.TypeDayClosed, Data: ledger.DayClosed{Day: day, By: ledger.SealRequest, Principal: "admin"}}
}

// DayEvents is one realistic day, in order, each inner slice one Append
// (one HTTP request's worth): configuration, logins, inbound and outbound
// calls with pauses (resumed, and ended by the call), tags, metadata, a
// delete, segments on a dialer call, a gateway call, refused commands, a
// configuration change, the seal, and an open call after it.
func DayEvents() [][]ledger.Event {
	in, out := ledger.DirectionInbound, ledger.DirectionOutbound
	return [][]ledger.Event{
		{ConfigEvent(Config())},
		{Cmd("login", "jdoe", "extension", "3420")},
		{Cmd("login", "asmith", "extension", "3421")},
		{Cmd("login", "bkim", "extension", "3430")},
		// jdoe: inbound, pause for the card number, resume, tag, metadata.
		{liveSignal("c-1", "3420", ledger.SignalRinging, in, "+13125550100", "8001")},
		{liveSignal("c-1", "3420", ledger.SignalAnswered, in, "+13125550100", "8001")},
		{Cmd("pauseurl", "jdoe")},
		{Cmd("pause", "jdoe")},
		{Cmd("resume", "jdoe")},
		{Cmd("recordtag", "jdoe")},
		{Cmd("metadata", "jdoe", "account", "123", "agentname", "Jane", "colour", "blue")},
		{liveSignal("c-1", "3420", ledger.SignalEnded, in, "", "")},
		// asmith: inbound, paused and never resumed: the call's end closes the pause.
		{liveSignal("c-2", "3421", ledger.SignalRinging, in, "+13125550111", "8001"),
			liveSignal("c-2", "3421", ledger.SignalAnswered, in, "+13125550111", "8001")},
		{Cmd("pause", "asmith")},
		{Cmd("metadata", "asmith", "callback", "2026-11-24")},
		{liveSignal("c-2", "3421", ledger.SignalEnded, in, "", "")},
		// asmith: a call from an excluded number, not recorded.
		{liveSignal("c-3", "3421", ledger.SignalRinging, in, "+18005550000", "8001")},
		{Cmd("pause", "asmith")},
		{liveSignal("c-3", "3421", ledger.SignalEnded, in, "", "")},
		// bkim: outbound dialer call cut into two contacts, then deleted.
		{liveSignal("c-4", "3430", ledger.SignalDialing, out, "3430", "+13125550199")},
		{liveSignal("c-4", "3430", ledger.SignalAnswered, out, "3430", "+13125550199")},
		{Cmd("stopsegment", "bkim")},
		{Cmd("start", "bkim")},
		{Cmd("pause", "bkim")},
		{Cmd("delete", "bkim")},
		{liveSignal("c-4", "3430", ledger.SignalEnded, out, "", "")},
		// gwu (gateway): recorded by the gateway; pause is not available.
		{liveSignal("c-5", "3500", ledger.SignalRinging, in, "+13125550122", "8002")},
		{Cmd("pause", "gwu")},
		{Cmd("tag", "gwu")},
		{liveSignal("c-5", "3500", ledger.SignalHeld, in, "", "")},
		{liveSignal("c-5", "3500", ledger.SignalRetrieved, in, "", "")},
		{liveSignal("c-5", "3500", ledger.SignalEnded, in, "", "")},
		// refused and idle commands.
		{Cmd("pause", "jdoe")},
		{Cmd("pause", "nobody")},
		{Cmd("dance", "jdoe")},
		{Cmd("config", "jdoe")},
		// an admin adds a user mid-day; jdoe logs out.
		{userEvent("newbie", ledger.User{Name: "New Bie", Team: "sales", Recording: ledger.RecDesktop, Extension: "3440"})},
		{Cmd("logout", "jdoe")},
		{Seal(Day)},
		// the next morning: asmith on a call, paused.
		{liveSignal("c-6", "3421", ledger.SignalRinging, in, "+13125550133", "8001")},
		{Cmd("pause", "asmith")},
	}
}

func userEvent(id string, u ledger.User) ledger.Event {
	b, err := json.Marshal(u)
	if err != nil {
		panic(err)
	}
	return ledger.Event{Type: ledger.TypeConfig, Data: ledger.ConfigChange{
		Part: ledger.PartUser, Key: id, Op: ledger.OpPut, Value: b, Principal: "admin", Source: "api"}}
}

// Write appends batches in order and calls after (when set) after each
// Append with the envelopes it returned.
func Write(ctx context.Context, st *ledger.Store, batches [][]ledger.Event, after func([]ledger.Envelope)) ([]ledger.Envelope, error) {
	var all []ledger.Envelope
	for i, b := range batches {
		envs, err := st.Append(ctx, b...)
		if err != nil {
			return all, fmt.Errorf("batch %d: %w", i, err)
		}
		all = append(all, envs...)
		if after != nil {
			after(envs)
		}
	}
	return all, nil
}
