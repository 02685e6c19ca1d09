package projections

import (
	"encoding/binary"

	"github.com/recledger/recledger/ledger"
)

// The ledger's own encoder (ledger.EncodeData) writes a command or a call
// signal in one shape: compact, members in the struct's order, empty
// optional members left out. canonSignal and canonCommand read exactly
// that shape, member after member, each key tested where it is due by two
// masked compares. Any other shape (white space, another order, an
// escape, a non-ASCII byte, a card-number mask, a key json.Unmarshal would
// match by case) answers false, and the scanner reads the data again from
// the start. What they accept, json.Unmarshal reads to the same struct;
// FuzzDecode and TestCanonTakesTheEncodersShape check that.
//
// They are written with the position in a local variable and small
// helpers the compiler inlines: the same steps as methods on a cursor
// cost twice the instructions, and each optional member's four lines
// folded into a helper (too large to inline) cost 3 % of a fold.

// lit is a literal of at most 16 bytes as two masked little-endian words.
type lit struct {
	lo, loMask, hi, hiMask uint64
	n                      int
}

// newLit makes the lit of s; more than 16 bytes panics, at the first test
// of the package.
func newLit(s string) lit {
	w := newPrefixes(s).w[0]
	return lit{lo: w.lo, loMask: w.loMask, hi: w.hi, hiMask: w.hiMask, n: len(s)}
}

// litAt reports whether b holds l at i. b is padded (see padded): its
// last 16 bytes are zeros past the data, which no literal holds.
func litAt(b []byte, i int, l *lit) bool {
	if uint(i)+16 > uint(len(b)) {
		return false
	}
	w := (*[16]byte)(b[i:])
	return binary.LittleEndian.Uint64(w[:8])&l.loMask == l.lo && binary.LittleEndian.Uint64(w[8:])&l.hiMask == l.hi
}

// padded returns data followed by 16 zero bytes, in in's buffer (a new
// one when in is nil). Nothing decoded keeps a reference to it: strings
// are copied or interned.
func padded(data []byte, in *interner) []byte {
	var b []byte
	if in != nil {
		b = in.pad[:0]
	}
	b = append(b, data...)
	b = append(b, make([]byte, 16)...)
	if in != nil {
		in.pad = b
	}
	return b
}

// strAt reads a string of printable ASCII without escapes at i; next is
// the position after it, -1 when there is no such string.
func strAt(b []byte, i int, in *interner) (s string, next int) {
	if i >= len(b) || b[i] != '"' {
		return "", -1
	}
	j := i + 1 + plainRun(b, i+1)
	if j >= len(b) || b[j] != '"' {
		return "", -1
	}
	return in.str(b[i+1 : j]), j + 1
}

// wordAt reads a string at i, the shared constant when it is one of
// words.
func wordAt(b []byte, i int, words *prefixes, in *interner) (s string, next int) {
	if i < len(b) && b[i] == '"' && uint(i)+17 <= uint(len(b)) {
		if k := words.atPadded((*[16]byte)(b[i+1:])); k >= 0 {
			w := words.s[k]
			return w[:len(w)-1], i + 1 + len(w)
		}
	}
	return strAt(b, i, in)
}

// The literals of the encoder's shape, read-only: the first member of
// each object with its brace, the others with their comma.
var (
	litCallID    = newLit(`{"call_id":`)
	litExtension = newLit(`,"extension":`)
	litType      = newLit(`,"type":`)
	litDirection = newLit(`,"direction":`)
	litANI       = newLit(`,"ani":`)
	litDNIS      = newLit(`,"dnis":`)
	litACD       = newLit(`,"acd":true`)
	litAtKey     = newLit(`,"at":`)
	litNull      = newLit(`null`)
	litTransport = newLit(`,"transport":`)
	litPrincipal = newLit(`,"principal":`)

	litCommand      = newLit(`{"command":`)
	litSenderID     = newLit(`,"sender_id":`)
	litPeripheralID = newLit(`"peripheral_id":`) // 16 bytes: its comma is tested apart
	litParams       = newLit(`,"params":[`)
	litParamK       = newLit(`{"k":`)
	litParamV       = newLit(`,"v":`)
	litMasked       = newLit(`,"masked":`)
	litInvalid      = newLit(`,"invalid":`)
	litMessage      = newLit(`,"message":`)
	litMethod       = newLit(`,"method":`)
	litClient       = newLit(`,"client":`)
)

// canonTime reads a time in quotes at i, spelt as the ledger writes it.
func canonTime(b []byte, i int) (ledger.Time, bool) {
	const n = len(`"2006-01-02T15:04:05.000Z"`)
	if i+n > len(b) || b[i] != '"' || b[i+n-1] != '"' {
		return ledger.Time{}, false
	}
	return ledger.ParseCanonicalTime(b[i+1 : i+n-1])
}

