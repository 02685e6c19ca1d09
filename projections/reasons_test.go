package projections

import (
	"testing"

	"github.com/recledger/recledger/ledger"
)

// Every reason the projections give without a message of their own is
// said in a sentence by the API (ledger.ReasonMessage).
func TestEveryReasonIsSaid(t *testing.T) {
	for _, r := range []string{
		ledger.ReasonNotRecording, ledger.ReasonAlreadyPaused, ledger.ReasonNotPaused, ledger.ReasonNoActiveCall, ledger.ReasonNoLastCall,
		ledger.ReasonDeleted, ledger.ReasonGateway, ledger.ReasonArchiveDisabled, ledger.ReasonExcluded, ledger.ReasonAlreadyRecording,
		ledger.ReasonAlreadyTagged, ledger.ReasonNotLoggedIn, ledger.ReasonInvalidMetadata, ledger.ReasonNoKnownKeys,
	} {
		if ledger.ReasonMessage(r) == "" {
			t.Errorf("reason %s has no sentence", r)
		}
	}
}
