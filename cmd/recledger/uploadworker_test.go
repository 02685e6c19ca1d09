package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/recledger/recledger/ledger/ledgertest"
)

// TestUploadWorkerAgainstServer plays a small day on the real server, seals
// it, and runs `upload-worker` on the server's JetStream: every contact and
// metadata update of the manifest ends up as a file holding its exact bytes.
func TestUploadWorkerAgainstServer(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := e2eServer(t, ctx, t.TempDir())
	defer e2eStop(t, srv)
	base := "http://" + srv.Addr()
	sim := &SimulateCommand{Stdout: io.Discard, Stderr: io.Discard}
	if err := sim.Run(ctx, []string{"--url", base, "--agents", "6", "--calls-per-agent", "4", "--seed", "11"}); err != nil {
		t.Fatal(err)
	}
	body := sealToday(t, base, "")
	var m struct {
		Day      string            `json:"day"`
		Contacts []json.RawMessage `json:"contacts"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Contacts) == 0 {
		t.Fatalf("the sealed day lists no contacts: %.300s", body)
	}

	dest := t.TempDir()
	wctx, wcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	logs := &ledgertest.Buffer{}
	go func() {
		done <- (&UploadWorkerCommand{Stderr: logs}).Run(wctx, []string{"--nats", srv.NATSURL(), "--site", "bench", "--dest", dest})
	}()
	// The worker writes the files, acknowledges the manifest, then logs
	// it: wait for the log line too before stopping it.
	dir := filepath.Join(dest, m.Day)
	deadline := time.Now().Add(30 * time.Second)
	for {
		entries, _ := os.ReadDir(dir)
		if len(entries) >= len(m.Contacts) && strings.Contains(logs.String(), "manifest uploaded") {
			break
		}
		if time.Now().After(deadline) {
			wcancel()
			<-done
			t.Fatalf("%d of %d files after 30s; worker log:\n%s", len(entries), len(m.Contacts), logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	wcancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, c := range m.Contacts {
		var id struct {
			ContactID string `json:"contact_id"`
		}
		if err := json.Unmarshal(c, &id); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(dir, id.ContactID+".json"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, c) {
			t.Fatalf("%s.json differs from the manifest entry", id.ContactID)
		}
	}
}

// An upload worker whose token the server stops taking (restarted with a
// tokens file that no longer has it) says so at ERROR, keeps trying, and
// takes manifests again once the server takes the token again. It used to
// fetch on a connection nats.go had closed after two refusals, warning
// "connection closed" for good (a walk).
func TestUploadWorkerOutlivesARefusedToken(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	natsAddr := l.Addr().String()
	l.Close()
	const upload, admin = "upload-token-0123456789", "admin-token-0123456789"
	data, dir := t.TempDir(), t.TempDir()
	start := func(name, tokens string) *Server {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(`{"tokens":[`+tokens+`]}`), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := DefaultServeConfig()
		cfg.Data, cfg.HTTP, cfg.NATSListen, cfg.Site, cfg.TokensFile = data, "127.0.0.1:0", natsAddr, "bench", path
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		srv, err := StartServer(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		return srv
	}
	adminTok := `{"name":"adm","token":"` + admin + `","roles":["admin","command"]}`
	withUpload := adminTok + `,{"name":"up","token":"` + upload + `","roles":["upload"]}`
	srv := start("a.json", withUpload)

	logs := &ledgertest.Buffer{}
	wctx, wcancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- (&UploadWorkerCommand{Stderr: logs}).Run(wctx, []string{"--nats", "nats://" + natsAddr, "--token", upload, "--site", "bench", "--dest", t.TempDir()})
	}()
	defer func() {
		wcancel()
		if err := <-done; err != nil {
			t.Errorf("worker: %v", err)
		}
	}()
	waitLog := func(what string) {
		t.Helper()
		for end := time.Now().Add(30 * time.Second); !strings.Contains(logs.String(), what); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(end) {
				t.Fatalf("no %q in 30 s; worker log:\n%s", what, logs.String())
			}
		}
	}
	waitLog("upload worker bound")

	// A worker started with a token the server does not take, or none,
	// is refused at once (an operator's walk's waited in silence).
	for _, tok := range []string{"bogus-token-0123456789", ""} {
		refused := make(chan error, 1)
		go func() {
			refused <- (&UploadWorkerCommand{Stderr: io.Discard}).Run(t.Context(), []string{"--nats", "nats://" + natsAddr, "--token", tok, "--site", "bench", "--dest", t.TempDir()})
		}()
		select {
		case err := <-refused:
			if err == nil || !strings.Contains(err.Error(), "give a token with the upload role") {
				t.Errorf("a worker with token %q: %v", tok, err)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("a worker with token %q was not refused in 15 s", tok)
		}
	}

	e2eStop(t, srv)
	srv = start("b.json", adminTok)
	waitLog("the server refuses this worker's credentials")
	// Refused again (nats.go reconnects every 2 s): two refusals in a
	// row made nats.go close the connection for good.
	time.Sleep(5 * time.Second)
	e2eStop(t, srv)
	srv = start("a.json", withUpload)
	defer e2eStop(t, srv)

	sealToday(t, "http://"+srv.Addr(), admin)
	waitLog("manifest uploaded")
	waitLog("upload worker reconnected")
}

// sealToday closes today's day (UTC) on the server at base, with token
// when not empty, and returns the manifest.
func sealToday(t *testing.T, base, token string) []byte {
	t.Helper()
	day := time.Now().UTC().Format(time.DateOnly)
	req, _ := http.NewRequest("POST", base+"/v1/manifests/"+day+"/close", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("close %s: %d %s", day, resp.StatusCode, body)
	}
	return body
}
