package ingest

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/recledger/recledger/ledger"
)

// metrics are the API's Prometheus collectors.
type metrics struct {
	commands    *prometheus.CounterVec   // by command and outcome
	requests    *prometheus.CounterVec   // by route and status
	appendSecs  *prometheus.HistogramVec // by source
	appendBatch prometheus.Histogram
	appended    prometheus.Counter
	appendFails *prometheus.CounterVec // by source
	conns       prometheus.Gauge       // HTTP connections open (ConnState)
	signals     *prometheus.CounterVec // call-signal batches by source and result
	ignored     *prometheus.CounterVec // call signals appended that changed nothing, by reason
	ahead       prometheus.Counter     // call signals dated ahead of the server's clock
	ctiDropped  prometheus.Counter     // NATS call-signal messages dropped unanswered
	backups     *prometheus.CounterVec // GET /v1/backup by result
	backupLast  prometheus.Gauge       // when the last whole backup was sent

	writers  sync.Pool // free *statusWriter, see instrument
	gatherer prometheus.Gatherer

	// The children of the vectors, looked up once per label set: a
	// WithLabelValues call hashes its labels and takes the vector's lock
	// on every request.
	commandsBy childCache[[2]string, prometheus.Counter]
	requestsBy childCache[routeCode, prometheus.Counter]
	appendBy   childCache[string, prometheus.Observer]
	signalsBy  childCache[[2]string, prometheus.Counter]
	ignoredBy  childCache[string, prometheus.Counter]
}

// Results of a call-signal batch, the label of recledger_call_signal_batches_total.
const (
	batchAccepted = "accepted" // appended
	batchRefused  = "refused"  // a 4xx: nothing appended
	batchFailed   = "failed"   // a 5xx: nothing appended
)

// countBatch counts a call-signal batch's result, and the signals of it
// that changed nothing.
func (m *metrics) countBatch(source, result string, ignored []ignoredSignal) {
	m.signalsBy.get([2]string{source, result}, func() prometheus.Counter {
		return m.signals.WithLabelValues(source, result)
	}).Inc()
	for _, ig := range ignored {
		m.ignoredBy.get(ig.Reason, func() prometheus.Counter { return m.ignored.WithLabelValues(ig.Reason) }).Inc()
	}
}

// routeCode is the label set of the requests counter.
type routeCode struct {
	route string
	code  int
}

// childCache remembers the child of a metric vector for each label set.
// Label sets are few and bounded (routes, status codes, commands and
// outcomes), so it never forgets.
type childCache[K comparable, V any] struct{ m sync.Map }

func (c *childCache[K, V]) get(k K, make func() V) V {
	if v, ok := c.m.Load(k); ok {
		return v.(V)
	}
	v, _ := c.m.LoadOrStore(k, make())
	return v.(V)
}

// countCommand counts a command's outcome.
func (m *metrics) countCommand(command, outcome string) {
	m.commandsBy.get([2]string{command, outcome}, func() prometheus.Counter {
		return m.commands.WithLabelValues(command, outcome)
	}).Inc()
}

// Results of a backup, the label of recledger_backups_total.
const (
	backupSent   = "sent"
	backupCutOff = "cut_off"
	backupFailed = "failed"
)

// countBackup counts a backup's result; a whole one sets the time of the last.
func (m *metrics) countBackup(result string, at time.Time) {
	m.backups.WithLabelValues(result).Inc()
	if result == backupSent {
		m.backupLast.Set(float64(at.UnixNano()) / 1e9)
	}
}

// Append sources, the label of the append histogram.
const (
	sourceCommand = "command"
	sourceCalls   = "calls"
	sourceCTI     = "cti_nats"
	sourceConfig  = "config"
	sourceSeal    = "seal"
)

