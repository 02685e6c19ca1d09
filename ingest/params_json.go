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
	if !p.eat('"') {
		return "", false
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
				return string(raw), true
			}
			var s string
			if err := json.Unmarshal(p.b[start-1:p.i], &s); err != nil {
				return "", false
			}
			return s, true
		}
		p.i++
	}
	return "", false
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
