package ledger

import (
	"encoding/json"
	"io"
	"strconv"
	"strings"
)

// The encodings of the read-side shapes that more than one package writes:
// the server answers them over HTTP, and the offline commands print the
// same bytes from a data dir.

// PauseCSVHeader is the header row of the pause history as CSV: PauseRow's
// JSON field names, in its order.
func PauseCSVHeader() []string {
	return []string{"contact_id", "call_id", "user_id", "extension", "start", "end", "ended_by", "seconds",
		"paused_by", "resumed_by", "transport", "open_event_id", "close_event_id", "resume_transport"}
}

// CSVRecord is p as a CSV row, in PauseCSVHeader's order: times as
// Time.String writes them (empty when zero), seconds with three decimals
// (empty while open), text as csvText writes it.
func (p *PauseRow) CSVRecord() []string {
	f := p.Fields()
	for i := range f {
		f[i] = csvText(f[i]) // times and seconds begin with a digit, or are empty
	}
	return f
}

// Fields is the row's values as they are, in PauseCSVHeader's order:
// CSVRecord before its spreadsheet guard (a table on a terminal shows
// them so).
func (p *PauseRow) Fields() []string {
	secs := ""
	if !p.End.IsZero() {
		secs = strconv.FormatFloat(p.Seconds, 'f', 3, 64)
	}
	return []string{p.ContactID, p.CallID, p.UserID, p.Extension,
		p.Start.String(), p.End.String(), p.EndedBy, secs,
		p.PausedBy, p.ResumedBy, p.Transport, p.OpenEventID, p.CloseEventID,
		p.ResumeTransport}
}

// csvText is a text cell of a CSV export that auditors open in a
// spreadsheet: a value a spreadsheet would take for a formula (one
// beginning with = + - @, a tab or a carriage return; call ids and
// extensions come from the phone system and the desktops) gets a leading
// apostrophe, which spreadsheets read as "this is text" and do not show
// (OWASP, CSV injection). The JSON answer carries every value as it is.
func csvText(v string) string {
	if v != "" && strings.IndexByte("=+-@\t\r", v[0]) >= 0 {
		return "'" + v
	}
	return v
}

// jsonAppender is an item that appends its own JSON, as json.Marshal
// would write it, without reflection (PauseRow).
type jsonAppender interface{ AppendJSON([]byte) []byte }

// ListWriter is where WriteList writes.
type ListWriter interface {
	io.Writer
	io.StringWriter
}

// WriteList writes {"name":[item,...]} and a newline, the items handed
// over by each and encoded as encoding/json encodes them: a list answer of
// API.md §5, written as it is read, never held whole. An error from each,
// or from encoding an item, stops the list unfinished.
func WriteList[T any](w ListWriter, name string, each func(fn func(*T) error) error) error {
	if _, err := w.WriteString(`{"` + name + `":[`); err != nil {
		return err
	}
	n := 0
	var buf []byte // reused by the items that append their own JSON
	err := each(func(v *T) error {
		var b []byte
		if a, ok := any(v).(jsonAppender); ok {
			buf = a.AppendJSON(buf[:0])
			b = buf
		} else {
			var err error
			if b, err = json.Marshal(v); err != nil {
				return err
			}
		}
		if n++; n > 1 {
			if _, err := w.WriteString(","); err != nil {
				return err
			}
		}
		_, err := w.Write(b)
		return err
	})
	if err != nil {
		return err
	}
	_, err = w.WriteString("]}\n")
	return err
}
