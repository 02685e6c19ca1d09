package simulator

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// verify reads GET /v1/verify: the number of events and whether the chain is sound.
func (r *runner) verify(ctx context.Context) (events uint64, ok bool, err error) {
	body, status, err := r.get(ctx, "/v1/verify")
	if err != nil {
		return 0, false, err
	}
	if status != http.StatusOK {
		return 0, false, fmt.Errorf("GET /v1/verify: status %d", status)
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

// sumMetric sums every sample of a counter in Prometheus text format.
func sumMetric(text []byte, name string) (int64, bool) {
	var sum float64
	found := false
	sc := bufio.NewScanner(strings.NewReader(string(text)))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		if i := strings.LastIndexByte(rest, '}'); i >= 0 {
			rest = rest[i+1:]
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		sum += v
		found = true
	}
	return int64(sum), found
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
			return 0, fmt.Errorf("GET /v1/events: status %d", status)
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
