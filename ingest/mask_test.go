package ingest

import (
	"fmt"
	"golang.org/x/text/unicode/norm"
	"math/big"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestMaskCards(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		masked   bool
	}{
		{"4111111111111111", "411111******1111", true},
		{"card 4111 1111 1111 1111 ok", "card 411111******1111 ok", true},
		{"4111-1111-1111-1111", "411111******1111", true},
		{"378282246310005", "378282*****0005", true},                   // 15-digit Amex
		{"6011111111111117", "601111******1117", true},                 // Discover
		{"4111111111111113", "4111111111111113", false},                // no 13–19 digits of it pass Luhn
		{"123456789012", "123456789012", false},                        // 12 digits
		{"+13125550100", "+13125550100", false},                        // phone number
		{"2026-11-23", "2026-11-23", false},                            // a date
		{"10.70", "10.70", false},                                      // an amount
		{"x94111111111111000y", "x94111111111111000y", false},          // 17 digits, none of their windows Luhn-valid
		{"41111111111111111225", "********************", true},         // card and expiry, no separator
		{"5500000000000004123", "*******************", true},           // card and CVV
		{"123454111111111111111", "*********************", true},       // digits before the card
		{"4111111111111111 1225", "********************", true},        // card then expiry: whole run hidden
		{"ref 12 4111-1111-1111-1111", "ref ******************", true}, // number before the card
		{"a 4111111111111111 b 5500005555555559", "a 411111******1111 b 550000******5559", true},
		{"", "", false},
		// the bounds of a card number's length and of a brand's range
		// (mutation testing: each moved by one went unnoticed)
		{"4222222222222", "422222***2222", true},                                    // 13 digits, the shortest
		{"4778353374068124154", "477835*********4154", true},                        // 19 digits, no shorter window passes Luhn
		{"2221.0000.0000.0009", "222100******0009", true},                           // Mastercard's 2221, grouped by points
		{"2220.0000.0000.0000", "2220.0000.0000.0000", false},                       // below its range
		{"cvv 123 card 4111 1111 1111 1111", "cvv *** card 411111******1111", true}, // digits before the card
		// what reads as a space, a dash or a digit to a person
		{"4111\t1111\t1111\t1111", "411111******1111", true},
		{"4111\u00a01111\u00a01111\u00a01111", "411111******1111", true}, // no-break spaces
		{"4111\u20131111\u20131111\u20131111", "411111******1111", true}, // en dashes
		{"4111\u200b1111111111\u00ad11", "411111******1111", true},       // zero-width space, soft hyphen
		{"\uff14111111111111111", "411111******1111", true},              // a full-width first digit
		{"\uff14\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11", "411111******1111", true},
		{"\u0664\u0661\u0661\u0661 1111 1111 1111", "411111******1111", true},                       // Arabic-Indic digits
		{"n\u00b0 4111111111111113 \u00e9t\u00e9", "n\u00b0 4111111111111113 \u00e9t\u00e9", false}, // accents around a non-card
		{"caf\u00e9 4111 1111 1111 1111.", "caf\u00e9 411111******1111.", true},
		{"\xff4111111111111111\xfe", "\xff411111******1111\xfe", true},         // invalid UTF-8 around it is kept
		{"\uff11\uff12\uff13", "\uff11\uff12\uff13", false},                    // few digits: kept as sent
		{"4111\ufffd1111\ufffd1111\ufffd1111", "411111******1111", true},       // bytes that could not be read
		{"4111\ufe0f1111\u034f1111\u31641111", "411111******1111", true},       // a variation selector, a joiner, a filler
		{"4\ufe0f\u20e31\ufe0f\u20e311111111111111", "411111******1111", true}, // keycap digits
		{"\u2074\u00b9\u00b9\u00b91111 1111 1111", "411111******1111", true},   // superscripts, by NFKC
		{"\u2463\u2460\u2460\u2460 1111 1111 1111", "411111******1111", true},  // circled digits, by NFKC
		{"4.111111111111111e15", "411111******1111", true},                     // a JSON number with an exponent
		{"-4111111111111111000E-3", "-411111******1111", true},                 // the number, not its digits as written
		{"4.5e3", "4.5e3", false},
		{"1e999999", "1e999999", false},
		{"4.111111111111111e015", "411111******1111", true}, // an exponent with leading zeros
		{"4.111111111111111E+0015", "411111******1111", true},
		{"x4.111111111111111e15 y", "x411111******1111 y", true},   // within a text
		{"5.500005555555559e15", "550000******5559", true},         // the whole number, not its decimals alone
		{"4111\x001111\x011111\x7f1111", "411111******1111", true}, // control characters
		// grouped with punctuation or symbols, beginning as a brand's do
		{"4111.1111.1111.1111", "411111******1111", true},
		{"4111/1111/1111/1111", "411111******1111", true},
		{"4111,1111,1111,1111", "411111******1111", true},
		{"4111_1111_1111_1111", "411111******1111", true},
		{"(4111) 1111 1111 1111", "(411111******1111", true},
		{"4111:1111;1111|1111", "411111******1111", true},
		{"[4111] [1111] [1111] [1111]", "[411111******1111]", true},
		{"4111\u00b71111\u20221111\u20191111", "411111******1111", true}, // middle dot, bullet, Swiss apostrophe
		{"\u0664\u0661\u0661\u0661\u066c\u0661\u0661\u0661\u0661\u066c\u0661\u0661\u0661\u0661\u066c\u0661\u0661\u0661\u0661", "411111******1111", true}, // Arabic thousands separators
		{"4111\uff0e1111\uff0e1111\uff0e1111", "411111******1111", true},                                                                                 // full-width full stops
		{"5500.0055.5555.5559", "550000******5559", true},
		{"3782.822463.10005", "378282*****0005", true},
		// joined by marks but not beginning as a brand's: lists, dates, amounts
		{"total 1,234,567.89 on 2026/11/30", "total 1,234,567.89 on 2026/11/30", false},
		{"ip 192.168.100.200", "ip 192.168.100.200", false},
		{"192.168.100.200, 192.168.100.201", "192.168.100.200, 192.168.100.201", false},
		{"11/01/2026 - 11/30/2026", "11/01/2026 - 11/30/2026", false},
		{"1234.5678.9012.3452", "1234.5678.9012.3452", false}, // Luhn-valid, no brand: spaces would make it one (RULES.md)
		{"1234 5678 9012 3452", "123456******3452", true},
		{"4.111.111.111.111.111", "4.111.111.111.111.111", false},                   // as an amount: groups of 1 and 3
		{"(312) 555-0100, (312) 555-0101", "(312) 555-0100, (312) 555-0101", false}, // phone numbers: groups of 3
		{"4111.1111.1111.1111225", "4111.1111.1111.1111225", false},                 // a CVV glued to the last group: not whole groups
		// beside a card number, every other digit masked: its expiry and code
		{"4111 1111 1111 1111 exp 12/27 cvv 123", "411111******1111 exp **/** cvv ***", true},
		{"cvv 123, 4111111111111111", "cvv *******************", true},
		{"4111111111111111 and 5500005555555559 at 9", "411111******1111 and 550000******5559 at *", true},
		{"exp \u0661\u0662/27 4111111111111111", "exp ********************", true},
		// mutation testing: each of these once let a change to the rules through
		{"4.111111111111111e-5", "411111******1111e-*", true},            // not a whole number: its mantissa's digits
		{"2720.5000.0000.0004", "272050******0004", true},                // the top of Mastercard's range
		{"6011.1111.1111.1117", "601111******1117", true},                // Discover, grouped by points
		{"1234\u22125678\u22129012\u22123452", "123456******3452", true}, // minus signs join as dashes do, brand or not
		{"1234\ufffd5678\ufffd9012\ufffd3452", "123456******3452", true}, // so do bytes that could not be read
		{"4111\uffa01111\uffa01111\uffa01111", "411111******1111", true}, // a half-width Hangul filler
		{"12.1000 0000 0007 0001", "******************", true},           // a card number after an amount's point
		{"411.5300.0000.0009", "411.5300.0000.0009", false},              // a first group of 3: not as cards are written
		{"1900.555555555555558", "*******************", true},            // Luhn-valid whole, no brand: its window is the card
	} {
		got, masked := maskCards(tc.in)
		if got != tc.want || masked != tc.masked {
			t.Errorf("maskCards(%q) = %q, %v; want %q, %v", tc.in, got, masked, tc.want, tc.masked)
		}
	}
}

