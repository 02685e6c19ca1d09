package projections

import (
	"encoding/json"
	"errors"
	"time"
	"unicode/utf8"

	"github.com/recledger/recledger/ledger"
)

// The two event types that make up nearly all of a ledger, commands and
// call signals, are decoded in up to three tries (encoding/json's
// reflection was 40% of a fold): the canonical decoders (decode_canon.go)
// read the one shape the ledger's encoder writes; a small scanner reads
// any flat object; anything it does not expect (unknown field, number,
// nesting, odd escapes) falls back to encoding/json. The result is always
// what json.Unmarshal gives; FuzzDecode checks that.

// errSlow asks for the encoding/json fallback.
var errSlow = errors.New("fallback")

// decodeCommand decodes a command event's data. Its strings come from in
// (nil: fresh copies).
func decodeCommand(e *ledger.Envelope, d *ledger.Command, in *interner) error {
	if canonCommand(e.Data, d, in) {
		if in != nil && cap(d.Params) > cap(in.params) {
			in.params = d.Params
		}
		return nil
	}
	*d = ledger.Command{}
	if fastCommand(e.Data, d, in) == nil {
		if in != nil && cap(d.Params) > cap(in.params) {
			in.params = d.Params
		}
		return nil
	}
	*d = ledger.Command{}
	return e.Unmarshal(d)
}

// decodeSignal decodes a call signal event's data. Its strings come from
// in (nil: fresh copies).
func decodeSignal(e *ledger.Envelope, d *ledger.CallSignal, in *interner) error {
	if canonSignal(e.Data, d, in) {
		return nil
	}
	*d = ledger.CallSignal{}
	if fastSignal(e.Data, d, in) == nil {
		return nil
	}
	*d = ledger.CallSignal{}
	return e.Unmarshal(d)
}

