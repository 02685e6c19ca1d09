package replay

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/projections"
)

// TraceLine formats one event and what it did as one line (no newline):
//
//	seq time type who what: change; change
//
// e.g. `42 2026-11-23T14:02:11.120Z command jdoe pause: c-77 recording→paused`.
// who is the user the event concerns ("-" when none; the principal for
// configuration changes and seals); what is the canonical command, the
// signal and call, the configuration operation, the sealed day or the timer. A command that changed nothing shows its outcome and
// reason instead of changes.
func TraceLine(e *ledger.Envelope, eff projections.Effect) string {
	return string(AppendTraceLine(nil, e, eff))
}

// AppendTraceLine appends TraceLine's text to b.
func AppendTraceLine(b []byte, e *ledger.Envelope, eff projections.Effect) []byte {
	b = strconv.AppendUint(b, e.Seq, 10)
	b = append(b, ' ')
	b = e.Time.UTC().AppendFormat(b, ledger.TimeLayout)
	b = append(b, ' ')
	b = append(b, e.Type...)
	b = append(b, ' ')
	who, what := describe(e, eff)
	if who == "" {
		who = "-"
	}
	b = append(b, who...)
	b = append(b, ' ')
	b = append(b, what...)
	b = append(b, ':')
	switch {
	case len(eff.Changes) > 0:
		b = append(b, ' ')
		start := len(b)
		for i, c := range eff.Changes {
			if i > 0 {
				b = append(b, "; "...)
			}
			b = append(b, c...)
		}
		// The call the answer named, when no change names it (a logout
		// on a call it did not record: a walk's answer named the call,
		// and its trace line did not).
		if r := eff.Result; r != nil && r.CallID != "" && !namesWord(string(b[start:]), r.CallID) {
			b = append(b, "; on "...)
			b = append(b, r.CallID...)
		}
	case eff.Result != nil:
		b = append(b, ' ')
		b = append(b, eff.Result.Outcome...)
		if eff.Result.Reason != "" {
			b = append(b, " ("...)
			b = append(b, eff.Result.Reason...)
			b = append(b, ')')
		}
		// The call the answer named (a grep for a call id missed these
		// lines: a walk), and its state then.
		if r := eff.Result; r.CallID != "" {
			b = append(b, " on "...)
			b = append(b, r.CallID...)
			if r.ContactID != "" {
				b = append(b, " ("...)
				b = append(b, r.ContactID...)
				b = append(b, ')')
			}
			if r.Recording != "" {
				b = append(b, ", "...)
				b = append(b, r.Recording...)
			}
		}
	default:
		b = append(b, " no change"...)
	}
	return b
}

// describe names who an event concerns and what it was. It decodes the
// event's data only for the words of the trace; an undecodable event was
// already refused by Apply.
func describe(e *ledger.Envelope, eff projections.Effect) (who, what string) {
	users := strings.Join(eff.Users, ",")
	switch e.Type {
	case ledger.TypeCommand:
		var d ledger.Command
		_ = json.Unmarshal(e.Data, &d)
		what = d.Command
		who = users
		if r := eff.Result; r != nil {
			if r.Command != "" {
				what = r.Command
			}
			if r.UserID != "" {
				who = r.UserID
			}
		}
		if who == "" && d.SenderID != "" {
			who = d.SenderID
		}
		if who == "" && d.Extension != "" {
			who = "ext " + d.Extension
		}
	case ledger.TypeCallSignal:
		var d ledger.CallSignal
		_ = json.Unmarshal(e.Data, &d)
		who = users
		if who == "" {
			who = "ext " + d.Extension
		}
		what = d.Type + " " + d.CallID
	case ledger.TypeConfig:
		var d ledger.ConfigChange
		_ = json.Unmarshal(e.Data, &d)
		who = d.Principal
		what = d.Op
	case ledger.TypeDayClosed:
		var d ledger.DayClosed
		_ = json.Unmarshal(e.Data, &d)
		who = d.Principal
		what = "seal " + d.Day + " by " + d.By
	case ledger.TypeTimer:
		var d ledger.TimerFired
		_ = json.Unmarshal(e.Data, &d)
		who = users
		what = strings.TrimSpace(d.Timer + " " + d.ContactID)
	default:
		what = string(e.Type)
	}
	return who, what
}

// namesWord reports whether s holds w as a word of its own: after the
// start or a space, before the end or a space or one of :;,) (a change
// on call x12 does not name call x1).
func namesWord(s, w string) bool {
	for i := 0; ; {
		j := strings.Index(s[i:], w)
		if j < 0 {
			return false
		}
		j += i
		end := j + len(w)
		if (j == 0 || s[j-1] == ' ') && (end == len(s) || strings.IndexByte(" :;,)", s[end]) >= 0) {
			return true
		}
		i = j + 1
	}
}
