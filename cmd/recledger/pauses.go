package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/projections"
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

// Run parses args and prints the pauses.
func (c *PausesCommand) Run(ctx context.Context, args []string) error {
	out, stderr := outOr(c.Out), stderrOr(c.Stderr)
	fs := flag.NewFlagSet("pauses", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := dataFlag(fs)
	user := fs.String("user", "", "only this user id's pauses")
	contact := fs.String("contact", "", "only this contact id's pauses")
	call := fs.String("call", "", "only this call id's pauses (on every contact the call had)")
	fromS := fs.String("from", "", "only pauses overlapping from this time on (RFC 3339, or YYYY-MM-DD: midnight in the site's time zone)")
	toS := fs.String("to", "", "only pauses overlapping up to this time (RFC 3339, or YYYY-MM-DD: midnight in the site's time zone)")
	format := fs.String("format", formatTable, "csv, json or table")
	token := tokenFlag(fs, "the HTTP API of a server running on --data")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	// Their form is checked now, before the ledger is read; a date is
	// midnight in the site's zone, so the query, and whether to comes
	// after from, wait for the state (or the server) to know it.
	for _, b := range [][2]string{{"from", *fromS}, {"to", *toS}} {
		if _, err := parsePauseTime(b[0], b[1], nil); err != nil {
			return fmt.Errorf("pauses: %w", err)
		}
	}
	*format = strings.ToLower(*format) // as the API's format=CSV
	switch *format {
	case formatCSV, formatJSON, formatTable:
	default:
		return fmt.Errorf("pauses: --format %q: %w: want csv, json or table", *format, ledger.ErrInvalid)
	}
	who := ledger.PauseQuery{UserID: *user, ContactID: *contact, CallID: *call}
	st, store, err := loadLedgerState(ctx, *data, stderr)
	if info, held := heldByServer(*data, err, "pauses", stderr); held {
		if err := pausesFromServer(ctx, info, *token, who, *fromS, *toS, *format, out); err != nil {
			return fmt.Errorf("pauses: %w", err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("pauses: %w", err)
	}
	defer store.Close()
	q, err := pauseQuery(who, *fromS, *toS, st.Location())
	if err != nil {
		return fmt.Errorf("pauses: %w", err)
	}
	if _, err := st.Agent(q.UserID); q.UserID != "" && errors.Is(err, ledger.ErrNotFound) {
		// As GET /v1/pauses: a mistyped id is not "never paused".
		return fmt.Errorf("pauses: --user %q: %w: no configuration or event has named it, so nothing can match (user ids are case-sensitive)", q.UserID, ledger.ErrNotFound)
	}
	if *format == formatTable { // aligned columns need every row first
		rows, err := st.Pauses(ctx, q)
		if err != nil {
			return fmt.Errorf("pauses: %w", err)
		}
		return writePausesTable(out, rows)
	}
	if err := streamPauses(ctx, st, q, *format, out); err != nil {
		return fmt.Errorf("pauses: %w", err)
	}
	return nil
}

// streamPauses writes the CSV or JSON of q's rows as State.EachPause hands
// them over, so that a year's history is never held whole. JSON is the
// body GET /v1/pauses answers. A log out of time order (EachPause's
// ledger.ErrUnordered), found before anything was written, is answered
// from the sorted Pauses instead; any error after the first write leaves
// the output cut short, and the command fails.
func streamPauses(ctx context.Context, st *projections.State, q ledger.PauseQuery, format string, out io.Writer) error {
	cw := &countingWriter{w: out}
	bw := bufio.NewWriterSize(cw, 64<<10)
	write := func(each func(fn func(*ledger.PauseRow) error) error) error {
		var err error
		if format == formatJSON {
			err = ledger.WriteList(bw, "pauses", each)
		} else {
			err = writePausesCSV(bw, each)
		}
		if err != nil {
			return err
		}
		return bw.Flush()
	}
	err := write(func(fn func(*ledger.PauseRow) error) error { return st.EachPause(ctx, q, fn) })
	if err == nil || !errors.Is(err, ledger.ErrUnordered) || cw.n > 0 {
		return err
	}
	rows, err := st.Pauses(ctx, q)
	if err != nil {
		return err
	}
	bw.Reset(cw)
	return write(func(fn func(*ledger.PauseRow) error) error {
		for i := range rows {
			if err := fn(&rows[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

// pausesFromServer prints what GET /v1/pauses answers for the same query:
// CSV and JSON as the server writes them (the same bytes this command
// writes from the ledger), a table from its JSON.
func pausesFromServer(ctx context.Context, info servingInfo, token string, who ledger.PauseQuery, from, to, format string, out io.Writer) error {
	q := url.Values{}
	for k, v := range map[string]string{"user_id": who.UserID, "contact_id": who.ContactID, "call_id": who.CallID, "from": from, "to": to} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if format == formatCSV {
		q.Set("format", "csv")
	}
	body, err := askServer(ctx, info, token, "/v1/pauses?"+q.Encode())
	if err != nil {
		return err
	}
	defer body.Close()
	if format != formatTable {
		_, err = io.Copy(out, body)
		return err
	}
	var answer struct {
		Pauses []ledger.PauseRow `json:"pauses"`
	}
	if err := json.NewDecoder(body).Decode(&answer); err != nil {
		return fmt.Errorf("the server's answer: %w", err)
	}
	return writePausesTable(out, answer.Pauses)
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// pauseQuery is who's query (--user, --contact, --call) with --from and
// --to, dates read in loc.
func pauseQuery(who ledger.PauseQuery, from, to string, loc *time.Location) (ledger.PauseQuery, error) {
	q := who
	var err error
	if q.From, err = parsePauseTime("from", from, loc); err != nil {
		return q, err
	}
	if q.To, err = parsePauseTime("to", to, loc); err != nil {
		return q, err
	}
	if err := q.Check(); err != nil {
		return q, err
	}
	return q, ledger.CheckDayBounds(from, to)
}

// parsePauseTime reads an RFC 3339 time or a YYYY-MM-DD day (midnight in
// the site's zone, loc), as GET /v1/pauses does.
func parsePauseTime(name, v string, loc *time.Location) (ledger.Time, error) {
	if t, ok := ledger.ParseQueryTime(v, loc); ok {
		return t, nil
	}
	return ledger.Time{}, fmt.Errorf("--%s %q: %w: want an RFC 3339 time or YYYY-MM-DD", name, v, ledger.ErrInvalid)
}

func writePausesCSV(w io.Writer, each func(fn func(*ledger.PauseRow) error) error) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(ledger.PauseCSVHeader()); err != nil {
		return err
	}
	err := each(func(p *ledger.PauseRow) error { return cw.Write(p.CSVRecord()) })
	if err != nil {
		return err
	}
	cw.Flush()
	return cw.Error()
}

func writePausesTable(w io.Writer, rows []ledger.PauseRow) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(ledger.PauseCSVHeader(), "\t"))
	for i := range rows {
		f := rows[i].Fields()
		for i := range f {
			f[i] = tableCell(f[i])
		}
		fmt.Fprintln(tw, strings.Join(f, "\t"))
	}
	return tw.Flush()
}

// tableCell is a value as a table on a terminal shows it: as it is (not
// the CSV's spreadsheet guard), "-" when empty, and quoted with escapes
// when it holds a control character (a tab would break the columns, an
// escape sequence would drive the terminal) or invalid UTF-8.
func tableCell(v string) string {
	if v == "" {
		return "-"
	}
	if !utf8.ValidString(v) || strings.IndexFunc(v, unicode.IsControl) >= 0 {
		return strconv.Quote(v)
	}
	return v
}
