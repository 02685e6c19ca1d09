package projections

import (
	"testing"

	"github.com/recledger/recledger/ledger"
)

// Every reason the projections give without a message of their own is
// said in a sentence by the API (ledger.ReasonMessage).
func TestEveryReasonIsSaid(t *testing.T) {
	for _, r := range []string{
		ReasonNotRecording, ReasonAlreadyPaused, ReasonNotPaused, ReasonNoActiveCall, ReasonNoLastCall,
		ReasonDeleted, ReasonGateway, ReasonArchiveDisabled, ReasonExcluded, ReasonAlreadyRecording,
		ReasonAlreadyTagged, ReasonNotLoggedIn, ReasonInvalidMetadata, ReasonNoKnownKeys,
	} {
		if ledger.ReasonMessage(r) == "" {
			t.Errorf("reason %s has no sentence", r)
		}
	}
}
