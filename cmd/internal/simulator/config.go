// Package simulator drives a realistic contact center against a recledger
// server over its external interfaces only (API.md): it configures teams,
// metadata keys and users, then plays a day of calls per agent — call
// signals, Recording Controls commands as Cisco Agent Desktop and Finesse
// send them, and a little bad input — and reports what it sent, what the
// server answered, and whether the server's ledger grew by exactly the
// number of events it should have.
//
// Each agent is a goroutine running its own script. The sequence of
// requests of an agent is a pure function of the seed and the agent's
// index (see Script); only the timing varies between runs.
package simulator

import (
	"net/http"
	"time"
)

// Config is one simulation.
type Config struct {
	URL           string        // base URL of the server, e.g. http://127.0.0.1:8080
	Agents        int           // number of agents (goroutines); default 10
	CallsPerAgent int           // calls per agent; default 20
	Rate          float64       // cap on requests/s overall; 0 = no cap
	Duration      time.Duration // stop issuing requests after this; 0 = play the whole day
	Seed          int64         // the scripts are a pure function of the seed
	Concurrency   int           // requests in flight at most; default Agents
	Token         string        // bearer token sent with every request, if set
	// Day, when set, plays the calls on that day through the signals'
	// `at`, from 08:00Z, with realistic durations; commands keep the
	// server's time (the vendor's API gives them none), so the two clocks
	// disagree. Zero (the default) sends signals without `at`: the server
	// stamps them as they arrive, as it does commands and as a live feed
	// should, so contacts, pauses and manifests are on one clock (and
	// last as long as the run does).
	Day time.Time

	// SkipSetup leaves the server's configuration alone (it was set up by
	// an earlier run with the same number of agents).
	SkipSetup bool
	// Client makes the check's reads (GET /v1/verify, /metrics,
	// /v1/events) before and after the play; the play's requests go
	// through fasthttp (sender.go). Default: one with a 30 s timeout.
	Client *http.Client
	// OnStart is called once with the number of requests planned; OnRequest
	// after each request. For a progress display.
	OnStart   func(total int)
	OnRequest func()
}

// scriptDay is the day a script's clock runs on when Config.Day is zero:
// the signals then carry no time, but metadata dates still follow it.
var scriptDay = time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)

// withDefaults returns c with zero fields filled.
func (c Config) withDefaults() Config {
	if c.Agents <= 0 {
		c.Agents = 10
	}
	if c.CallsPerAgent <= 0 {
		c.CallsPerAgent = 20
	}
	if c.Concurrency <= 0 {
		c.Concurrency = c.Agents
	}
	if !c.Day.IsZero() {
		c.Day = time.Date(c.Day.Year(), c.Day.Month(), c.Day.Day(), 0, 0, 0, 0, time.UTC)
	}
	if c.Client == nil {
		c.Client = &http.Client{Timeout: 30 * time.Second}
	}
	return c
}
