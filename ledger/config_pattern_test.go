package ledger

import (
	"regexp"
	"strings"
	"testing"
)

// patternRegexp is MatchPattern's meaning spelt as a regular expression.
func patternRegexp(p string) *regexp.Regexp {
	parts := strings.Split(p, "*")
	for i := range parts {
		parts[i] = regexp.QuoteMeta(parts[i])
	}
	return regexp.MustCompile(`(?s)\A` + strings.Join(parts, ".*") + `\z`)
}

func TestMatchPattern(t *testing.T) {
	for _, c := range []struct {
		p, s string
		want bool
	}{
		{"", "", true},
		{"", "1", false},
		{"*", "", true},
		{"*", "+13125550100", true},
		{"3420", "3420", true},
		{"3420", "34200", false},
		{"34*", "3420", true},
		{"34*", "3", false},
		{"*00", "3400", true},
		{"*00", "3401", false},
		{"+1312*", "+13125550100", true},
		{"+1312*", "13125550100", false},
		{"*555*", "+13125550100", true},
		{"*555*", "+13124440100", false},
		{"1*2*3", "1223", true},
		{"1*2*3", "12232", false},
		{"**", "x", true},
		{"*1*1*", "11", true},
		{"*1*1*", "1", false},
		{"#*#", "##", true},
		{"#*#", "#", false},
		{"9*", "9é", true},
		// A pattern that took the matcher before this one minutes: every
		// split of 64 digits at 16 stars.
		{strings.Repeat("*1", 15) + "*2", strings.Repeat("1", 64), false},
		{strings.Repeat("*1", 15) + "*2", strings.Repeat("1", 63) + "2", true},
	} {
		if got := MatchPattern(c.p, c.s); got != c.want {
			t.Errorf("MatchPattern(%q, %q) = %v, want %v", c.p, c.s, got, c.want)
		}
		if re := patternRegexp(c.p); re.MatchString(c.s) != c.want {
			t.Errorf("the case %q, %q is wrong: the regexp says %v", c.p, c.s, !c.want)
		}
	}
}

// FuzzMatchPattern checks MatchPattern against the regular expression of
// the same pattern.
func FuzzMatchPattern(f *testing.F) {
	f.Add("*555*", "+13125550100")
	f.Add("1*2*3", "12232")
	f.Add("*1*1*", "1")
	f.Add("+1312*", "9é")
	f.Add("1*", "1\xff")
	f.Fuzz(func(t *testing.T, p, s string) {
		if len(p) > 32 || len(s) > 128 {
			return
		}
		// Patterns are validated to these bytes (Team.Validate); the
		// number matched may hold anything.
		const alphabet = "0123456789+#*"
		b := []byte(p)
		for i := range b {
			b[i] = alphabet[int(b[i])%len(alphabet)]
		}
		p = string(b)
		if got, want := MatchPattern(p, s), patternRegexp(p).MatchString(s); got != want {
			t.Fatalf("MatchPattern(%q, %q) = %v, the regexp says %v", p, s, got, want)
		}
	})
}

func TestValidExtension(t *testing.T) {
	for ext, want := range map[string]bool{
		"3420": true, "+4915112345678": true, "#21": true, strings.Repeat("9", MaxExtensionLen): true,
		"": false, "+": false, "##": false, "3420 ": false, "34*": false, "34x0": false, strings.Repeat("9", MaxExtensionLen+1): false,
	} {
		if got := ValidExtension(ext); got != want {
			t.Errorf("ValidExtension(%q) = %v, want %v", ext, got, want)
		}
	}
}
