package ledger

import (
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// FileReport is bbolt's check of the ledger file's pages (Store.CheckFile).
type FileReport struct {
	OK    bool   `json:"ok"`
	Pages uint64 `json:"pages"` // pages in use (the high water mark)
	// Problems are the first of bbolt's findings (maxFileProblems);
	// More counts those left out.
	Problems []string `json:"problems,omitempty"`
	More     int      `json:"more,omitempty"`
}

// maxFileProblems bounds the findings a FileReport keeps: one damaged
// branch page can make every page under it a finding.
const maxFileProblems = 5

// CheckFile runs bbolt's consistency check over every page of the file:
// each page reached once from the root or the free-page list, each within
// the file, and each one's keys and elements readable and in order. It
// finds damage the chain check cannot see, in the pages of checkpoints
// and sections (a walk's checkpoint page with a changed element count
// passed verify, and made every checkpoint save of the server fail). It
// reads the whole file, as the chain check does. The error return is for
// I/O and cancellation only.
func (s *Store) CheckFile(ctx context.Context) (FileReport, error) {
	var rep FileReport
	err := s.view(func(tx *bolt.Tx) error {
		rep.Pages = uint64(tx.Size()) / uint64(s.db.Info().PageSize)
		// The checker runs in its own goroutine and recovers bbolt's
		// panics into findings; its channel is read to the end so that
		// the goroutine and the transaction end.
		for err := range tx.Check() {
			if len(rep.Problems) < maxFileProblems {
				rep.Problems = append(rep.Problems, err.Error())
			} else {
				rep.More++
			}
		}
		return ctx.Err()
	})
	if err != nil {
		return rep, s.readErr("check file", err)
	}
	rep.OK = len(rep.Problems) == 0
	return rep, nil
}

// Problem is the report's findings in one line.
func (r FileReport) Problem() string {
	if r.OK {
		return ""
	}
	p := "bbolt's page check: " + r.Problems[0]
	if n := len(r.Problems) - 1 + r.More; n > 0 {
		p = fmt.Sprintf("%s (and %d more)", p, n)
	}
	return p
}
