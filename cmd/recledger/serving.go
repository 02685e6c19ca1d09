package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/replay"
)

// ServingFile names the file a running `serve` keeps in its data dir: where
// it can be reached. bbolt lets one process write a file and no other
// process read it meanwhile, so the offline commands, finding the ledger
// locked, read this file to say who holds it and, for `replay`, to read
// the same events from that server's JetStream mirror instead.
const ServingFile = "serving.json"

// servingInfo is ServingFile's content.
type servingInfo struct {
	PID  int    `json:"pid"`
	HTTP string `json:"http"` // base URL of the HTTP API
	NATS string `json:"nats"` // NATS URL(s) of the mirror, without credentials
	Site string `json:"site"`
}

// writeServing records info in dir, replacing any earlier file whole.
func writeServing(dir string, info servingInfo) error {
	info.NATS = ledger.StripURLCredentials(info.NATS) // the file is readable by the data dir's readers
	b, err := json.Marshal(info)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, ServingFile+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		_ = os.Remove(tmp) // a part written on a full disk
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, ServingFile))
}

// removeServing removes dir's ServingFile when it is this process's.
func removeServing(dir string) {
	if info, err := readServingFile(dir); err == nil && info.PID == os.Getpid() {
		_ = os.Remove(filepath.Join(dir, ServingFile))
	}
}

// readServing is the running server of dir; ok is false when there is no
// file, or its process is gone (a server that was killed leaves it).
func readServing(dir string) (info servingInfo, ok bool) {
	info, err := readServingFile(dir)
	if err != nil || info.PID <= 0 {
		return info, false
	}
	return info, processAlive(info.PID)
}

func readServingFile(dir string) (servingInfo, error) {
	var info servingInfo
	b, err := os.ReadFile(filepath.Join(dir, ServingFile))
	if err != nil {
		return info, err
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return info, fmt.Errorf("%s: %w", ServingFile, err)
	}
	return info, nil
}

// askServer GETs path (with its query) from the server recorded in info,
// with the bearer token when one is given, and returns the answer's body
// for a 200. A 404 is ledger.ErrNotFound, a 401 or 403 names --token; any
// other answer is an error with the server's message. The caller closes
// the body.
func askServer(ctx context.Context, info servingInfo, token, path string) (io.ReadCloser, error) {
	body, _, err := askServerAs(ctx, info, token, path, "auditor")
	return body, err
}

