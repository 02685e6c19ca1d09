package ledger

import (
	"errors"
	"time"
)

// What the outbox reports when it cannot go on: a stream found lost
// (counted, and its problem for lostShown) and a stall (JetStream taking
// no events for stallFor). /readyz and the metrics read them.

// errStreamDeleted is the outbox's problem for lostShown after it found
// the events stream gone.
var errStreamDeleted = errors.New("the events stream was deleted, or lost this site's events")

// lostShown is how long a lost stream stays the outbox's problem.
const lostShown = time.Minute

// noteLost counts a stream found gone.
func (o *Outbox) noteLost() {
	o.countLost("outbox: the events stream was deleted; creating it again and refilling it from the ledger (docs/clients.md)")
}

// noteRemoved counts a stream found without the site's events it had:
// deleted and made again (by this outbox, or another site's server),
// purged, cut by a limit of its own (the walk that found a 20 s max_age
// called a deleted stream), or its last writes lost in a crash.
func (o *Outbox) noteRemoved() {
	o.countLost("outbox: the events stream no longer holds this site's last events (deleted and made again, purged, cut by a limit of the stream, or its last writes lost in a crash); refilling it from the ledger (docs/clients.md)")
}

// countLost counts a stream found without the events it had, and says
// so with msg.
func (o *Outbox) countLost(msg string) {
	o.lost.Add(1)
	o.lostAt.Store(time.Now().UnixNano())
	o.log.Warn(msg, jsLogKeyCount, o.lost.Load())
}

// errStalled is the outbox's problem while JetStream takes no events.
var errStalled = errors.New("JetStream is not taking the events")

// stall is the outbox failing to publish without progress: since the
// first failure, and the last one.
type stall struct {
	since time.Time
	err   error
}

// Stalled is how long events have waited with no publish going through;
// 0 when none wait, when one went through since, and while the outbox
// has stopped on a stream that does not continue the ledger or an event
// larger than the server takes (Mismatch; a restart of JetStream mends
// neither).
func (o *Outbox) Stalled() time.Duration {
	st := o.stall.Load()
	if st == nil || o.mismatch.Load() != nil || o.Lag() == 0 {
		return 0
	}
	return time.Since(st.since)
}

// waitingSince is when the events that wait began to wait with no
// publish confirmed: a stall is counted from there, not from the first
// session that failed, which ends only after its acks' timeout and the
// server's reconnect attempts (a walk's /readyz named a 30 s stall 42 s
// into an outage). Now, when that is not known.
func (o *Outbox) waitingSince() time.Time {
	now := time.Now()
	if w := o.waitSince.Load(); w != 0 && w < now.UnixNano() {
		return time.Unix(0, w)
	}
	return now
}

// unstall ends a stall: the mirror advanced, even before this session
// ends. One long enough to have been a problem on /readyz is said to be
// over (a walk saw a stall's WARN and no word when it ended).
func (o *Outbox) unstall() {
	if prev := o.stall.Swap(nil); prev != nil {
		if d := time.Since(prev.since); d >= o.stallFor {
			o.log.Info("outbox: the mirror advances again", jsLogKeyStalled, d.Round(time.Second), jsLogKeyLag, o.Lag())
		}
	}
}
