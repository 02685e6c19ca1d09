package main

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// /metrics shows the active calls, those with no agent, and the earliest
// start among them: a feed that never sends `ended` is seen there.
func TestActiveCallGauges(t *testing.T) {
	srv := startTestServer(t, t.TempDir())
	base := "http://" + srv.Addr()
	post := func(body string) {
		t.Helper()
		resp, err := http.Post(base+"/v1/calls/events", "application/json", strings.NewReader(body))
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %v %v", body, resp, err)
		}
		resp.Body.Close()
	}
	gauge := func(name string) string {
		t.Helper()
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(string(b))
		if m == nil {
			t.Fatalf("%s not on /metrics", name)
		}
		return m[1]
	}
	if g := gauge("recledger_active_calls"); g != "0" {
		t.Errorf("no calls: %s", g)
	}
	post(`[{"call_id":"c-1","extension":"3420","type":"ringing","at":"2026-11-23T08:00:00Z"},
		{"call_id":"c-2","extension":"3421","type":"ringing","at":"2026-11-23T09:00:00Z"}]`)
	if a, w, o := gauge("recledger_active_calls"), gauge("recledger_active_calls_without_agent"), gauge("recledger_oldest_active_call_start_seconds"); a != "2" || w != "2" || o != "1.7954208e+09" {
		t.Errorf("two calls ringing where no agent is: active %s, without agent %s, oldest %s", a, w, o)
	}
	// Beside them, what a full disk needs an administrator to see.
	if f, j, cp := gauge(`recledger_data_free_bytes{store="ledger"}`), gauge(`recledger_data_free_bytes{store="jetstream"}`), gauge("recledger_checkpoint_seq"); f == "0" || j == "0" || cp != "0" {
		t.Errorf("free bytes %s and %s (want some), checkpoint seq %s (want 0: none saved yet)", f, j, cp)
	}
	if m, c := gauge(`recledger_nats_connected{connection="mirror"}`), gauge(`recledger_nats_connected{connection="call_signals"}`); m != "1" || c != "1" {
		t.Errorf("NATS connections up: mirror %s, call signals %s, want 1", m, c)
	}
	post(`{"call_id":"c-1","extension":"3420","type":"ended","at":"2026-11-23T08:05:00Z"}`)
	if a, o := gauge("recledger_active_calls"), gauge("recledger_oldest_active_call_start_seconds"); a != "1" || o != "1.7954244e+09" {
		t.Errorf("one ended: active %s, oldest %s", a, o)
	}
}
