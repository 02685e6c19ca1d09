package ledger

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// lossyRelay passes direct gets sent on the API prefix "lossy.API" on to
// JetStream, and the answers back, except that it loses some: the
// request numbered cut (from 1) gets only its first keep answers, and the
// rest are sent late, just before the next request is passed on; a
// request numbered in drop gets no answer at all. It stands for a relay
// whose intake was full, or a connection closed as a slow consumer.
type lossyRelay struct {
	nc   *nats.Conn
	cut  int
	keep int
	drop map[int]bool

	mu    sync.Mutex
	n     int         // requests taken
	late  []*nats.Msg // the cut request's answers held back
	sent  int         // of them, sent late
	reply string      // the cut request's reply subject
}

func (r *lossyRelay) take(m *nats.Msg) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n++
	for _, a := range r.late {
		_ = r.nc.PublishMsg(&nats.Msg{Subject: r.reply, Header: a.Header, Data: a.Data})
		r.sent++
	}
	r.late = nil
	if r.drop[r.n] {
		return
	}
	in := r.nc.NewInbox()
	sub, err := r.nc.SubscribeSync(in)
	if err != nil {
		return
	}
	defer sub.Unsubscribe()
	if r.nc.PublishRequest("$JS.API.DIRECT.GET."+strings.TrimPrefix(m.Subject, "lossy.API.DIRECT.GET."), in, m.Data) != nil {
		return
	}
	for i := 0; ; i++ {
		a, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			return
		}
		if r.n == r.cut && i >= r.keep {
			r.late, r.reply = append(r.late, a), m.Reply
		} else {
			_ = r.nc.PublishMsg(&nats.Msg{Subject: m.Reply, Header: a.Header, Data: a.Data})
		}
		if a.Header.Get("Status") != "" || !bytes.Contains(m.Data, []byte(`"batch"`)) {
			return // the end of a batch, or a single get's one answer
		}
	}
}

// lossy starts a lossyRelay and returns a JetStream context that reads
// through it.
func lossy(t *testing.T, js jetstream.JetStream, r *lossyRelay) jetstream.JetStream {
	t.Helper()
	r.nc = js.Conn()
	sub, err := r.nc.Subscribe("lossy.API.DIRECT.GET.>", r.take)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	l, err := jetstream.NewWithAPIPrefix(r.nc, "lossy.API")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestReadersAskAgainForALostBatch: a batch whose messages stop coming
// is asked for again, and the lost batch's late messages, arriving just
// before the new answer, are not taken for it: the read is whole, in
// order, each event once. Two batches lost in a row are also asked
// again; more than jsLostRetries fail the read.
func TestReadersAskAgainForALostBatch(t *testing.T) {
	s, js := jsMirrored(t, 3000)
	ctx := t.Context()
	want := jsCollect(t, func(fn func(Envelope) error) error { return s.Scan(ctx, 0, fn) })
	pace := directPace{batch: 500, wait: 300 * time.Millisecond}
	read := func(l jetstream.JetStream) ([][]byte, error) {
		var got [][]byte
		err := readSitePaced(ctx, l, jsTestSite, 0, 3000, pace, nil, func(_ uint64, e Envelope) error {
			got = append(got, e.Raw)
			return nil
		})
		return got, err
	}
	for _, tc := range []struct {
		name  string
		relay *lossyRelay
		fails bool
	}{
		{name: "cut, then late", relay: &lossyRelay{cut: 2, keep: 3}},
		{name: "cut, then dropped", relay: &lossyRelay{cut: 2, keep: 3, drop: map[int]bool{3: true}}},
		// Each loss is counted anew once a batch has come whole: losses
		// spread over a long read do not add up to a failure.
		{name: "lost apart", relay: &lossyRelay{cut: 1, keep: 3, drop: map[int]bool{4: true, 7: true}}},
		{name: "dropped too often", relay: &lossyRelay{cut: 2, keep: 3, drop: map[int]bool{3: true, 4: true}}, fails: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.relay
			got, err := read(lossy(t, js, r))
			r.mu.Lock()
			asked, sent := r.n, r.sent
			r.mu.Unlock()
			if tc.fails {
				if !errors.Is(err, ErrUnavailable) {
					t.Fatalf("through %d requests, %d of them lost in a row: %v, want ErrUnavailable", asked, jsLostRetries+1, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("after %d requests: %v", asked, err)
			}
			if sent == 0 {
				t.Fatal("no late answer was sent: the test did not test")
			}
			if len(got) != len(want) {
				t.Fatalf("%d events read, want %d (%d requests, %d late answers)", len(got), len(want), asked, sent)
			}
			for i := range got {
				if !bytes.Equal(got[i], want[i]) {
					t.Fatalf("event %d differs", i)
				}
			}
		})
	}
}

// TestSingleGetsAskAgain: a single direct get left unanswered is asked
// again.
func TestSingleGetsAskAgain(t *testing.T) {
	s, js := jsMirrored(t, 20)
	ctx := t.Context()
	// Lost once, and lost jsLostRetries times in a row: asked again each
	// time.
	for _, drop := range []map[int]bool{{1: true}, {1: true, 2: true}} {
		t.Run(strconv.Itoa(len(drop))+" lost", func(t *testing.T) {
			l := lossy(t, js, &lossyRelay{drop: drop})
			m, err := getDirectWaiting(ctx, l, directOne{LastFor: "recledger.events.>"}, 300*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			if _, head := s.Head(); m == nil || !bytes.Contains(m.Data, []byte(head)) {
				t.Fatalf("the last event read is not the store's head %s", head)
			}
		})
	}
}
