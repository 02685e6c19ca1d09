package main

import (
	"errors"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/recledger/recledger/ledger"
)

// Every flag takes its default from its RECLEDGER_* variable when that is
// set; unset, the defaults are the contract's (--data ./data, --site
// default). A flag given on the command line wins over its variable, even
// one that does not parse.
func TestFlagsTakeTheirDefaultsFromTheEnvironment(t *testing.T) {
	for env, v := range map[string]string{"RECLEDGER_HTTP": "10.0.0.1:80", "RECLEDGER_REPLICAS": "3", "RECLEDGER_REBUILD": "true",
		"RECLEDGER_CHECKPOINT_EVERY": "5m", "RECLEDGER_DATA": "/srv/recledger", "RECLEDGER_SITE": "east"} {
		t.Setenv(env, v)
	}
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	httpAddr, n, on, d := "127.0.0.1:8080", 1, false, time.Minute
	strFlag(fs, &httpAddr, "http", "RECLEDGER_HTTP", "")
	checks := []func() error{intFlag(fs, &n, "replicas", "RECLEDGER_REPLICAS", ""), boolFlag(fs, &on, "rebuild", "RECLEDGER_REBUILD", ""),
		durationFlag(fs, &d, "checkpoint-every", "RECLEDGER_CHECKPOINT_EVERY", "")}
	data, site := dataFlag(fs), siteFlag(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	for _, check := range checks {
		if err := check(); err != nil {
			t.Error(err)
		}
	}
	if httpAddr != "10.0.0.1:80" || n != 3 || !on || d != 5*time.Minute || *data != "/srv/recledger" || *site != "east" {
		t.Errorf("defaults from the environment: %q %d %v %s %q %q", httpAddr, n, on, d, *data, *site)
	}

	t.Setenv("RECLEDGER_DATA", "")
	t.Setenv("RECLEDGER_SITE", "")
	fs = flag.NewFlagSet("test", flag.ContinueOnError)
	data, site = dataFlag(fs), siteFlag(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if *data != "./data" || *site != "default" {
		t.Errorf("defaults with no variable: --data %q --site %q", *data, *site)
	}

	t.Setenv("RECLEDGER_REPLICAS", "many")
	for _, args := range [][]string{nil, {"--replicas", "2"}} {
		fs = flag.NewFlagSet("test", flag.ContinueOnError)
		n = 1
		check := intFlag(fs, &n, "replicas", "RECLEDGER_REPLICAS", "")
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		if err := check(); (args == nil) != errors.Is(err, ledger.ErrInvalid) || (args != nil && n != 2) {
			t.Errorf("RECLEDGER_REPLICAS=many, args %v: %v, --replicas %d", args, err, n)
		}
	}
}

// A duration variable that does not parse is refused by its check, naming
// the variable and its value, as an integer's is, unless the flag is
// given; it is not taken as the default left as it was.
func TestADurationFromTheEnvironmentThatDoesNotParseIsRefused(t *testing.T) {
	t.Setenv("RECLEDGER_CHECKPOINT_EVERY", "soon")
	for _, args := range [][]string{nil, {"--checkpoint-every", "2m"}} {
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		d := time.Minute
		check := durationFlag(fs, &d, "checkpoint-every", "RECLEDGER_CHECKPOINT_EVERY", "")
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		err := check()
		if args == nil && (!errors.Is(err, ledger.ErrInvalid) || !strings.Contains(err.Error(), `RECLEDGER_CHECKPOINT_EVERY="soon"`)) {
			t.Errorf("RECLEDGER_CHECKPOINT_EVERY=soon and no flag: %v", err)
		}
		if args != nil && (err != nil || d != 2*time.Minute) {
			t.Errorf("RECLEDGER_CHECKPOINT_EVERY=soon, --checkpoint-every 2m: %v, %s", err, d)
		}
	}
}
