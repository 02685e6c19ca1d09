package simulator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/recledger/recledger/ingest"
	"github.com/recledger/recledger/ledger"
)

// verify reads GET /v1/verify: the number of events and whether the chain is sound.
func (r *runner) verify(ctx context.Context) (events uint64, ok bool, err error) {
	body, status, err := r.get(ctx, "/v1/verify")
	if err != nil {
		return 0, false, err
	}
	if status != http.StatusOK {
		return 0, false, fmt.Errorf("GET /v1/verify: %s", refusedRead(status))
	}
	var v struct {
		OK     bool   `json:"ok"`
		Events uint64 `json:"events"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return 0, false, fmt.Errorf("GET /v1/verify: %w", err)
	}
	return v.Events, v.OK, nil
}

// counters reads GET /metrics and sums recledger_events_appended_total and
// recledger_commands_total over their labels; ok is false without /metrics.
func (r *runner) counters(ctx context.Context) (appended, commands int64, ok bool) {
	body, status, err := r.get(ctx, "/metrics")
	if err != nil || status != http.StatusOK {
		return 0, 0, false
	}
	a, okA := sumMetric(body, "recledger_events_appended_total")
	c, _ := sumMetric(body, "recledger_commands_total")
	return a, c, okA
}

// sumMetric sums every sample of counter name in Prometheus text format,
// read by Prometheus's own parser; ok is false when the text does not
// parse, holds no such counter, or its sum is not a count (NaN, infinite,
// negative, beyond int64).
func sumMetric(text []byte, name string) (int64, bool) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		return 0, false
	}
	mf, found := families[name]
	if !found || len(mf.GetMetric()) == 0 {
		return 0, false
	}
	var sum float64
	for _, m := range mf.GetMetric() {
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Untyped != nil:
			sum += m.GetUntyped().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		default:
			return 0, false
		}
	}
	if math.IsNaN(sum) || sum < 0 || sum >= math.MaxInt64 {
		return 0, false
	}
	return int64(sum), true
}

func (r *runner) get(ctx context.Context, path string) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.base+path, nil)
	if err != nil {
		return nil, 0, err
	}
	if r.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+r.cfg.Token)
	}
	resp, err := r.cfg.Client.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return body, resp.StatusCode, err
}

// serverAppended pages through GET /v1/events over (after, upTo] and counts
// the events the server appends by itself (seals, timers): everything that
// is not a command, a call signal or a configuration change.
func (r *runner) serverAppended(ctx context.Context, after, upTo uint64) (int, error) {
	n := 0
	for after < upTo {
		body, status, err := r.get(ctx, "/v1/events?after_seq="+strconv.FormatUint(after, 10)+"&limit=10000")
		if err != nil {
			return 0, err
		}
		if status != http.StatusOK {
			return 0, fmt.Errorf("GET /v1/events: %s", refusedRead(status))
		}
		var page struct {
			Events []struct {
				Seq  uint64 `json:"seq"`
				Type string `json:"type"`
			} `json:"events"`
			Next uint64 `json:"next_after_seq"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return 0, fmt.Errorf("GET /v1/events: %w", err)
		}
		if len(page.Events) == 0 {
			break
		}
		for _, e := range page.Events {
			if e.Seq > upTo {
				return n, nil
			}
			switch e.Type {
			case "command", "call_signal", "config":
			default:
				n++
			}
			after = e.Seq
		}
	}
	return n, nil
}

// config reads GET /v1/config, each part raw; nil when the server does
// not answer it (the checks below are then best effort).
func (r *runner) config(ctx context.Context) map[string]json.RawMessage {
	body, status, err := r.get(ctx, "/v1/config")
	if err != nil || status != http.StatusOK {
		return nil
	}
	var cfg map[string]json.RawMessage
	if json.Unmarshal(body, &cfg) != nil {
		return nil
	}
	return cfg
}

// keysFit refuses, before the setup changes anything, a setup whose
// metadata keys and the server's own would be more than a site may
// define: the server would refuse the setup's first key beyond the
// limit, after the site settings were already replaced.
func keysFit(cfg map[string]json.RawMessage, setup []Request) error {
	var own map[string]json.RawMessage
	if json.Unmarshal(cfg["metadata"], &own) != nil || len(own) == 0 {
		return nil
	}
	all := maps.Clone(own)
	var added []string
	for _, q := range setup {
		if key, ok := strings.CutPrefix(q.Path, "/v1/config/metadata/"); ok {
			if _, have := all[key]; !have {
				all[key] = nil
				added = append(added, key)
			}
		}
	}
	if len(all) <= ledger.MaxMetadataKeys {
		return nil
	}
	return fmt.Errorf("the server defines %d metadata keys of its own (%s) and the setup would add %d (%s): a site may define at most %d; "+
		"delete some (DELETE /v1/config/metadata/{key}), or run with --skip-setup against a site set up already. Nothing was changed",
		len(own), strings.Join(slices.Sorted(maps.Keys(own)), ", "), len(added), strings.Join(added, ", "), ledger.MaxMetadataKeys)
}

// replaced names each part of cfg (as GET /v1/config shows it) that the
// setup's puts will replace with something else ("site (timezone
// America/Chicago, upload 18:00)", "team sales").
func replaced(cfg map[string]json.RawMessage, setup []Request) []string {
	var out []string
	for _, q := range setup {
		part, key, _ := strings.Cut(strings.TrimPrefix(q.Path, "/v1/config/"), "/")
		cur := cfg[part]
		if key != "" {
			var m map[string]json.RawMessage
			if json.Unmarshal(cur, &m) != nil {
				continue
			}
			cur = m[key]
		}
		if len(cur) == 0 || string(cur) == "null" || sameJSON(cur, q.Body) || part == "site" && defaultSite(cur) {
			continue
		}
		switch part {
		case "site":
			// Each setting named: a walk read only the zone and upload
			// time, and max_pause_seconds went from 30 to 0 unsaid.
			out = append(out, "site ("+memberChanges(cur, q.Body)+")")
		case "teams":
			out = append(out, "team "+key)
		case "metadata":
			out = append(out, "metadata key "+key)
		case "users":
			out = append(out, "user "+key)
		}
	}
	return out
}

// defaultSite reports whether the server's site settings are the ones
// it has when none were set (a fresh server's): not configured otherwise.
func defaultSite(cur []byte) bool {
	var zero ledger.Site
	zero.Normalize()
	b, err := json.Marshal(zero)
	return err == nil && memberChanges(cur, b) == ""
}

// sameJSON reports whether a and b hold the same members with the same
// values (a as the server shows it may hold defaults b leaves out: only
// b's members are compared).
func sameJSON(a, b []byte) bool {
	var ma, mb map[string]any
	if json.Unmarshal(a, &ma) != nil || json.Unmarshal(b, &mb) != nil {
		return false
	}
	for k, v := range mb {
		if fmt.Sprint(ma[k]) != fmt.Sprint(v) {
			return false
		}
	}
	return true
}

// memberChanges names what putting JSON object b in place of a changes
// ("max_pause_seconds 30 → 0"), as serve's log of a --config file does.
func memberChanges(a, b []byte) string {
	var va, vb any
	_ = json.Unmarshal(a, &va)
	_ = json.Unmarshal(b, &vb)
	return ingest.FieldChanges(va, vb)
}

// refusedRead says what a read's status means for the simulator's token.
func refusedRead(status int) string {
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Sprintf("status %d: the simulator reads the ledger to check its totals; its token (--token or RECLEDGER_TOKEN) needs the admin role, beside command", status)
	}
	return fmt.Sprintf("status %d", status)
}
