package ingest

import (
	"strings"
	"testing"
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
		{"4111111111111112", "4111111111111112", false},                // fails Luhn
		{"123456789012", "123456789012", false},                        // 12 digits
		{"+13125550100", "+13125550100", false},                        // phone number
		{"2026-11-23", "2026-11-23", false},                            // a date
		{"10.70", "10.70", false},                                      // an amount
		{"x94111111111111111y", "x94111111111111111y", false},          // 17 digits, not Luhn-valid
		{"4111111111111111 1225", "411111**********1225", true},        // card then expiry: whole run hidden
		{"ref 12 4111-1111-1111-1111", "ref 124111********1111", true}, // number before the card
		{"a 4111111111111111 b 5500005555555559", "a 411111******1111 b 550000******5559", true},
		{"", "", false},
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

// cardLeft reports a card number left in v: whole consecutive digit groups
// of a run (groups separated by spaces and dashes) with 13–19 digits
// passing Luhn. Written independently of the masker.
func cardLeft(v string) (string, bool) {
	isSep := func(r rune) bool { return r == ' ' || r == '-' }
	runs := strings.FieldsFunc(v, func(r rune) bool { return !(r >= '0' && r <= '9') && !isSep(r) })
	for _, run := range runs {
		groups := strings.FieldsFunc(run, isSep)
		for i := range groups {
			card := ""
			for _, g := range groups[i:] {
				card += g
				if len(card) > cardMaxDigits {
					break
				}
				if len(card) >= cardMinDigits && luhn([]byte(card)) {
					return card, true
				}
			}
		}
	}
	return "", false
}

func FuzzMask(f *testing.F) {
	for _, s := range []string{"4111111111111111", "4111 1111-1111 1111", "x 5500005555555559 y", "12345", "--1 2-3", "9" + strings.Repeat("0", 30)} {
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
