package ledger

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	bolt "go.etcd.io/bbolt"
)

// mirroredFile writes a ledger of n events, the first mirrored of them
// published to a fresh stream (stream seq = ledger seq), closes it, lets
// damage change the file, and opens it again read-only, as verify does.
func mirroredFile(t *testing.T, n, mirrored int, damage func(*bolt.Bucket) error) (*Store, jetstream.JetStream) {
	t.Helper()
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	_, js := jsConnect(t, srv)
	s, path := openTest(t, Options{})
	jsAppend(t, s, mirrored)
	o, stop := jsOutbox(t, s, js)
	jsDrained(t, s, o)
	stop()
	jsAppend(t, s, n-mirrored)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	editFile(t, path, func(tx *bolt.Tx) error { return damage(tx.Bucket(bucketEvents)) })
	return openFile(t, path, Options{ReadOnly: true}), js
}

// changeHash changes the last digit of the stored hash of event seq: it
// no longer decodes.
func changeHash(seq uint64) func(*bolt.Bucket) error {
	return func(b *bolt.Bucket) error {
		v := append([]byte(nil), b.Get(seqKey(seq))...)
		i := len(v) - 3 // the hash's last digit, before `"}`
		v[i] ^= 1
		return b.Put(seqKey(seq), v)
	}
}

// TestCompareNamesALedgerDamagedBesideItsMirror: when the ledger's own
// event cannot be read (its bytes changed, or it is gone from the file),
// compare names that seq as the ledger's damage, reads the mirror on, and
// says whether it holds every event to the ledger's head, whole and
// chained, which is what tells an administrator that restore
// --from-jetstream can rebuild the data dir. A mirror one event short of
// the head, or itself broken, must not be called a whole copy: a restore
// from it would lose events.
func TestCompareNamesALedgerDamagedBesideItsMirror(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name       string
		mirrored   int
		damage     func(*bolt.Bucket) error
		holes      []uint64 // stream seqs deleted from the mirror
		restorable bool
		says       string
	}{
		{"a changed event beside a whole mirror", 30, changeHash(10), nil, true, "the mirror holds every event to seq 30, whole and chained"},
		{"a mirror one event short", 29, changeHash(10), nil, false, "the mirror, whole and chained, ends at seq 29, before the ledger's head 30"},
		{"a mirror damaged too", 30, changeHash(10), []uint64{15}, false, "the mirror is damaged too"},
		// Its key gone from the file: the ledger's scan goes from 9 to 11.
		{"an event missing beside a whole mirror", 30, func(b *bolt.Bucket) error { return b.Delete(seqKey(10)) }, nil, true, "the mirror holds every event to seq 30, whole and chained"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, js := mirroredFile(t, 30, c.mirrored, c.damage)
			if len(c.holes) > 0 {
				st, err := js.Stream(ctx, EventsStream)
				if err != nil {
					t.Fatal(err)
				}
				for _, seq := range c.holes {
					if err := st.DeleteMsg(ctx, seq); err != nil {
						t.Fatal(err)
					}
				}
			}
			rep, err := CompareJetStream(ctx, s, js, jsTestSite)
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK || rep.FirstBad != 10 || rep.Events != 9 || !rep.LedgerDamaged || rep.Restorable != c.restorable ||
				!strings.Contains(rep.Problem, "the ledger's event at seq 10 cannot be read") || !strings.Contains(rep.Problem, c.says) {
				t.Fatalf("%+v; want the ledger damaged at seq 10, restorable %v, saying %q", rep, c.restorable, c.says)
			}
		})
	}
}

