package projections

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/recledger/recledger/ledger"
)

// TestACheckpointHeadOfThisEncodingIsCheckedBeforeUse: a checkpoint of
// this build's encoding (its magic) whose head is cut short (a slice with
// no bytes beyond, as a store may hand it), is not JSON, or is another
// projection version's, is refused as ErrCorrupt or ErrUnknownVersion,
// never decoded into a state nor a panic. The start then folds the
// events; a panic would stop the server at every restart, and another
// version's state would be served with rules it was not made by.
func TestACheckpointHeadOfThisEncodingIsCheckedBeforeUse(t *testing.T) {
	ctx := context.Background()
	b, err := New().MarshalCheckpoint()
	if err != nil {
		t.Fatal(err)
	}
	wrap := func(head []byte) []byte {
		return append(binary.AppendUvarint([]byte(checkpointMagic), uint64(len(head))), head...)
	}
	head := b[len(checkpointMagic):]
	n, k := binary.Uvarint(head)
	head = head[k : k+int(n)]
	other := bytes.Replace(head, []byte(`"version":"`+Version+`"`), []byte(`"version":"`+Version+`0"`), 1)
	if bytes.Equal(other, head) {
		t.Fatal("the head names no version")
	}
	short := bytes.Clone(b[:len(b)-1])
	for _, c := range []struct {
		name string
		cp   []byte
		want error
	}{
		{"cut short", short[:len(short):len(short)], ledger.ErrCorrupt},
		{"not JSON", wrap([]byte(`{"version":`)), ledger.ErrCorrupt},
		{"another version", wrap(other), ledger.ErrUnknownVersion},
	} {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%s: panic %v", c.name, r)
				}
			}()
			if _, err := UnmarshalCheckpoint(ctx, c.cp, memSections{}); !errors.Is(err, c.want) {
				t.Errorf("%s: %v, want %v", c.name, err, c.want)
			}
		}()
	}
}
