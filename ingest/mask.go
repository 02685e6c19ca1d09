package ingest

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Card-number masking (RULES.md "Metadata"): a run of 13–19 digits, with
// spaces or dashes allowed between them, that passes the Luhn check is a
// card number and never reaches the ledger in clear.
//
// A run is a maximal stretch of digits in which digits may be separated by
// any number of separators. A run holds a card number when any 13–19 of
// its consecutive digits pass Luhn, separators or not: a card number
// followed by its expiry date or CVV with nothing between
// ("41111111111111111225") holds one. This is the projections' own rule
// (projections.holdsCardNumber), which rejects such a key, so that
// nothing the fold rejects as a card number is in the ledger in clear. A
// run holding one is replaced whole by its first 6 digits, one '*' per
// hidden digit and its last 4 digits, its separators dropped
// ("4111 1111-1111 1111" → "411111******1111"), so that no digits of the
// run can combine into another card number. Everything else is kept. A
// long run of digits (a reference number of 20 or more) is likely to hold
// a window that passes Luhn by chance, and is then masked too: a false
// alarm costs a metadata value, a missed card number an audit.
//
// What reads as a digit or a space to a person counts, not only ASCII: a
// digit is any Unicode decimal digit (full-width "４", Arabic-Indic "٤"),
// kept as its ASCII digit when shown; a separator is a space or a dash of
// any kind (tab, no-break space, en dash, minus sign) or an invisible
// format character (zero-width space, soft hyphen). A card number typed
// with any of them is still one.

const (
	cardMinDigits = 13
	cardMaxDigits = 19
	cardKeepHead  = 6
	cardKeepTail  = 4
)

// maskCards returns v with every card-number run masked, and whether it
// masked any.
func maskCards(v string) (string, bool) {
	if plainFewDigits(v) {
		return v, false
	}
	var b strings.Builder
	masked := false
	i := 0
	for i < len(v) {
		r, size := utf8.DecodeRuneInString(v[i:])
		if _, ok := cardDigit(r); !ok {
			b.WriteString(v[i : i+size])
			i += size
			continue
		}
		end, digits := scanRun(v, i)
		if holdsCard(digits) {
			b.Write(digits[:cardKeepHead])
			b.WriteString(strings.Repeat("*", len(digits)-cardKeepHead-cardKeepTail))
			b.Write(digits[len(digits)-cardKeepTail:])
			masked = true
		} else {
			b.WriteString(v[i:end])
		}
		i = end
	}
	if !masked {
		return v, false
	}
	return b.String(), true
}

// plainFewDigits reports whether v is ASCII with fewer digits than a card
// number has: the usual value, which cannot hold one.
func plainFewDigits(v string) bool {
	n := 0
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c >= utf8.RuneSelf {
			return false
		}
		if isDigit(c) {
			n++
		}
	}
	return n < cardMinDigits
}

// scanRun reads the run starting at the digit at v[start]: it returns the
// index just after the run's last digit and the run's digits (as ASCII).
func scanRun(v string, start int) (end int, digits []byte) {
	end = start
	for j := start; j < len(v); {
		r, size := utf8.DecodeRuneInString(v[j:])
		if d, ok := cardDigit(r); ok {
			digits = append(digits, d)
			j += size
			end = j
			continue
		}
		if !cardSeparator(r) {
			break
		}
		j += size // a separator belongs to the run only if a digit follows
	}
	return end, digits
}

// cardDigit returns the ASCII digit r stands for, if r is a decimal digit
// of any script.
func cardDigit(r rune) (byte, bool) {
	if r >= '0' && r <= '9' {
		return byte(r), true
	}
	if r < utf8.RuneSelf || !unicode.IsDigit(r) {
		return 0, false
	}
	// Unicode's decimal digits come in runs of ten, zero to nine, and the
	// Nd table's ranges are made of whole runs (TestDigitRuns).
	for _, rg := range unicode.Nd.R16 {
		if lo, hi := rune(rg.Lo), rune(rg.Hi); r >= lo && r <= hi {
			return byte('0' + (r-lo)%10), true
		}
	}
	for _, rg := range unicode.Nd.R32 {
		if lo, hi := rune(rg.Lo), rune(rg.Hi); r >= lo && r <= hi {
			return byte('0' + (r-lo)%10), true
		}
	}
	return 0, false
}

// cardSeparator reports whether r may stand between a card number's
// digits: a space or a dash of any kind, or an invisible format character.
func cardSeparator(r rune) bool {
	switch {
	case r == ' ' || r == '-':
		return true
	case r < utf8.RuneSelf:
		return r == '\t' || r == '\n' || r == '\v' || r == '\f' || r == '\r'
	case r == '\u2212': // minus sign
		return true
	}
	return unicode.IsSpace(r) || unicode.In(r, unicode.Zs, unicode.Pd, unicode.Cf)
}

// holdsCard reports whether any 13–19 consecutive digits of a run pass
// Luhn.
func holdsCard(digits []byte) bool {
	for n := cardMinDigits; n <= cardMaxDigits && n <= len(digits); n++ {
		for i := 0; i+n <= len(digits); i++ {
			if luhn(digits[i : i+n]) {
				return true
			}
		}
	}
	return false
}

// luhn reports whether the ASCII digits pass the Luhn checksum.
func luhn(digits []byte) bool {
	sum := 0
	double := false
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
