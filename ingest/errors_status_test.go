package ingest

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/recledger/recledger/ledger"
)

// The status of every error reason is statusOfReason's, and it is what
// docs/clients.md's table of answers says: each row's status for each
// reason word it names (a reason of a command's outcome, such as
// gateway or wrong_peripheral, through statusOfResult).
func TestStatusOfReasonMatchesTheClientsDoc(t *testing.T) {
	doc, err := os.ReadFile("../docs/clients.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile(`(?m)^\| ([0-9]{3}(?: / [0-9]{3})?) \| ([^|]+) \| ([^|]+) \|`)
	word := regexp.MustCompile("`([a-z_]+)`")
	aside := regexp.MustCompile(`\([^)]*\)`)
	outcomes := map[string]string{"rejected": ledger.OutcomeRejected, "unsupported": ledger.OutcomeUnsupported}
	checked := 0
	for _, m := range row.FindAllStringSubmatch(string(doc), -1) {
		statuses := strings.Split(m[1], " / ")
		if statuses[0] == "200" {
			continue // applied and no_effect: not errors
		}
		words := word.FindAllStringSubmatch(aside.ReplaceAllString(m[2], ""), -1)
		if len(statuses) > 1 && len(statuses) != len(words) {
			t.Fatalf("row %q: %d statuses for %d reasons", m[0], len(statuses), len(words))
		}
		for i, w := range words {
			want, _ := strconv.Atoi(statuses[min(i, len(statuses)-1)])
			reason := w[1]
			got := statusOfReason(reason, strings.Contains(m[3], "query string"))
			if outcome, ok := outcomes[strings.Trim(strings.Fields(m[3])[0], "`:")]; ok {
				got = statusOfResult(ledger.CommandResult{Outcome: outcome, Reason: reason})
			}
			if got != want {
				t.Errorf("%s: status %d, docs/clients.md says %d", reason, got, want)
			}
			checked++
		}
	}
	if checked < 15 {
		t.Errorf("only %d reasons found in docs/clients.md's table", checked)
	}
}
