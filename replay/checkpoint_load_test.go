package replay_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/projections"
	"github.com/recledger/recledger/replay"
)

// savedDay is a day's ledger with a checkpoint of its whole state.
func savedDay(t *testing.T) *day {
	t.Helper()
	d := writeDay(t, nil)
	cp, _, err := replay.Run(t.Context(), d.store, replay.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := replay.Save(t.Context(), d.store, cp); err != nil {
		t.Fatal(err)
	}
	return d
}

// A checkpoint a newer build saved is not damage: verify would tell an
// operator to rebuild a file that is whole.
func TestCheckpointOfANewerBuildIsNotDamaged(t *testing.T) {
	ctx := context.Background()
	d := writeDay(t, nil)
	if err := d.store.SaveCheckpoint(ctx, projections.Version, 3, []byte(`{"version":"99-newer-rules"}`), nil); err != nil {
		t.Fatal(err)
	}
	_, err := replay.CheckpointState(ctx, d.store)
	if !errors.Is(err, ledger.ErrUnknownVersion) || errors.Is(err, ledger.ErrCorrupt) {
		t.Fatalf("newer checkpoint: %v, want ErrUnknownVersion and not ErrCorrupt", err)
	}
}

// sectionSizesFail is a checkpoint store whose section sizes cannot be
// read, for a reason the store does not classify.
type sectionSizesFail struct {
	*ledger.Store
	err func() error
}

func (s sectionSizesFail) SectionSizes(context.Context, []string) ([]int, error) { return nil, s.err() }

// A checkpoint that cannot be read back for a reason neither damage nor
// unavailability names is unusable: ErrCorrupt, the reason kept in the text.
func TestCheckpointUnreadableForAnotherReasonIsCorrupt(t *testing.T) {
	d := savedDay(t)
	_, err := replay.CheckpointState(t.Context(), sectionSizesFail{d.store, func() error { return errors.New("bus error") }})
	if !errors.Is(err, ledger.ErrCorrupt) || !strings.Contains(err.Error(), "bus error") {
		t.Fatalf("sections unreadable: %v, want ErrCorrupt naming the cause", err)
	}
}

// A load cancelled while the checkpoint is read gives the cancellation,
// not damage.
func TestCheckpointLoadCancelledIsNotDamage(t *testing.T) {
	d := savedDay(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	_, err := replay.CheckpointState(ctx, sectionSizesFail{d.store, func() error { cancel(); return ctx.Err() }})
	if !errors.Is(err, context.Canceled) || errors.Is(err, ledger.ErrCorrupt) {
		t.Fatalf("cancelled: %v, want context.Canceled and not ErrCorrupt", err)
	}
}

// Load chooses where to start: an Until or a From given is refused.
func TestLoadWithRefusesUntilAndFrom(t *testing.T) {
	d := writeDay(t, nil)
	for name, opts := range map[string]replay.Options{
		"until": {Until: replay.UntilSeq(5)},
		"from":  {From: projections.New()},
	} {
		if _, _, err := replay.LoadWith(t.Context(), d.store, d.store, opts); !errors.Is(err, ledger.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

// A load that cannot fold the ledger fails, with no state, and says how
// many events it folded.
func TestLoadFailsOnAnEventItCannotFold(t *testing.T) {
	d := writeDay(t, nil)
	src := newerAt(d.store, 5)
	st, n, err := replay.Load(t.Context(), d.store, src)
	if !errors.Is(err, ledger.ErrUnknownVersion) || st != nil || n != 4 {
		t.Fatalf("load: state %v, %d events, %v; want no state, 4 events and ErrUnknownVersion", st != nil, n, err)
	}
}
