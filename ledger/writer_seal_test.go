package ledger

import (
	"context"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
)

// TestSealerFollowsTheIDIntoTheNextMillisecond: an event's time is its
// ID's millisecond also when the IDs of one batch move on to the next
// millisecond (the last ID's random bits full, under a clock that stands
// still): the sealer's cached time text must not outlive its millisecond.
func TestSealerFollowsTheIDIntoTheNextMillisecond(t *testing.T) {
	ctx := context.Background()
	clock := time.UnixMilli(1_764_000_000_000).UTC()
	s, _ := openTest(t, Options{Now: func() time.Time { return clock }})
	// The ledger's last ID is one short of full in the clock's millisecond.
	var id ulid.ULID
	if err := id.SetTime(ulid.Timestamp(clock)); err != nil {
		t.Fatal(err)
	}
	for i := 6; i < len(id); i++ {
		id[i] = 0xff
	}
	id[len(id)-1] = 0xfe
	first := Envelope{Seq: 1, ID: id, Time: idTime(id), Type: TypeCommand, Version: CurrentVersion, Data: []byte(`{"command":"x"}`)}
	if _, err := first.Seal(""); err != nil {
		t.Fatal(err)
	}
	if err := s.Import(ctx, []Envelope{first}); err != nil {
		t.Fatal(err)
	}
	envs, err := s.Append(ctx, cmd("full"), cmd("next ms"), cmd("same"))
	if err != nil {
		t.Fatal(err)
	}
	if envs[0].ID.Time() != id.Time() || envs[1].ID.Time() != id.Time()+1 {
		t.Fatalf("ids %s %s do not cross into the next millisecond after %s", envs[0].ID, envs[1].ID, id)
	}
	for _, e := range envs {
		d, err := Decode(e.Raw)
		if err != nil {
			t.Fatal(err)
		}
		if want := idTime(e.ID); !d.Time.Equal(want.Time) {
			t.Errorf("seq %d: stored time %s, its id's is %s", e.Seq, d.Time, want)
		}
	}
	mustVerify(t, s, 4)
}