// TestCompareOfAnInterruptedRestoreSaysTheMirrorIsAhead: a ledger that
// holds the first events of its mirror (a restore that stopped) is named
// behind its mirror (Ahead), which verify reports as an unfinished
// restore rather than as two different histories; and a compare whose
// context is cancelled fails with that error instead of reporting a
// finding.
func TestCompareOfAnInterruptedRestoreSaysTheMirrorIsAhead(t *testing.T) {
	ctx := context.Background()
	_, js := jsMirrored(t, 30)
	var mirrored []Envelope
	if err := ScanJetStream(ctx, js, jsTestSite, 0, func(e Envelope) error { mirrored = append(mirrored, e); return nil }); err != nil {
		t.Fatal(err)
	}
	restored := jsStore(t)
	if err := restored.Import(ctx, mirrored[:20]); err != nil {
		t.Fatal(err)
	}
	rep, err := CompareJetStream(ctx, restored, js, jsTestSite)
	if err != nil || rep.OK || !rep.Ahead || rep.Behind || rep.FirstBad != 21 || rep.Events != 20 || rep.LedgerDamaged {
		t.Fatalf("a restore stopped at seq 20 of 30: %+v %v", rep, err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if rep, err := CompareJetStream(cancelled, restored, js, jsTestSite); !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled compare: %+v %v", rep, err)
	}
}

// TestCompareNamesABrokenChainInTheMirrorAfterTheLedgersHead: the mirror
// holds every event of the ledger, then one of another ledger (its prev
// is not the head's hash). The copies agree up to the head, but the
// mirror is not a chain: compare says so at the seq after the head
// rather than "ok", since a restore from that mirror would fail on it.
func TestCompareNamesABrokenChainInTheMirrorAfterTheLedgersHead(t *testing.T) {
	ctx := context.Background()
	s, js := jsMirrored(t, 30)
	other := jsStore(t)
	jsAppend(t, other, 31)
	e, err := other.Get(ctx, 31)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: EventSubject(jsTestSite, e.Type), Data: e.Raw,
		Header: nats.Header{jetstream.MsgIDHeader: []string{e.ID.String()}}}); err != nil {
		t.Fatal(err)
	}
	rep, err := CompareJetStream(ctx, s, js, jsTestSite)
	if err != nil || rep.OK || rep.FirstBad != 31 || rep.Events != 30 || rep.LedgerDamaged || !strings.Contains(rep.Problem, "prev is not the hash") {
		t.Fatalf("%+v %v; want the stream broken at seq 31", rep, err)
	}
}

// TestCompareOfAMirrorEndingInForeignMessagesIsAFinding: a mirror whose
// site subjects end in more messages that are not events than a reader
// steps back over is an unreadable mirror, reported as a finding about
// the stream at seq 1, not as an I/O error, and not as damage to the
// ledger (whose events are all whole): told the ledger is damaged, an
// administrator would throw away the good copy.
func TestCompareOfAMirrorEndingInForeignMessagesIsAFinding(t *testing.T) {
	ctx := context.Background()
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	nc, js := jsConnect(t, srv)
	s := jsStore(t)
	jsAppend(t, s, 10)
	o, stop := jsOutbox(t, s, js)
	jsDrained(t, s, o)
	stop()
	subject := EventSubject(jsTestSite, TypeCommand)
	for i := range maxForeignTail {
		if err := nc.Publish(subject, fmt.Appendf(nil, "not an event %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	jsWait(t, 30*time.Second, "the foreign messages stored", func() bool {
		info, err := st.Info(ctx)
		return err == nil && info.State.Msgs == 10+maxForeignTail
	})
	rep, err := CompareJetStream(ctx, s, js, jsTestSite)
	if err != nil || rep.OK || rep.FirstBad != 1 || rep.LedgerDamaged || !strings.Contains(rep.Problem, "stream: ") || !strings.Contains(rep.Problem, "not events") {
		t.Fatalf("%+v %v; want a finding about the stream", rep, err)
	}
}

// TestCompareOfAnEmptyLedgerWithoutAStreamIsAnError: when the mirror
// cannot be read at all (its events stream deleted), compare fails
// with an error, even for a ledger with no events to compare: an empty
// report without an error would read as copies that merely differ.
func TestCompareOfAnEmptyLedgerWithoutAStreamIsAnError(t *testing.T) {
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	_, js := jsConnect(t, srv)
	if err := js.DeleteStream(context.Background(), EventsStream); err != nil {
		t.Fatal(err)
	}
	if rep, err := CompareJetStream(context.Background(), jsStore(t), js, jsTestSite); err == nil {
		t.Fatalf("compare without a stream: %+v, no error", rep)
	}
}
