package ledger

import "encoding/json"

// The two events every request appends — a command, a call signal — are
// encoded by hand, straight into one buffer: encoding/json's reflection
// was the largest cost of an Append in the caller's goroutine, and the
// callers' return to the writer is what each group commit waits for. The
// bytes are exactly json.Marshal's (FuzzEncodeData checks it): the field
// order and omitempty rules of the struct tags, and json.Marshal's string
// escaping (HTML characters, invalid UTF-8, U+2028/U+2029), for which any
// string needing an escape goes through json.Marshal itself.

// appendCommand appends the canonical JSON of c.
func appendCommand(b []byte, c *Command) []byte {
	b = append(b, `{"command":`...)
	b = AppendJSONString(b, c.Command)
	b = appendOptString(b, `,"sender_id":`, c.SenderID)
	b = appendOptString(b, `,"peripheral_id":`, c.PeripheralID)
	b = appendOptString(b, `,"extension":`, c.Extension)
	if len(c.Params) > 0 {
		b = append(b, `,"params":[`...)
		for i, p := range c.Params {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"k":`...)
			b = AppendJSONString(b, p.Key)
			b = append(b, `,"v":`...)
			b = AppendJSONString(b, p.Value)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if len(c.Masked) > 0 {
		b = append(b, `,"masked":[`...)
		for i, m := range c.Masked {
			if i > 0 {
				b = append(b, ',')
			}
			b = AppendJSONString(b, m)
		}
		b = append(b, ']')
	}
	b = appendOptString(b, `,"invalid":`, c.Invalid)
	b = appendOptString(b, `,"message":`, c.Message)
	b = append(b, `,"transport":`...)
	b = AppendJSONString(b, c.Transport)
	b = appendOptString(b, `,"method":`, c.Method)
	b = appendOptString(b, `,"client":`, c.Client)
	b = appendOptString(b, `,"principal":`, c.Principal)
	return append(b, '}')
}

// appendCallSignal appends the canonical JSON of s.
func appendCallSignal(b []byte, s *CallSignal) []byte {
	b = append(b, `{"call_id":`...)
	b = AppendJSONString(b, s.CallID)
	b = append(b, `,"extension":`...)
	b = AppendJSONString(b, s.Extension)
	b = append(b, `,"type":`...)
	b = AppendJSONString(b, s.Type)
	b = appendOptString(b, `,"direction":`, s.Direction)
	b = appendOptString(b, `,"ani":`, s.ANI)
	b = appendOptString(b, `,"dnis":`, s.DNIS)
	if s.ACD {
		b = append(b, `,"acd":true`...)
	}
	b = append(b, `,"at":`...)
	b = appendTimeJSON(b, s.At)
	b = append(b, `,"transport":`...)
	b = AppendJSONString(b, s.Transport)
	b = appendOptString(b, `,"principal":`, s.Principal)
	return append(b, '}')
}

// appendOptString appends key and v unless v is empty (omitempty).
func appendOptString(b []byte, key, v string) []byte {
	if v == "" {
		return b
	}
	return AppendJSONString(append(b, key...), v)
}

// appendTimeJSON appends t as Time.MarshalJSON writes it.
func appendTimeJSON(b []byte, t Time) []byte {
	if t.IsZero() {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, TimeLayout)
	return append(b, '"')
}

// AppendJSONString appends s as json.Marshal writes a string: printable
// ASCII other than '"', '\\' and the HTML characters is copied, anything
// else is left to json.Marshal. The manifest encoder uses it too.
func AppendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c-'\'' <= ';'-'\'' || c > '>' && c <= 0x7e && c != '\\' {
			continue // digits, letters and most punctuation: the usual case
		}
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendData appends the canonical JSON of v when v is one of the data
// types encoded by hand (a command or a call signal, by value or pointer);
// ok is false for anything else, which goes through json.Marshal.
func appendData(b []byte, v any) (_ []byte, ok bool) {
	switch d := v.(type) {
	case Command:
		return appendCommand(b, &d), true
	case *Command:
		if d != nil {
			return appendCommand(b, d), true
		}
	case CallSignal:
		return appendCallSignal(b, &d), true
	case *CallSignal:
		if d != nil {
			return appendCallSignal(b, d), true
		}
	}
	return b, false
}
