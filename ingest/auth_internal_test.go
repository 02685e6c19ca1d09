package ingest

import (
	"net/netip"
	"testing"

	"github.com/recledger/recledger/ledger"
)

// What each role may do on the NATS subjects (API.md §7): command
// publishes call signals, auditor and admin read the streams, upload
// consumes manifests; by token or by network (mutation testing: a role
// swapped for another went unnoticed).
func TestNATSAccessByRole(t *testing.T) {
	tok, err := ParseTokens([]byte(`{"tokens":[
		{"name":"desk","token":"0123456789abcdef-desk","roles":["command"]},
		{"name":"audit","token":"0123456789abcdef-audit","roles":["auditor"]},
		{"name":"ops","token":"0123456789abcdef-ops","roles":["admin"]},
		{"name":"up","token":"0123456789abcdef-up","roles":["upload"]}],
		"networks":[{"name":"floor","cidr":"10.1.0.0/16","roles":["command"]},
			{"name":"quality","cidr":"10.1.9.0/24","roles":["auditor"]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		token string
		addr  string
		want  ledger.NATSAccess
	}{
		{"0123456789abcdef-desk", "", ledger.NATSSignals},
		{"0123456789abcdef-audit", "", ledger.NATSRead},
		{"0123456789abcdef-ops", "", ledger.NATSRead},
		{"0123456789abcdef-up", "", ledger.NATSUpload},
		{"", "10.1.2.3", ledger.NATSSignals},
		{"", "10.2.0.1", 0},
		{"", "10.1.9.5", ledger.NATSSignals | ledger.NATSRead}, // in two networks: what both grant
		{"not-a-token-of-the-file", "", 0},
		{"not-a-token-of-the-file", "10.1.2.3", 0}, // judged by its token alone, as over HTTP
	} {
		addr, _ := netip.ParseAddr(c.addr)
		_, got, ok := tok.NATS(c.token, addr)
		if got != c.want || ok != (c.want != 0) {
			t.Errorf("token %q from %q: access %b (%v), want %b", c.token, c.addr, got, ok, c.want)
		}
	}
	// In two networks, the client is named by the first.
	if name, _, _ := tok.NATS("", netip.MustParseAddr("10.1.9.5")); name != "net:floor" {
		t.Errorf("a client in two networks named %q, want the first's", name)
	}
}