func newMetrics(reg prometheus.Registerer, lag, manifestLag, head func() uint64) (*metrics, error) {
	m := &metrics{
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recledger_commands_total",
			Help: "Recording Controls commands by canonical command and outcome.",
		}, []string{"command", "outcome"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recledger_http_requests_total",
			Help: "HTTP requests by route pattern and status code.",
		}, []string{"route", "code"}),
		appendSecs: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "recledger_append_seconds",
			Help:    "Time an Append call took, until the events were durable (calls that failed are recledger_append_failures_total).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"source"}),
		appendBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "recledger_append_batch_size",
			Help:    "Events per Append call made by the API that appended them.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024},
		}),
		signals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recledger_call_signal_batches_total",
			Help: "Call-signal batches by source (calls: HTTP, cti_nats: NATS) and result (accepted, refused: a 4xx, failed: a 5xx).",
		}, []string{"source", "result"}),
		ignored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recledger_call_signals_ignored_total",
			Help: "Call signals appended that changed nothing, by reason (late, unknown_call; unknown_type, a type this build does not know, is refused by the API and so not seen from it).",
		}, []string{"reason"}),
		conns: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "recledger_http_open_connections",
			Help: "HTTP connections open, idle keep-alive ones included (serve's --http-max-connections bounds them).",
		}),
		ahead: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "recledger_call_signals_ahead_total",
			Help: "Call signals appended whose at was more than a second after the server received them: a feed whose clock runs ahead.",
		}),
		ctiDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "recledger_call_signal_messages_dropped_total",
			Help: "NATS call-signal messages dropped unanswered: more, or larger, than the server holds while its workers are busy arrived at once. Their requesters time out and retry.",
		}),
		appendFails: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recledger_append_failures_total",
			Help: "Append calls made by the API that appended nothing (a full disk, a write error, a stop), by source; their requests were answered 503.",
		}, []string{"source"}),
		appended: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "recledger_events_appended_total",
			Help: "Events appended by the API (not the server's own: timers, seals by schedule; recledger_ledger_head_seq counts every event).",
		}),
		backups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recledger_backups_total",
			Help: "Copies of the ledger asked for (GET /v1/backup), by result: sent whole, cut_off once begun, failed before the first byte.",
		}, []string{"result"}),
		backupLast: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "recledger_backup_last_sent_timestamp_seconds",
			Help: "When the last whole copy of the ledger was sent (Unix seconds); 0 until one is. Alert when it is older than your backups' period.",
		}),
	}
	cs := []prometheus.Collector{m.commands, m.requests, m.appendSecs, m.appendBatch, m.appended, m.appendFails, m.signals, m.ignored, m.ahead, m.ctiDropped, m.conns, m.backups, m.backupLast,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "recledger_ledger_head_seq",
			Help: "The seq of the ledger's last event: every event appended, by the API or the server, since the ledger began.",
		}, func() float64 { return float64(head()) })}
	if lag != nil {
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "recledger_outbox_lag",
			Help: "Ledger events not yet confirmed by JetStream.",
		}, func() float64 { return float64(lag()) }))
	}
	if manifestLag != nil {
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "recledger_manifest_lag",
			Help: "Sealed days whose manifest is not yet known to be in JetStream.",
		}, func() float64 { return float64(manifestLag()) }))
	}
	if reg == nil {
		r := prometheus.NewRegistry()
		reg, m.gatherer = r, r
	} else if g, ok := reg.(prometheus.Gatherer); ok {
		m.gatherer = g
	} else {
		// /metrics serves what it gathers: a registry it cannot
		// gather from would serve nothing of these.
		return nil, fmt.Errorf("metrics: %w: the registry (%T) cannot be gathered from: give a *prometheus.Registry", ledger.ErrInvalid, reg)
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("metrics: %w (one Server per registry)", err)
			}
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	return m, nil
}

// observeAppend records one Append call.
// A call that failed is counted apart: in the latency and batch
// histograms a walk's full disk made appends look faster (0.5 ms each).
func (m *metrics) observeAppend(source string, n int, took time.Duration, err error) {
	if err != nil {
		m.appendFails.WithLabelValues(source).Inc()
		return
	}
	m.appendBy.get(source, func() prometheus.Observer {
		return m.appendSecs.WithLabelValues(source)
	}).Observe(took.Seconds())
	m.appendBatch.Observe(float64(n))
	m.appended.Add(float64(n))
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.gatherer, promhttp.HandlerOpts{})
}

// statusWriter remembers the status code written.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// instrument counts every request by its route pattern and status.
func (m *metrics) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw, _ := m.writers.Get().(*statusWriter)
		if sw == nil {
			sw = new(statusWriter)
		}
		*sw = statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		code := sw.code
		*sw = statusWriter{} // keep no ResponseWriter alive in the pool
		m.writers.Put(sw)    // a handler that panicked does not get here: its writer is left to the GC
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		if code == 0 {
			code = http.StatusOK
		}
		m.requestsBy.get(routeCode{route, code}, func() prometheus.Counter {
			return m.requests.WithLabelValues(route, strconv.Itoa(code))
		}).Inc()
	})
}

// ConnState is the http.Server's ConnState hook that keeps
// recledger_http_open_connections.
func (s *Server) ConnState(_ net.Conn, state http.ConnState) {
	switch state {
	case http.StateNew:
		s.met.conns.Inc()
	case http.StateClosed, http.StateHijacked:
		s.met.conns.Dec()
	}
}