func TestLuhn(t *testing.T) {
	for s, want := range map[string]bool{"79927398713": true, "79927398710": false, "4111111111111111": true, "0": true} {
		if got := luhn([]byte(s)); got != want {
			t.Errorf("luhn(%s) = %v, want %v", s, got, want)
		}
	}
}

// cardLeft reports a card number left in v: 13–19 consecutive decimal
// digits of any script, within a run of digits and separators (spaces,
// dashes, invisible format characters and marks of any script, Hangul
// fillers, U+FFFD, the punctuation . / , _ ( )), passing Luhn; in v as written, in its NFKC form, or in
// the digits of v read as a number with an exponent. Written independently
// of the masker.
func cardLeft(v string) (string, bool) {
	forms := []string{v, norm.NFKC.String(v)}
	if strings.ContainsAny(v, "eE") {
		// every number with an exponent written out, where it is whole
		// and its exponent at most 40; any other as its mantissa's
		// digits, what a reader sees of it
		words := regexp.MustCompile(`[0-9]+(\.[0-9]+)?[eE][+-]?[0-9]+`).ReplaceAllStringFunc(v, func(n string) string {
			at := strings.IndexAny(n, "eE")
			e, _ := strconv.Atoi(strings.TrimLeft(n[at+1:], "+-"))
			if r, ok := new(big.Rat).SetString(n); ok && r.IsInt() && len(n) <= 64 && len(strings.TrimLeft(n[at+1:], "+-0")) <= 2 && e <= 40 {
				return r.Num().String()
			}
			if len(n) > 64 {
				return n
			}
			return strings.Replace(n[:at], ".", "", 1) + n[at:]
		})
		forms = append(forms, words)
	}
	for _, f := range forms {
		if d, ok := cardIn(f); ok {
			return d, true
		}
	}
	return "", false
}

