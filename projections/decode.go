package projections

import "github.com/recledger/recledger/ledger"

// decodeCommand decodes a command event's data.
func decodeCommand(e *ledger.Envelope, d *ledger.Command) error { return e.Unmarshal(d) }

// decodeSignal decodes a call signal event's data.
func decodeSignal(e *ledger.Envelope, d *ledger.CallSignal) error { return e.Unmarshal(d) }
