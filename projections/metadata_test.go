package projections

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/recledger/recledger/ledger"
)

func TestMetadataValueFormats(t *testing.T) {
	cases := []struct {
		typ, v string
		ok     bool
	}{
		{ledger.MetaDate, "2026-12-01", true},
		{ledger.MetaDate, "2028-02-29", true},
		{ledger.MetaDate, "2026-02-29", false},
		{ledger.MetaDate, "2026-13-01", false},
		{ledger.MetaDate, "2026-1-01", false},
		{ledger.MetaDate, "26-12-01", false},
		{ledger.MetaDate, "2026/12/01", false},
		{ledger.MetaDate, "", false},
		{ledger.MetaNumber, "123", true},
		{ledger.MetaNumber, "12.5", true},
		{ledger.MetaNumber, ".30", true},
		{ledger.MetaNumber, "30.", false},
		{ledger.MetaNumber, "1,000", false},
		{ledger.MetaNumber, "-1", false},
		{ledger.MetaNumber, "+1", false},
		{ledger.MetaNumber, "1e5", false},
		{ledger.MetaNumber, "1.2.3", false},
		{ledger.MetaNumber, ".", false},
		{ledger.MetaNumber, "", false},
		{ledger.MetaText, "Jane Doe", true},
		{ledger.MetaText, "Zoë — VIP", true},
		{ledger.MetaText, "a&b", false},
		{ledger.MetaText, "a=b", false},
		{ledger.MetaText, "", true},
		{"colour", "x", false},
	}
	for _, c := range cases {
		if got := ValidMetadataValue(c.typ, c.v); got != c.ok {
			t.Errorf("ValidMetadataValue(%s, %q) = %v, want %v", c.typ, c.v, got, c.ok)
		}
	}
}

var numberRE = regexp.MustCompile(`^([0-9]+(\.[0-9]+)?|\.[0-9]+)$`)

// FuzzMetadataValue checks the hand-written validators against their
// definitions: the number regexp of RULES.md, time.Parse for dates, and
// the two reserved characters for text.
func FuzzMetadataValue(f *testing.F) {
	for _, s := range []string{"123", ".30", "30.", "1,000", "2026-02-29", "2028-02-29", "a&b", "a=b", "Zoë", "", "0000-01-01", "١٢٣"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if got, want := ValidMetadataValue(ledger.MetaNumber, v), numberRE.MatchString(v); got != want {
			t.Fatalf("number %q: got %v, want %v", v, got, want)
		}
		_, err := time.Parse(time.DateOnly, v)
		wantDate := err == nil && len(v) == 10 && strings.Trim(v[:4]+v[5:7]+v[8:], "0123456789") == ""
		if got := ValidMetadataValue(ledger.MetaDate, v); got != wantDate {
			t.Fatalf("date %q: got %v, want %v", v, got, wantDate)
		}
		if got, want := ValidMetadataValue(ledger.MetaText, v), !strings.ContainsAny(v, "&="); got != want {
			t.Fatalf("text %q: got %v, want %v", v, got, want)
		}
	})
}

func TestHoldsCardNumber(t *testing.T) {
	cases := map[string]bool{
		"4111111111111111":          true,
		"4111 1111-1111 1111":       true,
		"card 4111111111111111 exp": true,
		"x4111111111111111":         true,
		"99 4111111111111111 ":      true, // a card glued to other digits by a space is still caught
		"411111******1111":          false,
		"411111111111":              false, // 12 digits
		"123456789012":              false,
		"1234":                      false,
		"":                          false,
		"0000000000000":             true, // 13 zeros pass Luhn: treated as a card number
		// the bounds, and Luhn itself (mutation testing)
		"4222222222222":       true,  // 13 digits, one window
		"4222222222223":       false, // the same, failing Luhn
		"4778353374068124154": true,  // 19 digits; no shorter window passes Luhn
		"79927398713":         false, // Luhn-valid, but 11 digits
	}
	for v, want := range cases {
		if got := holdsCardNumber(v); got != want {
			t.Errorf("holdsCardNumber(%q) = %v, want %v", v, got, want)
		}
	}
}
