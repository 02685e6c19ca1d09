package replay_test

import (
	"bytes"
	"context"
	"regexp"
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/recledger/recledger/replay"
)

// ulidRE matches the ids the ledger makes up (event and contact ids differ
// from run to run); the golden traces show them as <id>.
var ulidRE = regexp.MustCompile(`\b[0-9A-HJKMNP-TV-Z]{26}\b`)

// TestTraceGolden replays replaytest's day and compares traces with
// testdata/trace (go test ./replay/ -run TraceGolden -update to rewrite it).
//
//	trace [user=ID] [until=SEQ|ULID|TIME]
//
// A trace of a user ends with the user's state there, as the command's.
func TestTraceGolden(t *testing.T) {
	d := writeDay(t, nil)
	datadriven.RunTest(t, "testdata/trace", func(t *testing.T, td *datadriven.TestData) string {
		switch td.Cmd {
		case "trace":
			var opts replay.Options
			var buf bytes.Buffer
			opts.Trace = &buf
			td.MaybeScanArgs(t, "user", &opts.User)
			var until string
			if td.MaybeScanArgs(t, "until", &until) {
				u, err := replay.ParseUntil(until)
				if err != nil {
					return err.Error()
				}
				opts.Until = u
			}
			st, stats, err := replay.Run(context.Background(), d.store, opts)
			if err != nil {
				return err.Error()
			}
			if opts.User != "" { // as `recledger replay --user` ends
				at, err := replay.Agent(st, opts.User, stats.Last)
				if err != nil {
					return err.Error()
				}
				buf.WriteString(replay.AgentLine(opts.User, at) + "\n")
			}
			return ulidRE.ReplaceAllString(buf.String(), "<id>")
		}
		t.Fatalf("unknown command %q", td.Cmd)
		return ""
	})
}
