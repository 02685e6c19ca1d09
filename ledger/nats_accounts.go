package ledger

import (
	"fmt"

	"github.com/nats-io/nats-server/v2/server"
)

// ClientsAccount is the NATS account of every client of the embedded
// server but the server's own connections, which live in the global
// account with the streams and JetStream.
//
// JetStream answers a request on whatever reply subject its client
// names, and permissions cannot see that subject: in the streams'
// account, a direct get whose reply is $JS.API.STREAM.DELETE.… would have
// JetStream's answer carried out as a request of JetStream's own. In an
// account of their own, clients reach the streams only through the
// services the global account exports to them (clientServices); a
// request crossing accounts gets a reply subject of the server's making,
// and its answers come back into the clients' account, where JetStream's
// API reaches nothing.
const ClientsAccount = "RECLEDGER_CLIENTS"

// clientService is one subject the global account serves to clients.
type clientService struct {
	subject string
	stream  bool // answered by more than one message
	relayed bool // taken by the direct-get relay (nats_relay.go), not JetStream
}

// clientServices are all that clients reach across the account boundary;
// their permissions (natsPermissions) then narrow them by role.
var clientServices = [...]clientService{
	{"recledger.cti.>", false, false},
	{"$JS.API.DIRECT.GET.>", true, true}, // a batch is many messages
	{"$JS.API.CONSUMER.CREATE." + ManifestsStream + ".>", false, false},
	{"$JS.API.CONSUMER.DURABLE.CREATE." + ManifestsStream + ".>", false, false},
	{"$JS.API.CONSUMER.INFO." + ManifestsStream + ".>", false, false},
	{"$JS.API.CONSUMER.MSG.NEXT." + ManifestsStream + ".>", true, false}, // a pull's deliveries
	{"$JS.ACK." + ManifestsStream + ".>", false, false},
}

// shareWithClients makes the clients' account of a started server and
// the services its clients reach the streams by; their direct gets go to
// the relay under capture.
func shareWithClients(srv *server.Server, capture string) (*server.Account, error) {
	clients, err := srv.RegisterAccount(ClientsAccount)
	if err != nil {
		return nil, fmt.Errorf("clients' account: %w", err)
	}
	global := srv.GlobalAccount()
	to := []*server.Account{clients}
	for _, svc := range clientServices {
		rt := server.Singleton
		if svc.stream {
			rt = server.Streamed
		}
		exported := svc.subject
		if svc.relayed {
			exported = relaySubject(capture) + ".>"
		}
		if err := global.AddServiceExportWithResponse(exported, rt, to); err != nil {
			return nil, fmt.Errorf("clients' account: export %s: %w", svc.subject, err)
		}
		if svc.relayed {
			// The server keeps each request's way back until its answer
			// is done, for a streamed one until this long (2 min by
			// default): a client sending requests as fast as it can, which
			// the relay drops, would have it hold them all that time. The
			// relay answers within relayWait.
			if err := global.SetServiceExportResponseThreshold(exported, relayAnswerWithin); err != nil {
				return nil, fmt.Errorf("clients' account: export %s: %w", svc.subject, err)
			}
		}
		if err := clients.AddServiceImport(global, svc.subject, exported); err != nil {
			return nil, fmt.Errorf("clients' account: import %s: %w", svc.subject, err)
		}
	}
	return clients, nil
}
