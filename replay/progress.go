package replay

import (
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progressStep is how many events pass between two updates of the bar.
const progressStep = 8192

// Progress is a progress bar for a replay of up to total events, drawn on
// a terminal only. Use Update as Options.Progress and Finish at the end.
type Progress struct {
	bar   *progressbar.ProgressBar
	start uint64
	last  uint64
}

// NewProgress returns a bar on out for the events after `after` up to head,
// or a quiet Progress when out is not a terminal or there is nothing to do.
func NewProgress(out *os.File, after, head uint64) *Progress {
	p := &Progress{start: after, last: after}
	if out == nil || head <= after || !term.IsTerminal(int(out.Fd())) {
		return p
	}
	p.bar = progressbar.NewOptions64(int64(head-after),
		progressbar.OptionSetWriter(out),
		progressbar.OptionSetDescription("replay"),
		progressbar.OptionShowCount(),
		// No rate: set in steps of 8192, the library's showed 161 M to
		// 1.3 G events/s on an engineer's walk.
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
	return p
}

// Update records that the event seq was folded.
func (p *Progress) Update(seq uint64) {
	if p.bar == nil || seq-p.last < progressStep {
		return
	}
	p.last = seq
	_ = p.bar.Set64(int64(seq - p.start))
}

// Finish completes and clears the bar; call it before writing what the
// replay gives (a walk's digest was glued to a bar cleared after it).
// Calls after the first do nothing.
func (p *Progress) Finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
		p.bar = nil
	}
}
