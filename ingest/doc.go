// Package ingest is recledger's HTTP and NATS boundary (API.md §2–§5, §7):
// the vendor-compatible Recording Controls endpoints, the call-signal feed,
// the configuration endpoints, the auditors' read API, auth and metrics.
//
// Every write becomes one ledger event appended through Appender; every
// answer is read from the live projections through Views, which the store's
// commit hook has already brought up to the appended event by the time
// Append returns. The package imports only ledger of ours: the projections
// are reached through the small interfaces declared in server.go and wired
// in cmd/recledger.
package ingest