func cardIn(v string) (string, bool) {
	isSep := func(r rune) bool {
		return unicode.IsSpace(r) || unicode.In(r, unicode.Zs, unicode.Pd, unicode.Cf, unicode.Cc, unicode.Mn, unicode.Me) ||
			strings.ContainsRune("\u2212\ufffd\u115f\u1160\u3164\uffa0", r)
	}
	// other punctuation and symbols join digits too, but a window they
	// join must begin as a brand's numbers do
	isMark := func(r rune) bool { return !isSep(r) && unicode.In(r, unicode.P, unicode.S) }
	brand := func(d string) bool {
		return strings.ContainsAny(d[:1], "3456") || (d[:4] >= "2221" && d[:4] <= "2720")
	}
	runs := strings.FieldsFunc(v, func(r rune) bool { return !unicode.IsDigit(r) && !isSep(r) && !isMark(r) })
	for _, run := range runs {
		var digits []byte
		var marked, first []bool // before digit i: a mark; any separator
		mark, gap := false, false
		for _, r := range run {
			switch {
			case unicode.IsDigit(r):
				digits = append(digits, digitOf(r))
				marked = append(marked, mark && len(digits) > 1)
				first = append(first, gap || len(digits) == 1)
				mark, gap = false, false
			case isMark(r):
				mark, gap = true, true
			default:
				gap = true
			}
		}
		for i := range digits {
			for n := cardMinDigits; n <= cardMaxDigits && i+n <= len(digits); n++ {
				w := string(digits[i : i+n])
				if !luhn([]byte(w)) {
					continue
				}
				// by marks: whole groups, the first of 4 digits or more
				whole := first[i] && (i+n == len(digits) || first[i+n])
				firstLen := 1
				for i+firstLen < len(digits) && !first[i+firstLen] {
					firstLen++
				}
				if !slices.Contains(marked[i+1:i+n], true) || (brand(w) && whole && firstLen >= 4) {
					return w, true
				}
			}
		}
	}
	return "", false
}

