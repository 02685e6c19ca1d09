package replaytest

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/recledger/recledger/ledger"
)

// BulkBatch is how many events Bulk hands to one Append.
const BulkBatch = 4096

// Bulk appends about n events of a busy site: the configuration with
// agents users (each logged in), then calls of ringing, answered, pause,
// resume, tag, metadata and ended, round-robin over the agents, with a
// seal every sealEvery events (0 = never). It returns the head seq.
func Bulk(ctx context.Context, st *ledger.Store, n, agents, sealEvery int) (uint64, error) {
	cfg := Config()
	for i := range agents {
		id := "agent" + strconv.Itoa(i)
		cfg.Users[id] = ledger.User{Name: id, Team: []string{"sales", "support"}[i%2], Recording: ledger.RecDesktop,
			Extension: strconv.Itoa(5000 + i)}
	}
	batch := []ledger.Event{ConfigEvent(cfg)}
	for i := range agents {
		batch = append(batch, Cmd("login", "agent"+strconv.Itoa(i), "extension", strconv.Itoa(5000+i)))
	}
	written := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if _, err := st.Append(ctx, batch...); err != nil {
			return fmt.Errorf("bulk: %w", err)
		}
		written += len(batch)
		batch = batch[:0]
		return nil
	}
	at := Start
	day := 0
	lastSeal := 0
	for call := 0; written+len(batch) < n; call++ {
		a := call % agents
		user, ext := "agent"+strconv.Itoa(a), strconv.Itoa(5000+a)
		id := "k-" + strconv.Itoa(call)
		ani := "+1312555" + strconv.Itoa(1000+call%9000)
		at = at.Add(time.Second)
		batch = append(batch,
			Signal(id, ext, ledger.SignalRinging, ledger.DirectionInbound, ani, "8001", at),
			Signal(id, ext, ledger.SignalAnswered, ledger.DirectionInbound, ani, "8001", at.Add(2*time.Second)),
			Cmd("pause", user),
			Cmd("resume", user),
			Cmd("tag", user),
			Cmd("metadata", user, "account", strconv.Itoa(call)),
			Signal(id, ext, ledger.SignalEnded, ledger.DirectionInbound, "", "", at.Add(time.Minute)),
		)
		if sealEvery > 0 && written+len(batch)-lastSeal >= sealEvery {
			batch = append(batch, Seal(Start.AddDate(0, 0, day).Format("2006-01-02")))
			day++
			lastSeal = written + len(batch)
		}
		if len(batch) >= BulkBatch {
			if err := flush(); err != nil {
				return 0, err
			}
		}
	}
	if err := flush(); err != nil {
		return 0, err
	}
	head, _ := st.Head()
	return head, nil
}