// canonSignal decodes a call signal in the encoder's shape into the zero
// d; false leaves d to be zeroed and decoded again.
func canonSignal(data []byte, d *ledger.CallSignal, in *interner) bool {
	b := padded(data, in)
	if !litAt(b, 0, &litCallID) {
		return false
	}
	i := litCallID.n
	if d.CallID, i = strAt(b, i, in); i < 0 || !litAt(b, i, &litExtension) {
		return false
	}
	if d.Extension, i = strAt(b, i+litExtension.n, in); i < 0 || !litAt(b, i, &litType) {
		return false
	}
	if d.Type, i = wordAt(b, i+litType.n, signalWords, in); i < 0 {
		return false
	}
	if litAt(b, i, &litDirection) {
		if d.Direction, i = wordAt(b, i+litDirection.n, directionWords, in); i < 0 {
			return false
		}
	}
	if litAt(b, i, &litANI) {
		if d.ANI, i = strAt(b, i+litANI.n, in); i < 0 {
			return false
		}
	}
	if litAt(b, i, &litDNIS) {
		if d.DNIS, i = strAt(b, i+litDNIS.n, in); i < 0 {
			return false
		}
	}
	if litAt(b, i, &litACD) {
		d.ACD, i = true, i+litACD.n
	}
	if !litAt(b, i, &litAtKey) {
		return false
	}
	const timeLen = len(`"2006-01-02T15:04:05.000Z"`)
	if i += litAtKey.n; litAt(b, i, &litNull) {
		i += litNull.n
	} else if t, ok := canonTime(b, i); ok { // a client's time, as the ledger writes it
		d.At, i = t, i+timeLen
	} else { // any other spelling: as the scanner reads it
		s := scanner{b: data, i: i, in: in}
		if s.at(&d.At) != nil {
			return false
		}
		i = s.i
	}
	if !litAt(b, i, &litTransport) {
		return false
	}
	if d.Transport, i = wordAt(b, i+litTransport.n, transportWords, in); i < 0 {
		return false
	}
	if litAt(b, i, &litPrincipal) {
		if d.Principal, i = strAt(b, i+litPrincipal.n, in); i < 0 {
			return false
		}
	}
	return i == len(data)-1 && b[i] == '}'
}

// canonCommand decodes a command in the encoder's shape into the zero d;
// false leaves d to be zeroed and decoded again. Masked card numbers are
// left to the scanner.
func canonCommand(data []byte, d *ledger.Command, in *interner) bool {
	b := padded(data, in)
	if !litAt(b, 0, &litCommand) {
		return false
	}
	i := litCommand.n
	if d.Command, i = wordAt(b, i, commandWords, in); i < 0 {
		return false
	}
	if litAt(b, i, &litSenderID) {
		if d.SenderID, i = strAt(b, i+litSenderID.n, in); i < 0 {
			return false
		}
	}
	if i < len(b) && b[i] == ',' && litAt(b, i+1, &litPeripheralID) {
		if d.PeripheralID, i = strAt(b, i+1+litPeripheralID.n, in); i < 0 {
			return false
		}
	}
	if litAt(b, i, &litExtension) {
		if d.Extension, i = strAt(b, i+litExtension.n, in); i < 0 {
			return false
		}
	}
	if litAt(b, i, &litParams) {
		i += litParams.n
		d.Params = in.paramList()
		for {
			var p ledger.Param
			if !litAt(b, i, &litParamK) {
				return false
			}
			if p.Key, i = strAt(b, i+litParamK.n, in); i < 0 || !litAt(b, i, &litParamV) {
				return false
			}
			if p.Value, i = strAt(b, i+litParamV.n, in); i < 0 || i+1 >= len(b) || b[i] != '}' {
				return false
			}
			d.Params = append(d.Params, p)
			if i++; b[i] != ',' {
				break
			}
			i++
		}
		if b[i] != ']' {
			return false
		}
		i++
	}
	if litAt(b, i, &litMasked) {
		return false
	}
	if litAt(b, i, &litInvalid) {
		if d.Invalid, i = strAt(b, i+litInvalid.n, in); i < 0 {
			return false
		}
	}
	if litAt(b, i, &litMessage) {
		if d.Message, i = strAt(b, i+litMessage.n, in); i < 0 {
			return false
		}
	}
	if !litAt(b, i, &litTransport) {
		return false
	}
	if d.Transport, i = wordAt(b, i+litTransport.n, transportWords, in); i < 0 {
		return false
	}
	if litAt(b, i, &litMethod) {
		if d.Method, i = wordAt(b, i+litMethod.n, methodWords, in); i < 0 {
			return false
		}
	}
	if litAt(b, i, &litClient) {
		if d.Client, i = strAt(b, i+litClient.n, in); i < 0 {
			return false
		}
	}
	if litAt(b, i, &litPrincipal) {
		if d.Principal, i = strAt(b, i+litPrincipal.n, in); i < 0 {
			return false
		}
	}
	return i == len(data)-1 && b[i] == '}'
}
