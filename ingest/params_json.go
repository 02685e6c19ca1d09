package ingest

import (
	"encoding/json"
	"unicode/utf8"

	"github.com/recledger/recledger/ledger"
)

// The JSON bodies of Finesse commands are flat objects of strings and
// numbers, with at most a `metadata` object of the same. json.Decoder reads
// them token by token at a cost of ~130 allocations (each value read
// alone allocates a discarded "after top-level value" error). quickJSONObject
// reads such a body, once json.Valid has accepted it, with one allocation
// per string it keeps; anything else (invalid JSON, a nested value where a
// scalar belongs) is left to the Decoder path, which owns the error
// messages.

// quickJSONObject is parseJSONObject for a valid flat object; ok is false
// when the body is anything else.
func quickJSONObject(b []byte) (members, metadata []ledger.Param, ok bool) {
	if !json.Valid(b) {
		return nil, nil, false
	}
	p := jsonCursor{b: b}
	p.space()
	if !p.eat('{') {
		return nil, nil, false
	}
	members = make([]ledger.Param, 0, 8)
	for first := true; ; first = false {
		p.space()
		if p.eat('}') {
			return members, metadata, true
		}
		if !first && !p.eat(',') {
			return nil, nil, false
		}
		key, ok := p.key()
		if !ok {
			return nil, nil, false
		}
		p.space()
		if p.peek() == '{' && canonicalKey(key) == paramMetadata {
			m, ok := p.object()
			if !ok {
				return nil, nil, false
			}
			metadata = m
			continue
		}
		v, ok := p.scalar()
		if !ok {
			return nil, nil, false
		}
		members = append(members, ledger.Param{Key: key, Value: v})
	}
}

// jsonCursor walks JSON text that json.Valid accepted.
type jsonCursor struct {
	b []byte
	i int
}

func (p *jsonCursor) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\r', '\n':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonCursor) peek() byte {
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

func (p *jsonCursor) eat(c byte) bool {
	if p.peek() == c {
		p.i++
		return true
	}
	return false
}

// key reads `"name":`.
func (p *jsonCursor) key() (string, bool) {
	p.space()
	k, ok := p.str()
	if !ok {
		return "", false
	}
	p.space()
	return k, p.eat(':')
}

// str reads a string, decoded as encoding/json decodes it.
func (p *jsonCursor) str() (string, bool) {
	b, plain, ok := p.strBytes()
	if !ok {
		return "", false
	}
	if plain {
		return string(b), true
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return "", false
	}
	return s, true
}

// strBytes reads a string: its text when plain (no escapes, valid UTF-8,
// which is then its decoded value), else the quoted JSON to decode.
func (p *jsonCursor) strBytes() (b []byte, plain, ok bool) {
	if !p.eat('"') {
		return nil, false, false
	}
	start, escaped := p.i, false
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case '\\':
			escaped = true
			p.i += 2
			continue
		case '"':
			raw := p.b[start:p.i]
			p.i++
			if !escaped && utf8.Valid(raw) {
				return raw, true, true
			}
			return p.b[start-1 : p.i], false, true
		}
		p.i++
	}
	return nil, false, false
}

// name reads `"name":` for a lookup: no allocation when the name is plain.
func (p *jsonCursor) name() ([]byte, bool) {
	p.space()
	b, plain, ok := p.strBytes()
	if !ok {
		return nil, false
	}
	if !plain {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return nil, false
		}
		b = []byte(s)
	}
	p.space()
	return b, p.eat(':')
}

// scalar reads a string, a number or a literal as parameter text (see
// scalar); an object or an array is not one.
func (p *jsonCursor) scalar() (string, bool) {
	switch c := p.peek(); {
	case c == '"':
		return p.str()
	case c == 'n':
		p.i += len("null")
		return "", true
	case c == 't' || c == 'f' || c == '-' || (c >= '0' && c <= '9'):
		start := p.i
		for p.i < len(p.b) {
			switch p.b[p.i] {
			case ',', '}', ']', ' ', '\t', '\r', '\n':
				return string(p.b[start:p.i]), true
			}
			p.i++
		}
	}
	return "", false
}

