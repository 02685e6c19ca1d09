package main

import (
	"context"
	"encoding/csv"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/recledger/recledger/ledger"
)

// Output formats of `pauses`.
const (
	formatCSV   = "csv"
	formatJSON  = "json"
	formatTable = "table"
)

// PausesCommand is the `pauses` subcommand: the PCI pause history of a data
// dir, replayed offline (from the newest checkpoint and the tail), as CSV,
// JSON (the body of GET /v1/pauses) or an aligned table.
type PausesCommand struct {
	Out    io.Writer // results; os.Stdout when nil
	Stderr *os.File  // flag errors and the progress bar (terminal only); os.Stderr when nil
}

// pauseColumns are the CSV header and table columns: the JSON field names
// of ledger.PauseRow, in its order.
var pauseColumns = []string{"contact_id", "call_id", "user_id", "extension", "start", "end", "ended_by", "seconds",
	"paused_by", "resumed_by", "transport", "open_event_id", "close_event_id"}

// Run parses args and prints the pauses.
func (c *PausesCommand) Run(ctx context.Context, args []string) error {
	out, stderr := outOr(c.Out), stderrOr(c.Stderr)
	fs := flag.NewFlagSet("pauses", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := dataFlag(fs)
	user := fs.String("user", "", "only this user id's pauses")
	fromS := fs.String("from", "", "only pauses overlapping from this time on (RFC 3339 or YYYY-MM-DD, UTC)")
	toS := fs.String("to", "", "only pauses overlapping up to this time (RFC 3339 or YYYY-MM-DD, UTC)")
	format := fs.String("format", formatTable, "csv, json or table")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("pauses: unexpected arguments %q", fs.Args())
	}
	q := ledger.PauseQuery{UserID: *user}
	var err error
	if q.From, err = parsePauseTime("from", *fromS); err != nil {
		return fmt.Errorf("pauses: %w", err)
	}
	if q.To, err = parsePauseTime("to", *toS); err != nil {
		return fmt.Errorf("pauses: %w", err)
	}
	switch *format {
	case formatCSV, formatJSON, formatTable:
	default:
		return fmt.Errorf("pauses: --format %q: %w: want csv, json or table", *format, ledger.ErrInvalid)
	}
	st, store, err := loadLedgerState(ctx, *data, stderr)
	if err != nil {
		return fmt.Errorf("pauses: %w", err)
	}
	defer store.Close()
	rows, err := st.Pauses(ctx, q)
	if err != nil {
		return fmt.Errorf("pauses: %w", err)
	}
	switch *format {
	case formatJSON:
		return writeJSONLine(out, map[string][]ledger.PauseRow{"pauses": rows})
	case formatCSV:
		return writePausesCSV(out, rows)
	}
	return writePausesTable(out, rows)
}

// parsePauseTime reads an RFC 3339 time or a YYYY-MM-DD day (midnight UTC),
// as GET /v1/pauses does.
func parsePauseTime(name, v string) (ledger.Time, error) {
	if v == "" {
		return ledger.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return ledger.T(t), nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return ledger.T(t), nil
	}
	return ledger.Time{}, fmt.Errorf("--%s %q: %w: want an RFC 3339 time or YYYY-MM-DD", name, v, ledger.ErrInvalid)
}

// pauseFields is one row as strings, in pauseColumns order; seconds as the
// API's CSV writes them.
func pauseFields(p ledger.PauseRow) []string {
	return []string{p.ContactID, p.CallID, p.UserID, p.Extension, p.Start.String(), p.End.String(), p.EndedBy,
		strconv.FormatFloat(p.Seconds, 'f', 3, 64), p.PausedBy, p.ResumedBy, p.Transport, p.OpenEventID, p.CloseEventID}
}

func writePausesCSV(w io.Writer, rows []ledger.PauseRow) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(pauseColumns); err != nil {
		return err
	}
	for _, p := range rows {
		if err := cw.Write(pauseFields(p)); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func writePausesTable(w io.Writer, rows []ledger.PauseRow) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(pauseColumns, "\t"))
	for _, p := range rows {
		f := pauseFields(p)
		for i := range f {
			if f[i] == "" {
				f[i] = "-"
			}
		}
		fmt.Fprintln(tw, strings.Join(f, "\t"))
	}
	return tw.Flush()
}