// scanner reads one flat JSON object.
type scanner struct {
	b  []byte
	i  int
	in *interner // where unescaped strings come from; nil: fresh copies
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next byte that is not white space (0 at the end). The
// data Seal writes is compact, so the first test nearly always answers.
func (s *scanner) peek() byte {
	if s.i < len(s.b) && s.b[s.i] > ' ' {
		return s.b[s.i]
	}
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) expect(c byte) error {
	if s.peek() != c {
		return errSlow
	}
	s.i++
	return nil
}

// str reads a string; escaped strings go through encoding/json.
func (s *scanner) str() (string, error) {
	if s.peek() != '"' {
		return "", errSlow
	}
	start := s.i + 1
	j := start + plainRun(s.b, start)
	if j < len(s.b) && s.b[j] == '"' { // the usual case: printable ASCII, no escape
		s.i = j + 1
		return s.in.str(s.b[start:j]), nil
	}
	ascii := true
	for ; j < len(s.b); j++ {
		c := s.b[j]
		if c-0x20 < 0x60 && c != '"' && c != '\\' {
			continue // printable ASCII: the usual case
		}
		switch {
		case c == '"':
			inner := s.b[start:j]
			if !ascii && !utf8.Valid(inner) {
				return "", errSlow
			}
			s.i = j + 1
			return s.in.str(inner), nil
		case c == '\\':
			return s.escaped(start-1, j)
		case c < 0x20:
			return "", errSlow
		case c >= 0x80:
			ascii = false
		}
	}
	return "", errSlow
}

// escaped reads the rest of a string that opens at start and has a
// backslash at j, through encoding/json.
func (s *scanner) escaped(start, j int) (string, error) {
	s.i = j
	for s.i < len(s.b) {
		switch c := s.b[s.i]; {
		case c == '\\':
			s.i += 2
			continue
		case c == '"':
			s.i++
			var v string
			if err := json.Unmarshal(s.b[start:s.i], &v); err != nil {
				return "", errSlow
			}
			return v, nil
		case c < 0x20:
			return "", errSlow
		}
		s.i++
	}
	return "", errSlow
}

func (s *scanner) boolean() (bool, error) {
	s.ws()
	switch {
	case len(s.b)-s.i >= 4 && string(s.b[s.i:s.i+4]) == "true":
		s.i += 4
		return true, nil
	case len(s.b)-s.i >= 5 && string(s.b[s.i:s.i+5]) == "false":
		s.i += 5
		return false, nil
	}
	return false, errSlow
}

// begin reads the opening brace of an object.
func (s *scanner) begin() error { return s.expect('{') }

// member reads the next member's key (unescaped keys only) and colon; ok
// is false at the closing brace. first tells whether a comma is due.
func (s *scanner) member(first bool) (key []byte, ok bool, err error) {
	c := s.peek()
	if c == '}' {
		s.i++
		return nil, false, nil
	}
	if !first {
		if c != ',' {
			return nil, false, errSlow
		}
		s.i++
		c = s.peek()
	}
	if c != '"' {
		return nil, false, errSlow
	}
	j := s.i + 1
	for j < len(s.b) && s.b[j] != '"' {
		if s.b[j] == '\\' || s.b[j] < 0x20 {
			return nil, false, errSlow
		}
		j++
	}
	if j >= len(s.b) {
		return nil, false, errSlow
	}
	key = s.b[s.i+1 : j]
	s.i = j + 1
	if err := s.expect(':'); err != nil {
		return nil, false, err
	}
	return key, true, nil
}

// field reads the next member's key and colon like member, and returns
// the key's index in keys, each written as compact data has it
// ("name":), or -1 at the closing brace; a key not in keys answers
// errSlow. Encoded data has its members in the struct's order, so the
// keys from from on are tried first, each by two masked compares, before
// the key is read byte by byte.
func (s *scanner) field(first bool, keys *prefixes, from int) (int, error) {
	j := s.i
	if !first && j < len(s.b) && s.b[j] == ',' {
		j++
	}
	if (first || j > s.i) && j < len(s.b) && s.b[j] == '"' {
		if k := keys.at(s.b, j, from); k >= 0 {
			s.i = j + len(keys.s[k])
			return k, nil
		}
	}
	k, ok, err := s.member(first)
	if err != nil {
		return 0, err
	}
	if !ok {
		return -1, nil
	}
	for i, name := range keys.s {
		if len(name) == len(k)+3 && string(k) == name[1:len(name)-2] {
			return i, nil
		}
	}
	return 0, errSlow
}

// word reads a string and returns the shared constant when it is one of
// words (each with its closing quote, `value"`), so that the usual values
// cost no allocation.
func (s *scanner) word(dst *string, words *prefixes) error {
	if s.peek() == '"' {
		if k := words.at(s.b, s.i+1, 0); k >= 0 {
			w := words.s[k]
			*dst = w[:len(w)-1]
			s.i += 1 + len(w)
			return nil
		}
	}
	return s.into(dst)
}

func (s *scanner) end() error {
	s.ws()
	if s.i != len(s.b) {
		return errSlow
	}
	return nil
}

func (s *scanner) into(dst *string) error {
	v, err := s.str()
	*dst = v
	return err
}

// list reads an array, calling elem for each element.
func (s *scanner) list(elem func() error) error {
	if err := s.expect('['); err != nil {
		return err
	}
	if s.peek() == ']' {
		s.i++
		return nil
	}
	for {
		if err := elem(); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		default:
			return errSlow
		}
	}
}

// The members of a command, in ledger.Command's order.
const (
	cmdCommand = iota
	cmdSenderID
	cmdPeripheralID
	cmdExtension
	cmdParams
	cmdMasked
	cmdInvalid
	cmdMessage
	cmdTransport
	cmdMethod
	cmdClient
	cmdPrincipal
)

// The keys and enumerated values the decoders know, read-only.
var (
	commandKeys = newPrefixes(`"command":`, `"sender_id":`, `"peripheral_id":`, `"extension":`, `"params":`, `"masked":`,
		`"invalid":`, `"message":`, `"transport":`, `"method":`, `"client":`, `"principal":`)
	paramKeys  = newPrefixes(`"k":`, `"v":`)
	signalKeys = newPrefixes(`"call_id":`, `"extension":`, `"type":`, `"direction":`, `"ani":`, `"dnis":`, `"acd":`, `"at":`,
		`"transport":`, `"principal":`)
	commandWords   = quoted(ledger.CmdTag, ledger.CmdPause, ledger.CmdResume, ledger.CmdMetadata, ledger.AliasPauseURL, ledger.AliasRecordTag, ledger.CmdRestart, ledger.CmdDelete)
	transportWords = quoted(ledger.TransportHTTP, ledger.TransportCAD, ledger.TransportFinesse, ledger.TransportNATS)
	methodWords    = quoted("GET", "POST", "PUT")
	signalWords    = quoted(ledger.SignalRinging, ledger.SignalDialing, ledger.SignalAnswered,
		ledger.SignalHeld, ledger.SignalRetrieved, ledger.SignalEnded)
	directionWords = quoted(ledger.DirectionInbound, ledger.DirectionOutbound, ledger.DirectionInternal)
)