// digitOf is the ASCII digit of a decimal digit r, read from Unicode's
// table as the masker reads it (TestDigitRuns checks that reading).
func digitOf(r rune) byte {
	for _, rg := range unicode.Nd.R16 {
		if r >= rune(rg.Lo) && r <= rune(rg.Hi) {
			return byte('0' + (r-rune(rg.Lo))%10)
		}
	}
	for _, rg := range unicode.Nd.R32 {
		if r >= rune(rg.Lo) && r <= rune(rg.Hi) {
			return byte('0' + (r-rune(rg.Lo))%10)
		}
	}
	panic(fmt.Sprintf("%U is not a decimal digit", r))
}

// TestDigitRuns holds the masker to what it assumes of Unicode: the
// decimal digits come in whole runs of ten in the Nd table, each from zero
// to nine, so a digit's value is its distance from its range's start,
// modulo ten.
func TestDigitRuns(t *testing.T) {
	check := func(lo, hi, stride uint32) {
		if stride != 1 || (hi-lo+1)%10 != 0 {
			t.Errorf("Nd range %U-%U stride %d: not whole runs of ten", lo, hi, stride)
		}
	}
	for _, rg := range unicode.Nd.R16 {
		check(uint32(rg.Lo), uint32(rg.Hi), uint32(rg.Stride))
	}
	for _, rg := range unicode.Nd.R32 {
		check(rg.Lo, rg.Hi, rg.Stride)
	}
	for r, want := range map[rune]byte{'0': '0', '9': '9', '\uff10': '0', '\uff19': '9', '\u0663': '3', '\u096f': '9', '\U0001d7d7': '9', '\U0001d7d8': '0'} {
		if got, ok := cardDigit(r); !ok || got != want {
			t.Errorf("cardDigit(%U) = %q, %v; want %q", r, got, ok, want)
		}
	}
	for _, r := range []rune{'a', '\u00b2', '\u2155', '\u216b', utf8.RuneError} { // superscript two, a fraction, a Roman numeral: no decimal digits
		if _, ok := cardDigit(r); ok {
			t.Errorf("cardDigit(%U) is a digit", r)
		}
	}
}

func FuzzMask(f *testing.F) {
	for _, s := range []string{"4111111111111111", "4111 1111-1111 1111", "4111\u00a01111\t1111\u20131111", "\uff14111111111111111", "x 5500005555555559 y", "12345", "--1 2-3", "9" + strings.Repeat("0", 30),
		// numbers with an exponent that are not written out (too large, not
		// whole): their mantissa's digits are what a reader sees (fuzzing)
		"100E40", "1e41", "4.111111111111111e41", "4.111111111111111e99", "4.111111111111111e-50", "4.111111111111111e5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		got, masked := maskCards(v)
		if d, ok := cardLeft(got); ok {
			t.Fatalf("maskCards(%q) = %q leaves card number %s", v, got, d)
		}
		if !masked && got != v {
			t.Fatalf("maskCards(%q) changed the value without masking: %q", v, got)
		}
		if _, ok := cardLeft(v); ok != masked {
			t.Fatalf("maskCards(%q): masked=%v but input has a card=%v", v, masked, ok)
		}
	})
}
