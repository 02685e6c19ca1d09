package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/recledger/recledger/ledger"
)

// The flags of every subcommand take their defaults from RECLEDGER_*
// environment variables. A variable set to the empty string counts as
// not set, for every command and flag alike: an orchestrator's template
// that leaves a value out gives the default, not an empty address (an
// empty RECLEDGER_HTTP made serve listen on every interface at a random
// port, while the offline commands took their defaults).

// envSet returns the value of env, and whether it is set and not empty.
func envSet(env string) (string, bool) {
	v := os.Getenv(env)
	return v, v != ""
}

// strFlag defines a string flag whose default comes from env when set.
func strFlag(fs *flag.FlagSet, p *string, name, env, usage string) {
	if v, ok := envSet(env); ok {
		*p = v
	}
	fs.StringVar(p, name, *p, usage+" (env "+env+")")
}

// boolFlag defines a boolean flag whose default comes from env when set
// (true, false, 1, 0, …). The returned check reports an env value that is
// not a boolean, unless the flag was given on the command line (which
// wins); call it after Parse.
func boolFlag(fs *flag.FlagSet, p *bool, name, env, usage string) func() error {
	var bad error
	if v, ok := envSet(env); ok {
		if b, err := strconv.ParseBool(v); err != nil {
			bad = fmt.Errorf("%s=%q: %w: not true or false", env, v, ledger.ErrInvalid)
		} else {
			*p = b
		}
	}
	fs.BoolVar(p, name, *p, usage+" (env "+env+")")
	return unlessGiven(fs, name, bad)
}

// intFlag defines an int flag whose default comes from env when set. The
// returned check reports an env value that is not an integer, unless the
// flag was given on the command line (which wins); call it after Parse.
func intFlag(fs *flag.FlagSet, p *int, name, env, usage string) func() error {
	var bad error
	if v, ok := envSet(env); ok {
		if n, err := strconv.Atoi(v); err == nil {
			*p = n
		} else {
			bad = fmt.Errorf("%s=%q: %w: not an integer", env, v, ledger.ErrInvalid)
		}
	}
	fs.IntVar(p, name, *p, usage+" (env "+env+")")
	return unlessGiven(fs, name, bad)
}

// durationFlag defines a duration flag whose default comes from env when
// set (as time.ParseDuration reads it); the returned check is intFlag's.
func durationFlag(fs *flag.FlagSet, p *time.Duration, name, env, usage string) func() error {
	var bad error
	if v, ok := envSet(env); ok {
		if d, err := time.ParseDuration(v); err == nil {
			*p = d
		} else {
			bad = fmt.Errorf("%s=%q: %w: not a duration such as 30s or 5m", env, v, ledger.ErrInvalid)
		}
	}
	fs.DurationVar(p, name, *p, usage+" (env "+env+")")
	return unlessGiven(fs, name, bad)
}

// unlessGiven returns a check, for after Parse, that reports bad (an
// environment value that did not parse) unless flag name was given on
// the command line, which wins.
func unlessGiven(fs *flag.FlagSet, name string, bad error) func() error {
	return func() error {
		given := false
		fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
		if given {
			return nil
		}
		return bad
	}
}

// envOr returns the environment variable env when set and not empty (envSet), else def.
func envOr(env, def string) string {
	if v, ok := envSet(env); ok {
		return v
	}
	return def
}

// dataFlag defines --data (env RECLEDGER_DATA, default ./data).
func dataFlag(fs *flag.FlagSet) *string {
	return fs.String("data", envOr("RECLEDGER_DATA", "./data"), "data dir of the ledger (env RECLEDGER_DATA)")
}

// siteFlag defines --site (env RECLEDGER_SITE, default "default").
func siteFlag(fs *flag.FlagSet) *string {
	return fs.String("site", envOr("RECLEDGER_SITE", "default"), "site name, part of subjects (env RECLEDGER_SITE)")
}