// askServerAs is askServer for a path that takes role, which a refusal
// names; it also returns the answer, for its headers.
func askServerAs(ctx context.Context, info servingInfo, token, path, role string) (io.ReadCloser, *http.Response, error) {
	resp, err := getFromServer(ctx, info, token, path)
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode == http.StatusOK {
		return resp.Body, resp, nil
	}
	defer resp.Body.Close()
	var e struct {
		Message string `json:"message"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(b, &e) != nil || e.Message == "" {
		e.Message = strings.TrimSpace(string(b))
	}
	switch resp.StatusCode {
	case http.StatusNotFound:
		return nil, nil, fmt.Errorf("%w: %s", ledger.ErrNotFound, e.Message)
	case http.StatusUnauthorized, http.StatusForbidden:
		return nil, nil, fmt.Errorf("%w: the server at %s refused: %s (give a token with the %s role: --token or RECLEDGER_TOKEN)",
			ledger.ErrRefused, info.HTTP, e.Message, role)
	case http.StatusBadRequest:
		// The question, not the server: say it as the command would.
		return nil, nil, fmt.Errorf("%w: %s", ledger.ErrInvalid, e.Message)
	}
	return nil, nil, fmt.Errorf("%w: the server at %s answered %d: %s", ledger.ErrUnavailable, info.HTTP, resp.StatusCode, e.Message)
}

// getFromServer sends GET path to the server in info, with the bearer
// token when one is given.
func getFromServer(ctx context.Context, info servingInfo, token, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, info.HTTP+path, nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: the server running on the data dir (pid %d): %v", ledger.ErrUnavailable, info.PID, err)
	}
	return resp, nil
}

// tokenFlag defines --token (env RECLEDGER_TOKEN): what the offline
// commands present to a running server they ask instead of the ledger.
// uses says where this command sends it.
func tokenFlag(fs *flag.FlagSet, uses string) *string {
	return roleTokenFlag(fs, "auditor", uses)
}

// roleTokenFlag is tokenFlag for a command whose requests take role.
func roleTokenFlag(fs *flag.FlagSet, role, uses string) *string {
	return fs.String("token", envOr("RECLEDGER_TOKEN", ""),
		"token with the "+role+" role, for a server that has --tokens: sent to "+uses+" (env RECLEDGER_TOKEN; the environment keeps it out of ps)")
}

// natsToken is the connect option presenting token to NATS; none when empty.
//
// A command reads the mirror or nothing: the first request its token may
// not make closes the connection, so that the request fails at once
// (ledger.Refused then says why) instead of at its timeout.
func natsToken(token string) []nats.Option {
	opts := []nats.Option{nats.ErrorHandler(func(nc *nats.Conn, _ *nats.Subscription, err error) {
		if errors.Is(err, nats.ErrPermissionViolation) {
			nc.Close()
		}
	})}
	if token != "" {
		opts = append(opts, nats.Token(token))
	}
	return opts
}

// heldByServer is the server holding dir's ledger when err says the ledger
// is locked and a live server is recorded there; it then tells stderr that
// cmd asks that server instead.
func heldByServer(dir string, err error, cmd string, stderr io.Writer) (servingInfo, bool) {
	if !errors.Is(err, ledger.ErrLocked) {
		return servingInfo{}, false
	}
	info, ok := readServing(dir)
	if ok {
		fmt.Fprintf(stderr, "%s: the ledger is held by the server running on it (pid %d); asking it at %s\n", cmd, info.PID, info.HTTP)
	}
	return info, ok
}

// serverHead is the ledger head of the server in info, from its /readyz
// (open to every client, ready or not); ok is false when it does not say.
func serverHead(ctx context.Context, info servingInfo) (seq uint64, ok bool) {
	r, ok := serverReady(ctx, info)
	if !ok || r.HeadSeq == nil {
		return 0, false
	}
	return *r.HeadSeq, true
}

// serverChainProblem is the broken chain a running server's /readyz
// reports (chain_problem); "" when none, or when it does not answer.
func serverChainProblem(ctx context.Context, info servingInfo) string {
	r, _ := serverReady(ctx, info)
	return r.ChainProblem
}

// readyReply is the part of a server's /readyz the offline commands read.
type readyReply struct {
	HeadSeq      *uint64 `json:"head_seq"`
	ChainProblem string  `json:"chain_problem"`
	// DamageProblem: a request met a damaged part of the file.
	DamageProblem string `json:"damage_problem"`
}

// serverReady reads a running server's /readyz; ok is false when it does
// not answer with JSON.
func serverReady(ctx context.Context, info servingInfo) (r readyReply, ok bool) {
	resp, err := getFromServer(ctx, info, "", "/readyz")
	if err != nil {
		return r, false
	}
	defer resp.Body.Close()
	return r, json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&r) == nil
}

// mirrorCatchUp bounds how long replay and verify wait for a running
// server's mirror to hold the events the server had when asked.
const mirrorCatchUp = 10 * time.Second

// catchUp waits until the mirror src of the server info holds the
// server's head as its /readyz gives it (the outbox's lag is normally
// milliseconds), so that a replay beside the server is not behind it;
// after wait, or at once when the server does not say, it goes on with
// what the mirror has and says so. head is the mirror's head as last
// read; catchUp returns it as it is when done.
func catchUp(ctx context.Context, info servingInfo, src replay.JetStreamSource, head uint64, wait time.Duration, stderr io.Writer) uint64 {
	want, ok := serverHead(ctx, info)
	if !ok || head >= want {
		return head
	}
	deadline := time.Now().Add(wait)
	for head < want && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
		if h, err := src.Head(ctx); err == nil {
			head = h
		}
	}
	if head < want {
		fmt.Fprintf(stderr, "recledger: the mirror holds seq %d, the server %d after %s: going on with what the mirror has\n", head, want, wait)
	}
	return head
}
