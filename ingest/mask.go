package ingest

import (
	"math/big"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Card-number masking (RULES.md "Metadata"): a run of 13–19 digits, with
// spaces or dashes allowed between them, that passes the Luhn check is a
// card number and never reaches the ledger in clear; so is one grouped
// with other punctuation that begins as a card brand's numbers do (see
// "Grouping punctuation").
//
// A run is a maximal stretch of digits in which digits may be separated by
// any number of separators. A run holds a card number when any 13–19 of
// its consecutive digits pass Luhn, separators or not: a card number
// followed by its expiry date or CVV with nothing between
// ("41111111111111111225") holds one. This is the projections' own rule
// (projections.holdsCardNumber), which rejects such a key, so that
// nothing the fold rejects as a card number is in the ledger in clear. A
// run that is one card number, all its digits, is replaced by its first
// 6 digits, one '*' per hidden digit and its last 4 digits, its
// separators dropped ("4111 1111-1111 1111" → "411111******1111"), so
// that no digits of the run can combine into another card number; a run
// holding one among other digits is replaced by one '*' per digit
// ("41111111111111111225" → twenty '*'): its first and last digits may
// be the code or the expiry. A long run of digits (a reference number of
// 20 or more) is likely to hold a window that passes Luhn by chance, and
// is then masked too: a false alarm costs a metadata value, a missed
// card number an audit. The value's other digits are masked too (below).
//
// What reads as a digit or a space to a person counts, not only ASCII: a
// digit is any Unicode decimal digit (full-width "４", Arabic-Indic "٤"),
// kept as its ASCII digit when shown; a separator is a space or a dash of
// any kind (tab, no-break space, en dash, minus sign), an invisible format
// character (zero-width space, soft hyphen), a mark (a variation
// selector, a keycap's enclosing circle), a Hangul filler, or U+FFFD, the
// character a byte that could not be read became. A value that holds no
// card number so is also read in its NFKC form, which folds superscript
// and circled digits ("⁴", "④") to digits, and a number written with an
// exponent ("4.111111111111111e15", as JSON may) as its digits (one too
// large or not whole as its mantissa's digits: exponentDigits). A card
// number typed with any of them is still one.

// Beside a card number. A value that holds a card number has every other
// digit masked as well, each a '*': what is typed beside a card number is
// likely its expiry date and security code ("4111 1111 1111 1111 exp
// 12/27 cvv 123" → "411111******1111 exp **/** cvv ***"), which PCI DSS
// (3.3.1) says are never stored after authorization, and the ledger keeps
// what it is given for good. An auditor's walk found them in clear beside
// the masked number. Only such a value loses its digits: one without a
// card number is kept as written.

// Grouping punctuation. RULES.md names spaces and dashes between a card
// number's digits; people also group them with other marks
// ("4111.1111.1111.1111", "4111/1111/…", "4111·1111·…", "(4111) 1111 …",
// the Swiss "4111’1111…"), and the ledger cannot forget a card number it
// was given. So any punctuation or symbol (Unicode P and S) between digits
// joins them too, but a window of digits joined so is taken for a card
// number only if it also begins as a card brand's numbers do (cardBrand):
// lists of addresses, phone numbers, dates or amounts joined by commas and
// slashes pass Luhn as often as any digits do, and seldom begin so.

const (
	cardMinDigits = 13
	cardMaxDigits = 19
	cardKeepHead  = 6
	cardKeepTail  = 4
)

// maskCards returns v with every card-number run masked, and whether it
// masked any.
func maskCards(v string) (string, bool) {
	// Numbers with an exponent first: as written, the digits after their
	// point could be masked alone and leave the ones before it in clear.
	if d, ok := expandExponents(v); ok {
		if m, ok := maskRuns(d); ok {
			return m, true
		}
	}
	if m, ok := maskRuns(v); ok {
		return m, true
	}
	if !isASCII(v) {
		if n := norm.NFKC.String(v); n != v {
			if m, ok := maskRuns(n); ok {
				return m, true
			}
		}
	}
	return v, false
}

// maskRuns masks the card-number runs of v as it is written.
func maskRuns(v string) (string, bool) {
	if plainFewDigits(v) {
		return v, false
	}
	var b strings.Builder
	var cards [][2]int // where each card-number run begins and ends in v
	i := 0
	for i < len(v) {
		r, size := utf8.DecodeRuneInString(v[i:])
		if _, ok := cardDigit(r); !ok {
			i += size
			continue
		}
		end, digits, groups := scanRun(v, i)
		if holdsCard(digits, groups) {
			cards = append(cards, [2]int{i, end})
		}
		i = end
	}
	if len(cards) == 0 {
		return v, false
	}
	// Every other digit of a value that holds a card number is masked too
	// (see "Beside a card number").
	i = 0
	for _, c := range cards {
		b.WriteString(starDigits(v[i:c[0]]))
		_, digits, groups := scanRun(v, c[0])
		if !wholeCard(digits, groups) {
			// Other digits glued to the card's run (its code, its
			// expiry, "cvv 123, 4111…"): its first and last digits
			// may be theirs, not the card's.
			b.WriteString(strings.Repeat("*", len(digits)))
			i = c[1]
			continue
		}
		b.Write(digits[:cardKeepHead])
		b.WriteString(strings.Repeat("*", len(digits)-cardKeepHead-cardKeepTail))
		b.Write(digits[len(digits)-cardKeepTail:])
		i = c[1]
	}
	b.WriteString(starDigits(v[i:]))
	return b.String(), true
}

// starDigits is s with each of its digits (of any script) a '*', its
// other bytes as they are.
func starDigits(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if _, ok := cardDigit(r); ok {
			b.WriteByte('*')
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// maxExponent bounds the numbers exponentDigits writes out: a card number
// has at most 19 digits.
const maxExponent = 40

// exponentNumber is a decimal number with an exponent, within a text.
var exponentNumber = regexp.MustCompile(`[0-9]+(?:\.[0-9]+)?[eE][+-]?[0-9]+`)

// expandExponents writes each whole number with an exponent in v
// ("4.1e15", "41E+014") out as its digits; false when v holds none.
func expandExponents(v string) (string, bool) {
	if !hasExponent(v) {
		return "", false
	}
	changed := false
	out := exponentNumber.ReplaceAllStringFunc(v, func(n string) string {
		if d, ok := exponentDigits(n); ok {
			changed = true
			return d
		}
		return n
	})
	return out, changed
}

// hasExponent reports whether v has a digit, then e or E, then a digit
// or a sign: the usual value ("Jane Doe", "2026-11-23") has not, and
// skips the regular expression.
func hasExponent(v string) bool {
	for i := 1; i+1 < len(v); i++ {
		if c := v[i]; (c == 'e' || c == 'E') && isDigit(v[i-1]) {
			if n := v[i+1]; isDigit(n) || n == '+' || n == '-' {
				return true
			}
		}
	}
	return false
}

// exponentDigits writes a decimal number with an exponent ("4.1e15",
// "41E+014") out as its digits, when it is a whole number whose exponent
// is at most maxExponent. Any other ("4.111111111111111e41",
// "4.111111111111111e-5") is written as its mantissa's digits, the point
// removed, before its exponent ("4111111111111111e41"): those digits are
// what a reader sees of it, and a card number's digits among them are one
// (a walk's fuzzing found such a number kept in clear).
func exponentDigits(v string) (string, bool) {
	mant, exp, ok := strings.Cut(strings.ToLower(v), "e")
	if !ok || len(v) > 64 || !isDecimal(strings.TrimPrefix(mant, "-"), true) {
		return "", false
	}
	sign := ""
	if exp != "" && (exp[0] == '+' || exp[0] == '-') {
		sign, exp = exp[:1], exp[1:]
	}
	if !isDecimal(exp, false) {
		return "", false
	}
	significant := strings.Replace(strings.TrimPrefix(mant, "-"), ".", "", 1) + v[len(mant):]
	if exp = strings.TrimLeft(exp, "0"); exp == "" {
		exp = "0"
	}
	if n, _ := strconv.Atoi(exp); len(exp) > 2 || n > maxExponent {
		return significant, true
	}
	r, ok := new(big.Rat).SetString(mant + "e" + sign + exp)
	if !ok || !r.IsInt() {
		return significant, true
	}
	return new(big.Int).Abs(r.Num()).String(), true
}

// isDecimal reports whether s is digits, with one point among them when
// point is set.
func isDecimal(s string, point bool) bool {
	if s == "" {
		return false
	}
	seen := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case isDigit(c):
		case c == '.' && point && !seen:
			seen = true
		default:
			return false
		}
	}
	return s != "."
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
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

// runJoins tells, of a run's digits, which begin a group: starts holds the
// index of every digit after a separator of any kind, marks those after
// grouping punctuation (not only spaces and dashes).
type runJoins struct{ starts, marks []int }

// scanRun reads the run starting at the digit at v[start]: it returns the
// index just after the run's last digit, the run's digits (as ASCII), and
// where its groups begin.
func scanRun(v string, start int) (end int, digits []byte, g runJoins) {
	end = start
	sep, mark := false, false // since the last digit
	for j := start; j < len(v); {
		r, size := utf8.DecodeRuneInString(v[j:])
		if d, ok := cardDigit(r); ok {
			if sep {
				g.starts = append(g.starts, len(digits))
			}
			if mark {
				g.marks = append(g.marks, len(digits))
			}
			sep, mark = false, false
			digits = append(digits, d)
			j += size
			end = j
			continue
		}
		switch {
		case cardSeparator(r):
			sep = true
		case groupingMark(r):
			sep, mark = true, true
		default:
			return end, digits, g
		}
		j += size // a separator belongs to the run only if a digit follows
	}
	return end, digits, g
}

// groupingMark reports whether r is punctuation or a symbol that may group
// digits (see "Grouping punctuation").
func groupingMark(r rune) bool {
	if r < utf8.RuneSelf {
		return r > ' ' && r < 0x7f && !('0' <= r && r <= '9') && !('a' <= r && r <= 'z') && !('A' <= r && r <= 'Z')
	}
	return unicode.In(r, unicode.P, unicode.S)
}

// cardBrand reports whether digits begin as a card brand's numbers do:
// 4 (Visa), 5 (Mastercard, Maestro), 2221–2720 (Mastercard), 3 (American
// Express, Diners, JCB), 6 (Discover, UnionPay, Maestro).
func cardBrand(digits []byte) bool {
	switch digits[0] {
	case '3', '4', '5', '6':
		return true
	case '2':
		n, _ := strconv.Atoi(string(digits[:4]))
		return n >= 2221 && n <= 2720
	}
	return false
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
// digits as RULES.md's spaces and dashes do: a space or a dash of any
// kind, an invisible format character, a control character.
func cardSeparator(r rune) bool {
	switch {
	case r == ' ' || r == '-':
		return true
	case r < utf8.RuneSelf:
		return r < ' ' || r == 0x7f // control characters: tab, NUL, …
	case r == '\u2212', // minus sign
		r == utf8.RuneError,                                        // a byte that could not be read
		r == '\u115f', r == '\u1160', r == '\u3164', r == '\uffa0': // Hangul fillers, blank
		return true
	}
	return unicode.IsSpace(r) || unicode.In(r, unicode.Zs, unicode.Pd, unicode.Cf, unicode.Cc, unicode.Mn, unicode.Me)
}

// holdsCard reports whether any 13–19 consecutive digits of a run pass
// Luhn. A window that grouping punctuation joins (a mark inside it) must
// also be written as card numbers are: whole groups, the first of at
// least 4 digits (4-4-4-4, 4-6-5), beginning as a card brand's numbers
// do. Phone numbers (312, 555), addresses and dates have shorter groups.
func holdsCard(digits []byte, g runJoins) bool {
	for n := cardMinDigits; n <= cardMaxDigits && n <= len(digits); n++ {
		for i := 0; i+n <= len(digits); i++ {
			w := digits[i : i+n]
			if !luhn(w) {
				continue
			}
			if !slices.ContainsFunc(g.marks, func(j int) bool { return j > i && j < i+n }) || g.cardGroups(i, i+n, len(digits)) && cardBrand(w) {
				return true
			}
		}
	}
	return false
}

// wholeCard reports whether a run's digits are one card number, all of
// them, as holdsCard takes one.
func wholeCard(digits []byte, g runJoins) bool {
	n := len(digits)
	return n >= cardMinDigits && n <= cardMaxDigits && luhn(digits) &&
		(len(g.marks) == 0 || g.cardGroups(0, n, n) && cardBrand(digits))
}

// cardGroups reports whether digits [i, end) of a run of n digits are
// whole groups, the first of at least 4 digits.
func (g runJoins) cardGroups(i, end, n int) bool {
	if i != 0 && !slices.Contains(g.starts, i) || end != n && !slices.Contains(g.starts, end) {
		return false
	}
	next := n // where the group at i ends
	for _, s := range g.starts {
		if s > i {
			next = s
			break
		}
	}
	return next-i >= 4
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