// quoted is the prefixes of words, each followed by its closing quote.
func quoted(words ...string) *prefixes {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = w + `"`
	}
	return newPrefixes(q...)
}

func fastCommand(b []byte, d *ledger.Command, in *interner) error {
	keys := commandKeys
	s := scanner{b: b, in: in}
	if err := s.begin(); err != nil {
		return err
	}
	next := 0
	for first := true; ; first = false {
		k, err := s.field(first, keys, next)
		if err != nil {
			return err
		}
		if k < 0 {
			return s.end()
		}
		next = k + 1
		switch k {
		case cmdCommand:
			err = s.word(&d.Command, commandWords)
		case cmdSenderID:
			err = s.into(&d.SenderID)
		case cmdPeripheralID:
			err = s.into(&d.PeripheralID)
		case cmdExtension:
			err = s.into(&d.Extension)
		case cmdInvalid:
			err = s.into(&d.Invalid)
		case cmdMessage:
			err = s.into(&d.Message)
		case cmdTransport:
			err = s.word(&d.Transport, transportWords)
		case cmdMethod:
			err = s.word(&d.Method, methodWords)
		case cmdClient:
			err = s.into(&d.Client)
		case cmdPrincipal:
			err = s.into(&d.Principal)
		case cmdMasked:
			d.Masked = []string{}
			err = s.list(func() error {
				v, err := s.str()
				d.Masked = append(d.Masked, v)
				return err
			})
		case cmdParams:
			d.Params = s.in.paramList()
			err = s.list(func() error { return s.param(d) })
		}
		if err != nil {
			return err
		}
	}
}

// param reads one {"k":…,"v":…} of a command's params.
func (s *scanner) param(d *ledger.Command) error {
	keys := paramKeys
	var p ledger.Param
	if err := s.begin(); err != nil {
		return err
	}
	next := 0
	for first := true; ; first = false {
		k, err := s.field(first, keys, next)
		if err != nil {
			return err
		}
		if k < 0 {
			d.Params = append(d.Params, p)
			return nil
		}
		next = k + 1
		if k == 0 {
			err = s.into(&p.Key)
		} else {
			err = s.into(&p.Value)
		}
		if err != nil {
			return err
		}
	}
}

// The members of a call signal, in ledger.CallSignal's order.
const (
	sigCallID = iota
	sigExtension
	sigType
	sigDirection
	sigANI
	sigDNIS
	sigACD
	sigAt
	sigTransport
	sigPrincipal
)

func fastSignal(b []byte, d *ledger.CallSignal, in *interner) error {
	keys := signalKeys
	s := scanner{b: b, in: in}
	if err := s.begin(); err != nil {
		return err
	}
	next := 0
	for first := true; ; first = false {
		k, err := s.field(first, keys, next)
		if err != nil {
			return err
		}
		if k < 0 {
			return s.end()
		}
		next = k + 1
		switch k {
		case sigCallID:
			err = s.into(&d.CallID)
		case sigExtension:
			err = s.into(&d.Extension)
		case sigType:
			err = s.word(&d.Type, signalWords)
		case sigDirection:
			err = s.word(&d.Direction, directionWords)
		case sigANI:
			err = s.into(&d.ANI)
		case sigDNIS:
			err = s.into(&d.DNIS)
		case sigTransport:
			err = s.word(&d.Transport, transportWords)
		case sigPrincipal:
			err = s.into(&d.Principal)
		case sigACD:
			d.ACD, err = s.boolean()
		case sigAt:
			err = s.at(&d.At)
		}
		if err != nil {
			return err
		}
	}
}

// at reads a time, or null (the zero time, as Time.UnmarshalJSON does).
func (s *scanner) at(t *ledger.Time) error {
	if s.peek() == 'n' {
		if len(s.b)-s.i < 4 || string(s.b[s.i:s.i+4]) != "null" {
			return errSlow
		}
		s.i += 4
		*t = ledger.Time{}
		return nil
	}
	v, err := s.str()
	if err != nil {
		return err
	}
	p, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return errSlow
	}
	*t = ledger.T(p)
	return nil
}