// object reads a metadata object of scalars, members in order.
func (p *jsonCursor) object() ([]ledger.Param, bool) {
	if !p.eat('{') {
		return nil, false
	}
	var out []ledger.Param
	for first := true; ; first = false {
		p.space()
		if p.eat('}') {
			return out, true
		}
		if !first && !p.eat(',') {
			return nil, false
		}
		k, ok := p.key()
		if !ok {
			return nil, false
		}
		p.space()
		v, ok := p.scalar()
		if !ok {
			return nil, false
		}
		out = append(out, ledger.Param{Key: k, Value: v})
	}
}

// quickSignals is decodeStrict for a call-signal body (one object or an
// array of them) in the form CTI feeds send: json.Valid, members named
// exactly, strings where strings belong, acd a boolean, at a string or
// null. ok is false for anything else, which the Decoder path then reads
// (and words the errors of).
func quickSignals(b []byte) (ins []callSignalIn, ok bool) {
	if !json.Valid(b) {
		return nil, false
	}
	p := jsonCursor{b: b}
	p.space()
	if p.peek() == '{' {
		in, ok := p.signal()
		if !ok {
			return nil, false
		}
		return []callSignalIn{in}, true
	}
	if !p.eat('[') {
		return nil, false
	}
	for first := true; ; first = false {
		p.space()
		if p.eat(']') {
			return ins, ins != nil
		}
		if !first && !p.eat(',') {
			return nil, false
		}
		p.space()
		in, ok := p.signal()
		if !ok {
			return nil, false
		}
		ins = append(ins, in)
	}
}

// signal reads one call-signal object.
func (p *jsonCursor) signal() (in callSignalIn, ok bool) {
	if !p.eat('{') {
		return in, false
	}
	var seen uint8 // one bit per member: a member named twice goes to the Decoder path, which refuses it
	for first := true; ; first = false {
		p.space()
		if p.eat('}') {
			return in, true
		}
		if !first && !p.eat(',') {
			return in, false
		}
		k, ok := p.name()
		if !ok {
			return in, false
		}
		bit := signalMemberBit(string(k))
		if bit == 0 || seen&bit != 0 {
			return in, false
		}
		seen |= bit
		p.space()
		var dst *string
		switch string(k) {
		case "call_id":
			dst = &in.CallID
		case "extension":
			dst = &in.Extension
		case "type":
			dst = &in.Type
		case "direction":
			dst = &in.Direction
		case "ani":
			dst = &in.ANI
		case "dnis":
			dst = &in.DNIS
		case "acd":
			switch {
			case p.lit("true"):
				in.ACD = true
			case p.lit("false"):
				in.ACD = false
			default:
				return in, false
			}
			continue
		case "at":
			if p.lit("null") {
				in.At = nil
				continue
			}
			s, ok := p.strOnly()
			if !ok {
				return in, false
			}
			in.At = &s
			continue
		default:
			return in, false
		}
		s, ok := p.strOnly()
		if !ok {
			return in, false
		}
		*dst = s
	}
}

// signalMemberBit is the bit of a call signal's member name; 0 for none.
func signalMemberBit(k string) uint8 {
	for i, m := range signalMembers {
		if m == k {
			return 1 << i
		}
	}
	return 0
}

// strOnly reads a string value, and nothing else.
func (p *jsonCursor) strOnly() (string, bool) {
	if p.peek() != '"' {
		return "", false
	}
	return p.str()
}

// lit reads the literal word w.
func (p *jsonCursor) lit(w string) bool {
	if len(p.b)-p.i >= len(w) && string(p.b[p.i:p.i+len(w)]) == w {
		p.i += len(w)
		return true
	}
	return false
}
