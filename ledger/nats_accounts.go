package ledger

import (
	"fmt"
	"strings"

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
	gated   bool // through the consumer gate (nats_consumer_gate.go)
}

// clientServices are the services clients reach across the account
// boundary; their permissions (natsPermissions) then narrow them by role.
// Direct gets cross it otherwise (relayDirectGets).
var clientServices = [...]clientService{
	{"recledger.cti.>", false, false},
	{"$JS.API.CONSUMER.CREATE." + ManifestsStream + ".>", false, true},
	{"$JS.API.CONSUMER.DURABLE.CREATE." + ManifestsStream + ".>", false, true},
	{"$JS.API.CONSUMER.INFO." + ManifestsStream + ".>", false, false},
	{"$JS.API.CONSUMER.MSG.NEXT." + ManifestsStream + ".>", true, false}, // a pull's deliveries
	{"$JS.ACK." + ManifestsStream + ".>", false, false},
}

// relayReplyPrefixes start the only reply subjects the direct-get relay
// answers on: the inboxes of recledger's readers and upload workers
// (InboxFor) and NATS's default one.
var relayReplyPrefixes = [...]string{ReaderInboxPrefix, UploadInboxPrefix, "_INBOX"}

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
		if svc.gated {
			exported = gateSubject(capture) + "." + strings.TrimPrefix(svc.subject, "$JS.API.")
		}
		if err := global.AddServiceExportWithResponse(exported, rt, to); err != nil {
			return nil, fmt.Errorf("clients' account: export %s: %w", svc.subject, err)
		}
		if err := clients.AddServiceImport(global, svc.subject, exported); err != nil {
			return nil, fmt.Errorf("clients' account: import %s: %w", svc.subject, err)
		}
	}
	if err := relayDirectGets(clients, global, capture); err != nil {
		return nil, fmt.Errorf("clients' account: %w", err)
	}
	return clients, nil
}

// relayDirectGets carries the clients' direct gets to the relay
// (nats_relay.go) under capture, and the relay's answers back, as streams
// one way and the other: the server keeps nothing per request.
//
// As a service, each request crossing accounts would have the server
// keep its way back until answered, and a streamed answer (a batch)
// until a time limit: a walk's 8 connections sending single gets with
// 3.5 KB reply subjects as fast as they could had it hold 1.6 million of
// them, 10 GB. As streams, the request keeps the reply subject its client
// named, so the relay, which publishes in the streams' account, answers
// only on the inbox prefixes the global account exports back
// (relayReplyPrefixes), where nothing of the server's own listens.
func relayDirectGets(clients, global *server.Account, capture string) error {
	const direct = "$JS.API.DIRECT.GET.>"
	if err := clients.AddStreamExport(direct, []*server.Account{global}); err != nil {
		return fmt.Errorf("export %s: %w", direct, err)
	}
	if err := global.AddMappedStreamImport(clients, direct, relaySubject(capture)+".>"); err != nil {
		return fmt.Errorf("import %s: %w", direct, err)
	}
	for _, p := range relayReplyPrefixes {
		if err := global.AddStreamExport(p+".>", []*server.Account{clients}); err != nil {
			return fmt.Errorf("export %s: %w", p, err)
		}
		if err := clients.AddStreamImport(global, p+".>", ""); err != nil {
			return fmt.Errorf("import %s: %w", p, err)
		}
	}
	return nil
}
