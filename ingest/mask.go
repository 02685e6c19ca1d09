package ingest

import "strings"

// Card-number masking (RULES.md "Metadata"): a run of 13–19 digits, with
// spaces or dashes allowed between them, that passes the Luhn check is a
// card number and never reaches the ledger in clear.
//
// A run is a maximal stretch of digits in which digits may be separated by
// any number of spaces and dashes; the separators cut it into groups. A
// card number is a run, or a part of a run made of whole consecutive
// groups ("4111 1111 1111 1111 1225" holds one), with 13–19 digits that
// pass Luhn. A run holding one is replaced whole by its first 6 digits, one
// '*' per hidden digit and its last 4 digits, its separators dropped
// ("4111 1111-1111 1111" → "411111******1111"), so that no digits of the
// run can combine into another card number. Everything else is kept.

const (
	cardMinDigits = 13
	cardMaxDigits = 19
	cardKeepHead  = 6
	cardKeepTail  = 4
)

// maskCards returns v with every card-number run masked, and whether it
// masked any.
func maskCards(v string) (string, bool) {
	if countDigits(v) < cardMinDigits {
		return v, false
	}
	var b strings.Builder
	masked := false
	i := 0
	for i < len(v) {
		if !isDigit(v[i]) {
			b.WriteByte(v[i])
			i++
			continue
		}
		end, digits, groups := scanRun(v, i)
		if len(digits) >= cardMinDigits && holdsCard(digits, groups) {
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

// scanRun reads the run starting at the digit v[start]: it returns the index
// just after the run's last digit, the run's digits, and where each group
// ends in digits.
func scanRun(v string, start int) (end int, digits []byte, groupEnds []int) {
	end = start
	for j := start; j < len(v); j++ {
		c := v[j]
		switch {
		case isDigit(c):
			digits = append(digits, c)
			end = j + 1
		case c == ' ' || c == '-':
			// a separator belongs to the run only if a digit follows
			if n := len(groupEnds); isDigit(v[j-1]) && (n == 0 || groupEnds[n-1] != len(digits)) {
				groupEnds = append(groupEnds, len(digits))
			}
		default:
			return end, digits, closeGroups(groupEnds, len(digits))
		}
	}
	return end, digits, closeGroups(groupEnds, len(digits))
}

func closeGroups(ends []int, n int) []int {
	if len(ends) == 0 || ends[len(ends)-1] != n {
		ends = append(ends, n)
	}
	return ends
}

// holdsCard reports whether whole consecutive groups of a run hold 13–19
// digits that pass Luhn.
func holdsCard(digits []byte, groupEnds []int) bool {
	start := 0
	for i := range groupEnds {
		for _, end := range groupEnds[i:] {
			n := end - start
			if n > cardMaxDigits {
				break
			}
			if n >= cardMinDigits && luhn(digits[start:end]) {
				return true
			}
		}
		start = groupEnds[i]
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

func countDigits(v string) int {
	n := 0
	for i := 0; i < len(v); i++ {
		if isDigit(v[i]) {
			n++
		}
	}
	return n
}
