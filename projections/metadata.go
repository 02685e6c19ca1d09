package projections

import (
	"slices"
	"time"

	"github.com/recledger/recledger/ledger"
)

// Reasons a metadata key is rejected (CommandResult.RejectedKeys values).
const (
	KeyLimit      = "limit"
	KeyFormat     = "format"
	KeyCardNumber = "card_number"
)

// ValidMetadataValue reports whether v is a valid value for a key of type
// typ (RULES.md "Metadata"): date yyyy-mm-dd and a real calendar date;
// number digits with at most one decimal point, which may lead but not
// trail; text anything without the reserved characters & and =.
func ValidMetadataValue(typ, v string) bool {
	switch typ {
	case ledger.MetaDate:
		return validDate(v)
	case ledger.MetaNumber:
		return validNumber(v)
	case ledger.MetaText:
		return validText(v)
	}
	return false
}

func validDate(v string) bool {
	if len(v) != 10 || v[4] != '-' || v[7] != '-' {
		return false
	}
	for i := 0; i < len(v); i++ {
		if i != 4 && i != 7 && (v[i] < '0' || v[i] > '9') {
			return false
		}
	}
	_, err := time.Parse(time.DateOnly, v)
	return err == nil
}

// validNumber matches ^([0-9]+(\.[0-9]+)?|\.[0-9]+)$.
func validNumber(v string) bool {
	before, after, dot := 0, 0, false
	for i := 0; i < len(v); i++ {
		switch b := v[i]; {
		case b >= '0' && b <= '9':
			if dot {
				after++
			} else {
				before++
			}
		case b == '.' && !dot:
			dot = true
		default:
			return false
		}
	}
	if dot {
		return after > 0
	}
	return before > 0
}

func validText(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] == '&' || v[i] == '=' {
			return false
		}
	}
	return true
}

// metaResult collects the per-key outcome of one metadata command.
// unchanged counts the valid keys that already held their value (or, to
// be removed, were not there): nothing to do for them.
type metaResult struct {
	applied, ignored []string
	rejected         map[string]string
	unchanged        int
}

// addOnce appends k to list unless it is there; a new list gets room for
// n keys (the command's params), so it is allocated once.
func addOnce(list []string, k string, n int) []string {
	for _, x := range list {
		if x == k {
			return list
		}
	}
	if list == nil {
		list = make([]string, 0, n)
	}
	return append(list, k)
}

// applyMetadata applies the command's params, in order, to m (the target's
// metadata, possibly nil) and returns the new map.
func (s *State) applyMetadata(d *ledger.Command, m map[string]string, res *metaResult) map[string]string {
	for _, p := range d.Params {
		def, ok := s.cfg.Metadata[p.Key]
		if !ok {
			res.ignored = addOnce(res.ignored, p.Key, len(d.Params))
			continue
		}
		reject := ""
		_, have := m[p.Key]
		switch {
		case isMasked(d.Masked, p.Key) || holdsCardNumber(p.Value):
			reject = KeyCardNumber
		case p.Value == "":
		case !ValidMetadataValue(def.Type, p.Value):
			reject = KeyFormat
		case !have && len(m) >= ledger.MaxMetadataKeys:
			reject = KeyLimit
		}
		if reject != "" {
			if res.rejected == nil {
				res.rejected = map[string]string{}
			}
			res.rejected[p.Key] = reject
			continue
		}
		delete(res.rejected, p.Key)
		if old, had := m[p.Key]; s.rules >= 2 && old == p.Value && (had || p.Value == "") && !slices.Contains(res.applied, p.Key) {
			res.unchanged++ // the same value again, or removing what is not there
			continue
		}
		if p.Value == "" {
			delete(m, p.Key)
		} else {
			if m == nil {
				m = map[string]string{}
			}
			m[p.Key] = p.Value
		}
		res.applied = addOnce(res.applied, p.Key, len(d.Params))
	}
	return m
}

// holdsCardNumber reports whether v holds a run of 13–19 digits (spaces or
// dashes allowed between them) that passes the Luhn check. Ingest masks
// such values before they reach the ledger; this is the projections' own
// guard for events that did not pass through it.
func holdsCardNumber(v string) bool {
	var buf [32]byte
	digits := buf[:0]
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c >= '0' && c <= '9':
			digits = append(digits, c)
		case (c == ' ' || c == '-') && len(digits) > 0:
		default:
			if luhnRun(digits) {
				return true
			}
			digits = digits[:0]
		}
	}
	return luhnRun(digits)
}

// luhnRun reports whether a run of 13 to 19 of the digits passes the Luhn
// check.
func luhnRun(digits []byte) bool {
	for n := 13; n <= 19 && n <= len(digits); n++ {
		for i := 0; i+n <= len(digits); i++ {
			if luhn(digits[i : i+n]) {
				return true
			}
		}
	}
	return false
}

