package server

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ferrydb/ferry/migrate"
)

// metrics are the service's Prometheus metrics, in a registry of its own.
type metrics struct {
	s   *Server
	reg *prometheus.Registry

	upgrades    *prometheus.CounterVec
	migrations  *prometheus.HistogramVec
	lockWait    prometheus.Histogram
	lastUpgrade prometheus.Gauge
	requests    *prometheus.CounterVec
	statusReads prometheus.Counter
}

func newMetrics(s *Server) *metrics {
	m := &metrics{
		s:   s,
		reg: prometheus.NewRegistry(),
		upgrades: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_upgrades_total", Help: "Upgrade requests served, by outcome (success, failure).",
		}, []string{"outcome"}),
		migrations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ferry_migration_duration_seconds", Help: "Time to apply or revert one migration.",
			Buckets: prometheus.ExponentialBuckets(0.005, 4, 10),
		}, []string{"operation", "outcome"}),
		lockWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "ferry_lock_wait_seconds", Help: "Time spent waiting for the migration lock.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}),
		lastUpgrade: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ferry_last_upgrade_timestamp_seconds", Help: "Unix time of the last successful upgrade served by this process.",
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_http_requests_total", Help: "HTTP requests, by route and status code.",
		}, []string{"route", "code"}),
		statusReads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ferry_status_reads_total", Help: "Reads of the schema status from the database; status requests between them are answered from memory.",
		}),
	}
	m.upgrades.WithLabelValues("success")
	m.upgrades.WithLabelValues("failure")
	m.reg.MustRegister(m.upgrades, m.migrations, m.lockWait, m.lastUpgrade, m.requests, m.statusReads, &schemaCollector{s: s},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

func (m *metrics) request(method, route string, code int) {
	m.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
}

// upgraded records the outcome of one upgrade request.
func (m *metrics) upgraded(err error) {
	if err != nil {
		m.upgrades.WithLabelValues("failure").Inc()
		return
	}
	m.upgrades.WithLabelValues("success").Inc()
	m.lastUpgrade.SetToCurrentTime()
}

// hooks feed the metrics from the engine (which logs every step itself).
func (m *metrics) hooks() migrate.Hooks {
	return migrate.Hooks{
		LockAcquired: func(waited time.Duration) { m.lockWait.Observe(waited.Seconds()) },
		MigrationDone: func(e migrate.Event) {
			outcome := "success"
			if e.Err != nil {
				outcome = "failure"
			}
			m.migrations.WithLabelValues(string(e.Operation), outcome).Observe(e.Duration.Seconds())
		},
	}
}

// schemaCollector reads the schema's state at scrape time.
type schemaCollector struct{ s *Server }

var (
	descCurrent    = prometheus.NewDesc("ferry_schema_current_version", "Highest applied migration version.", nil, nil)
	descLatest     = prometheus.NewDesc("ferry_schema_latest_version", "Highest available migration version.", nil, nil)
	descPending    = prometheus.NewDesc("ferry_schema_pending_migrations", "Migrations not applied yet.", nil, nil)
	descFailed     = prometheus.NewDesc("ferry_schema_failed_migrations", "Migrations that failed without a transaction and need repair.", nil, nil)
	descUpToDate   = prometheus.NewDesc("ferry_schema_up_to_date", "1 when no migration is pending or failed and no import into the database is unfinished (or unknown).", nil, nil)
	descInProgress = prometheus.NewDesc("ferry_migration_in_progress", "1 while a process holds the migration lock.", nil, nil)
	descDBUp       = prometheus.NewDesc("ferry_database_up", "1 when the database answered the last scrape.", nil, nil)
	descImports    = prometheus.NewDesc("ferry_imports_in_progress", "Imports (ferry import or copy) into the database that have not finished; absent when the import ledger cannot be read.", nil, nil)
)

// Describe implements prometheus.Collector.
func (c *schemaCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descCurrent, descLatest, descPending, descFailed, descUpToDate, descInProgress, descDBUp, descImports} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *schemaCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	snap, err := c.s.snaps.get(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(descDBUp, prometheus.GaugeValue, 0)
		return
	}
	st := snap.st
	ch <- prometheus.MustNewConstMetric(descDBUp, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(descCurrent, prometheus.GaugeValue, float64(st.CurrentVersion))
	ch <- prometheus.MustNewConstMetric(descLatest, prometheus.GaugeValue, float64(st.LatestVersion))
	ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(len(st.Pending)))
	ch <- prometheus.MustNewConstMetric(descFailed, prometheus.GaugeValue, float64(len(st.Failed)))
	// Not up to date during an unfinished import, nor when whether one
	// is unknown: as /db_schema_status says (see schemaStatus).
	ch <- prometheus.MustNewConstMetric(descUpToDate, prometheus.GaugeValue, b2f(snap.doc.Ready))
	ch <- prometheus.MustNewConstMetric(descInProgress, prometheus.GaugeValue, b2f(st.MigrationInProgress))
	if snap.importsErr == nil {
		ch <- prometheus.MustNewConstMetric(descImports, prometheus.GaugeValue, float64(len(snap.imports)))
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