// luhn reports whether the digits pass the Luhn check.
func luhn(d []byte) bool {
	sum := 0
	for i := range d {
		n := int(d[len(d)-1-i] - '0')
		if i%2 == 1 {
			if n *= 2; n > 9 {
				n -= 9
			}
		}
		sum += n
	}
	return sum%10 == 0
}

func isMasked(masked []string, k string) bool {
	for _, x := range masked {
		if x == k {
			return true
		}
	}
	return false
}

// cmdMetadata applies metadata to the active call (its contact, or kept on
// the call until a contact opens), else to the last call.
func (s *State) cmdMetadata(x *cmdCtx) {
	var res metaResult
	c := s.targetCallOf(x.m.agent)
	var updated *contact
	switch {
	case c != nil:
		s.on(x, c)
		if c.Deleted {
			x.outcome(ledger.OutcomeNoEffect, ledger.ReasonDeleted)
			return
		}
		switch {
		case c.Contact != "":
			ct := s.openOf(c)
			ct.V.Metadata = s.applyMetadata(x.d, ct.V.Metadata, &res)
		case s.rules >= 3 && c.LastContact != "" && s.contacts[c.LastContact] != nil:
			// Between segments: the data typed after a stopsegment
			// belongs to the segment just recorded (an outbound
			// dialer's customer), not to the next one.
			ct := s.contacts[c.LastContact]
			x.r.ContactID = ct.V.ContactID
			if ct.V.Deleted {
				x.outcome(ledger.OutcomeNoEffect, ledger.ReasonDeleted)
				return
			}
			ct.V.Metadata = s.applyMetadata(x.d, ct.V.Metadata, &res)
			updated = ct
		case s.rules >= 3 && x.u.IsGateway():
			// Gateway recording records every call not excluded, and
			// nothing starts a recording on one it does not: kept on
			// the call, the metadata would only be lost at its end.
			x.outcome(ledger.OutcomeNoEffect, ledger.ReasonNotRecording)
			if c.Excluded {
				x.outcome(ledger.OutcomeNoEffect, ledger.ReasonExcluded)
			}
			x.r.Message = "gateway recording does not record this call (" + x.r.Reason + "), and nothing can start its recording: the metadata is not kept"
			return
		default:
			c.Meta = s.applyMetadata(x.d, c.Meta, &res)
		}
	default:
		ct := s.lastContact(x)
		if ct == nil {
			if x.r.Reason == ledger.ReasonNoLastCall {
				x.r.Reason = ledger.ReasonNoActiveCall
			}
			return
		}
		ct.V.Metadata = s.applyMetadata(x.d, ct.V.Metadata, &res)
		updated = ct
	}
	x.r.AppliedKeys, x.r.IgnoredKeys, x.r.RejectedKeys = res.applied, res.ignored, res.rejected
	switch {
	case len(res.applied) > 0:
		x.outcome(ledger.OutcomeApplied, "")
		if !s.quiet {
			// Where it went: a trace must tell which customer's
			// contact got the data.
			line := "metadata " + x.r.CallID
			switch {
			case x.r.ContactID == "":
				line += " (kept on the call for its recording)"
			case updated != nil && c != nil:
				line += " → " + x.r.ContactID + " (its last segment)"
			case updated != nil:
				line += " → " + x.r.ContactID + " (last call)"
			default:
				line += " → " + x.r.ContactID
			}
			line += ":"
			for _, k := range res.applied {
				line += " " + k
			}
			if len(res.rejected) > 0 {
				// An auditor tracing a call must see a refused card number
				// beside what was applied.
				keys := make([]string, 0, len(res.rejected))
				for k := range res.rejected {
					keys = append(keys, k)
				}
				slices.Sort(keys)
				line += "; rejected"
				for _, k := range keys {
					line += " " + k + " (" + res.rejected[k] + ")"
				}
			}
			x.eff.Changes = append(x.eff.Changes, line)
		}
		if updated != nil {
			s.book.contactUpdatedAt(x.e.Seq, s.view(updated))
		}
	case len(res.rejected) > 0:
		x.outcome(ledger.OutcomeRejected, ledger.ReasonInvalidMetadata)
	case res.unchanged > 0:
		// A desktop re-sending what it sent: nothing changes, and no
		// manifest update repeats the contact (RULES.md: applied is a change).
		x.outcome(ledger.OutcomeNoEffect, ledger.ReasonUnchanged)
	default:
		x.outcome(ledger.OutcomeNoEffect, ledger.ReasonNoKnownKeys)
	}
}
