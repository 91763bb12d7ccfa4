// Package client is the Go client of ferry's migration service (and of the
// Metaflow migration service it replaces). It speaks the Metaflow routes and
// ferry's /v1 API, retries with exponential backoff and jitter while a
// service restarts, and never sends an upgrade twice: when it cannot tell
// whether the server received an upgrade, it asks for the status instead.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ferrydb/ferry/internal/redact"
	"github.com/ferrydb/ferry/server/api"
)

// API selects the routes the client uses.
type API string

const (
	// APIAuto uses ferry's /v1 routes when the service has them, and the
	// Metaflow routes otherwise.
	APIAuto API = "auto"
	// APIV1 uses ferry's /v1 routes.
	APIV1 API = "v1"
	// APIMetaflow uses the Metaflow routes (/db_schema_status, PATCH /upgrade).
	APIMetaflow API = "metaflow"
)

// Retry is the retry policy for connection errors and 503 answers.
type Retry struct {
	// Attempts is the most tries of one request (default 8).
	Attempts int
	// Initial is the first backoff (default 200ms); it doubles up to Max
	// (default 10s), with jitter.
	Initial, Max time.Duration
}

// Client talks to one migration service.
type Client struct {
	base  *url.URL
	token string
	hc    *http.Client
	retry Retry
	log   *slog.Logger
	api   API
}

// Option configures a Client.
type Option func(*Client)

// WithToken sets the token for upgrades (it overrides a password in the
// base URL).
func WithToken(token string) Option { return func(c *Client) { c.token = token } }

// WithHTTPClient sets the HTTP client (default: one with a 30s dial and
// header timeout and no overall timeout, since upgrades take time).
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithRetry sets the retry policy.
func WithRetry(r Retry) Option { return func(c *Client) { c.retry = r } }

// WithLogger logs retries.
func WithLogger(l *slog.Logger) Option { return func(c *Client) { c.log = l } }

// WithAPI selects the routes (default APIAuto).
func WithAPI(a API) Option { return func(c *Client) { c.api = a } }

// New returns a client for the service at baseURL. A password in the URL
// (http://ferry:TOKEN@host:8082, as Metaflow deployments write it) is used
// as the token and never sent anywhere else.
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil {
		// url.Parse's message can quote the part it chokes on: a token.
		return nil, fmt.Errorf("base URL %s is not a valid URL: use http://host:port or https://host:port (a token goes in as http://ferry:TOKEN@host:port, URL-escaped)", redact.URL(baseURL))
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("base URL %s: use http://host:port or https://host:port", redact.URL(baseURL))
	}
	if u.RawQuery != "" || u.Fragment != "" {
		// A token in the query would be printed and logged with the URL.
		return nil, fmt.Errorf("base URL %s: give it without a query string or fragment (a token goes in the user info, http://ferry:TOKEN@host:port, or in FERRY_TOKEN)", redact.URL(baseURL))
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("base URL %s: invalid port %q: use 1 to 65535", redact.URL(baseURL), p)
		}
	}
	c := &Client{base: u, api: APIAuto, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if u.User != nil {
		if p, ok := u.User.Password(); ok {
			c.token = p
		}
		u.User = nil
	}
	for _, o := range opts {
		o(c)
	}
	switch c.api {
	case APIAuto, APIV1, APIMetaflow:
	default:
		return nil, fmt.Errorf("unknown API %q: use auto, v1 or metaflow", c.api)
	}
	if c.hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.DialContext = (&net.Dialer{Timeout: 30 * time.Second}).DialContext
		tr.ResponseHeaderTimeout = 0
		c.hc = &http.Client{Transport: tr}
	}
	if c.retry.Attempts <= 0 {
		c.retry.Attempts = 8
	}
	if c.retry.Initial <= 0 {
		c.retry.Initial = 200 * time.Millisecond
	}
	if c.retry.Max <= 0 {
		c.retry.Max = 10 * time.Second
	}
	return c, nil
}

// BaseURL is the service's URL, without credentials.
func (c *Client) BaseURL() string { return c.base.String() }

// HTTPError is an answer with an unexpected status code.
type HTTPError struct {
	Method, Path string
	Code         int
	Body         string
}

func (e *HTTPError) Error() string {
	body := strings.TrimSpace(e.Body)
	if len(body) > 300 {
		body = body[:300] + "..."
	}
	msg := fmt.Sprintf("%s %s: %d %s: %s", e.Method, e.Path, e.Code, http.StatusText(e.Code), body)
	if e.Code == http.StatusUnauthorized {
		msg += " (check the token: --token-file, FERRY_TOKEN, or the password in the base URL)"
	}
	return msg
}

// ErrUnreachable wraps the last error when the service could not be
// reached after every retry.
var ErrUnreachable = errors.New("migration service unreachable")

// request is one HTTP request to build afresh for each attempt.
type request struct {
	method, path string
	body         []byte
	accept       string
	auth         bool
}

func (c *Client) build(ctx context.Context, r request) (*http.Request, error) {
	u := *c.base
	path, query, _ := strings.Cut(r.path, "?")
	u.Path = strings.TrimRight(u.Path, "/") + path
	u.RawQuery = query
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), body)
	if err != nil {
		return nil, err
	}
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.accept != "" {
		req.Header.Set("Accept", r.accept)
	}
	if r.auth && c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("User-Agent", "ferry-client")
	return req, nil
}

// notSent reports whether err proves the request never reached the server
// (so that resending it cannot apply anything twice).
func notSent(err error) bool {
	var dnsErr *net.DNSError
	var opErr *net.OpError
	return errors.As(err, &dnsErr) ||
		(errors.As(err, &opErr) && opErr.Op == "dial") ||
		errors.Is(err, syscall.ECONNREFUSED)
}

// retryable reports whether a read request may be retried after err.
func retryable(err error) bool {
	if err == nil {
		return false
	}
	if notSent(err) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}

// sleep waits for the n-th backoff (0-based) or until ctx ends.
func (c *Client) sleep(ctx context.Context, n int) error {
	d := c.retry.Initial << n
	if d > c.retry.Max || d <= 0 {
		d = c.retry.Max
	}
	d = d/2 + rand.N(d/2+1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// get sends a read request, retrying connection errors and 503 answers.
func (c *Client) get(ctx context.Context, path, accept string) (int, []byte, error) {
	var last error
	for attempt := 0; attempt < c.retry.Attempts; attempt++ {
		if attempt > 0 {
			c.log.Warn("retrying", "path", path, "attempt", attempt+1, "error", last)
			if err := c.sleep(ctx, attempt-1); err != nil {
				return 0, nil, err
			}
		}
		req, err := c.build(ctx, request{method: "GET", path: path, accept: accept})
		if err != nil {
			return 0, nil, err
		}
		resp, err := c.hc.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return 0, nil, ctx.Err()
			}
			last = err
			if retryable(err) {
				continue
			}
			return 0, nil, err
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
		resp.Body.Close()
		if err != nil {
			last = err
			continue
		}
		if resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusBadGateway || resp.StatusCode == http.StatusGatewayTimeout {
			last = &HTTPError{Method: "GET", Path: path, Code: resp.StatusCode, Body: string(body)}
			continue
		}
		return resp.StatusCode, body, nil
	}
	return 0, nil, fmt.Errorf("%w at %s after %d attempts: %w", ErrUnreachable, c.base, c.retry.Attempts, last)
}

func (c *Client) getJSON(ctx context.Context, path string, v any) error {
	code, body, err := c.get(ctx, path, "application/json")
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return &HTTPError{Method: "GET", Path: path, Code: code, Body: string(body)}
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: answer is not the expected JSON: %w", path, err)
	}
	return nil
}

// Ping checks that the service answers.
func (c *Client) Ping(ctx context.Context) error {
	code, body, err := c.get(ctx, "/ping", "")
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return &HTTPError{Method: "GET", Path: "/ping", Code: code, Body: string(body)}
	}
	return nil
}

// Version returns GET /version: the newest application release the schema
// supports.
func (c *Client) Version(ctx context.Context) (string, error) {
	code, body, err := c.get(ctx, "/version", "")
	if err != nil {
		return "", err
	}
	if code != http.StatusOK {
		return "", &HTTPError{Method: "GET", Path: "/version", Code: code, Body: string(body)}
	}
	return strings.TrimSpace(string(body)), nil
}

// SchemaStatus returns the Metaflow-compatible GET /db_schema_status.
func (c *Client) SchemaStatus(ctx context.Context) (*api.SchemaStatus, error) {
	var s api.SchemaStatus
	if err := c.getJSON(ctx, "/db_schema_status", &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Status returns ferry's GET /v1/status.
func (c *Client) Status(ctx context.Context) (*api.Status, error) {
	var s api.Status
	if err := c.getJSON(ctx, "/v1/status", &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// HistoryPage returns up to limit rows of the service's history with an
// id above after (GET /v1/history?after=&limit=, ferry's service only).
// The last row's ID is the next page's after; a page shorter than limit
// is the last.
func (c *Client) HistoryPage(ctx context.Context, after int64, limit int) ([]api.HistoryRow, error) {
	var rows []api.HistoryRow
	if err := c.getJSON(ctx, fmt.Sprintf("/v1/history?after=%d&limit=%d", after, limit), &rows); err != nil {
		return nil, err
	}
	return rows, nil
}

// useV1 decides which routes to use, asking the service in auto mode.
func (c *Client) useV1(ctx context.Context) (bool, error) {
	switch c.api {
	case APIV1:
		return true, nil
	case APIMetaflow:
		return false, nil
	}
	code, body, err := c.get(ctx, "/v1/status", "application/json")
	if err != nil {
		return false, err
	}
	switch code {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		c.api = APIMetaflow
		return false, nil
	}
	return false, &HTTPError{Method: "GET", Path: "/v1/status", Code: code, Body: string(body)}
}

// Summary is a status reduced to what both APIs report.
type Summary struct {
	IsUpToDate          bool     `json:"is_up_to_date"`
	CurrentVersion      string   `json:"current_version"`
	MigrationInProgress bool     `json:"migration_in_progress"`
	Unapplied           []string `json:"unapplied_migrations"`
	// ImportsInProgress and ImportsError are why a schema with nothing
	// unapplied is not up to date (ferry's service only: Metaflow's
	// document has no field for them).
	ImportsInProgress []api.ImportInProgress `json:"imports_in_progress,omitempty"`
	ImportsError      string                 `json:"imports_error,omitempty"`
}

// Summary returns the status through whichever API the service speaks.
func (c *Client) Summary(ctx context.Context) (*Summary, error) {
	v1, err := c.useV1(ctx)
	if err != nil {
		return nil, err
	}
	if !v1 {
		s, err := c.SchemaStatus(ctx)
		if err != nil {
			return nil, err
		}
		return &Summary{IsUpToDate: s.IsUpToDate, CurrentVersion: s.CurrentVersion, MigrationInProgress: s.MigrationInProgress, Unapplied: s.UnappliedMigrations}, nil
	}
	s, err := c.Status(ctx)
	if err != nil {
		return nil, err
	}
	return summarize(s), nil
}

func summarize(s *api.Status) *Summary {
	if s == nil {
		return nil
	}
	// As /db_schema_status: the schema is not up to date for a release
	// while an import into the database has not finished.
	// (Computed, not read from Ready: a ferry before that field.)
	up := s.IsUpToDate && len(s.ImportsInProgress) == 0 && s.ImportsError == ""
	out := &Summary{IsUpToDate: up, CurrentVersion: strconv.FormatInt(s.CurrentVersion, 10), MigrationInProgress: s.MigrationInProgress, Unapplied: []string{},
		ImportsInProgress: s.ImportsInProgress, ImportsError: s.ImportsError}
	for _, v := range s.Pending {
		out.Unapplied = append(out.Unapplied, strconv.FormatInt(v, 10))
	}
	for _, f := range s.Failed {
		out.Unapplied = append(out.Unapplied, strconv.FormatInt(f.Version, 10))
	}
	return out
}

// Outcome is the result of an upgrade.
type Outcome struct {
	// Success: the service reported "upgrade success".
	Success bool `json:"success"`
	// Result is the service's upgrade-result text.
	Result string `json:"upgrade-result"`
	// Before and After are the status around the upgrade.
	Before *Summary `json:"init-status"`
	After  *Summary `json:"final-status"`
	// Error is the service's explanation of a failure.
	Error string `json:"error,omitempty"`
	// Applied counts the migrations this request applied, when the service
	// reports it (ferry does, Metaflow's service does not).
	Applied int `json:"applied"`
	// BackupID names the backup the service took before the upgrade.
	BackupID string `json:"backup-id,omitempty"`
	// Uncertain: the answer was lost after the request was sent, so the
	// outcome was read from the status instead (the request was not sent
	// again).
	Uncertain bool `json:"uncertain,omitempty"`
	// Target is the version the upgrade was asked to reach; 0 for all.
	Target int64 `json:"target,omitempty"`
}

// OK reports whether the upgrade succeeded and left the schema up to date,
// or, for an upgrade to a target version, at that version or later.
func (o *Outcome) OK() bool {
	if !o.Success || o.After == nil {
		return false
	}
	if o.Target > 0 {
		v, err := strconv.ParseInt(o.After.CurrentVersion, 10, 64)
		return err == nil && v >= o.Target
	}
	return o.After.IsUpToDate
}

// ErrUpgradeNotAccepted is returned when every attempt to deliver the
// upgrade was refused before the service could act on it.
var ErrUpgradeNotAccepted = errors.New("the upgrade request was not accepted")

// Upgrade asks the service to apply pending migrations (up to to, when the
// service speaks /v1; 0 means all). The request is resent only when it
// provably did not reach the service (connection refused, 503). If the
// answer is lost after the request was sent, Upgrade does not resend it: it
// waits for the migration to finish and reads the outcome from the status.
func (c *Client) Upgrade(ctx context.Context, to int64) (*Outcome, error) {
	o, err := c.upgrade(ctx, to)
	if o != nil {
		o.Target = to
	}
	return o, err
}

func (c *Client) upgrade(ctx context.Context, to int64) (*Outcome, error) {
	v1, err := c.useV1(ctx)
	if err != nil {
		return nil, err
	}
	if to < 0 {
		return nil, fmt.Errorf("target version %d: versions are positive (0 applies every pending migration)", to)
	}
	if !v1 && to != 0 {
		return nil, errors.New("this service speaks only the Metaflow API, which upgrades to the latest version; --to needs ferry's /v1 API")
	}
	before, err := c.Summary(ctx)
	if err != nil {
		return nil, err
	}
	r := request{method: "PATCH", path: "/upgrade", accept: "application/json", auth: true}
	if v1 {
		var req api.UpgradeRequest
		if to > 0 {
			req.To = &to
		}
		body, _ := json.Marshal(req)
		r = request{method: "POST", path: "/v1/upgrade", body: body, accept: "application/json", auth: true}
	}
	var last error
	for attempt := 0; attempt < c.retry.Attempts; attempt++ {
		if attempt > 0 {
			c.log.Warn("upgrade not delivered, retrying", "attempt", attempt+1, "error", last)
			if err := c.sleep(ctx, attempt-1); err != nil {
				return nil, err
			}
		}
		req, err := c.build(ctx, r)
		if err != nil {
			return nil, err
		}
		resp, err := c.hc.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if notSent(err) {
				last = err
				continue
			}
			// The request may have reached the service: never resend it.
			c.log.Warn("upgrade answer lost; reading the outcome from the status", "error", err)
			return c.settle(ctx, before, err)
		}
		body, rerr := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			last = &HTTPError{Method: r.method, Path: r.path, Code: resp.StatusCode, Body: string(body)}
			continue
		}
		if rerr != nil {
			return c.settle(ctx, before, rerr)
		}
		return c.outcome(resp.StatusCode, body, before, r)
	}
	return nil, fmt.Errorf("%w after %d attempts: %w", ErrUpgradeNotAccepted, c.retry.Attempts, last)
}

// outcome interprets an upgrade answer (JSON from ferry, text from
// Metaflow's service).
func (c *Client) outcome(code int, body []byte, before *Summary, r request) (*Outcome, error) {
	if code != http.StatusOK && code != http.StatusInternalServerError {
		return nil, &HTTPError{Method: r.method, Path: r.path, Code: code, Body: string(body)}
	}
	o := &Outcome{Before: before}
	var v1 api.Upgrade[*api.Status]
	var mf api.Upgrade[api.SchemaStatus]
	switch {
	case r.path == "/v1/upgrade" && json.Unmarshal(body, &v1) == nil && v1.UpgradeResult != "":
		o.Result, o.Error, o.Applied, o.BackupID = v1.UpgradeResult, v1.Error, len(v1.Applied), v1.BackupID
		o.Before, o.After = summarize(v1.InitStatus), summarize(v1.FinalStatus)
	case json.Unmarshal(body, &mf) == nil && mf.UpgradeResult != "":
		o.Result, o.Error, o.Applied, o.BackupID = mf.UpgradeResult, mf.Error, len(mf.Applied), mf.BackupID
		o.Before = &Summary{IsUpToDate: mf.InitStatus.IsUpToDate, CurrentVersion: mf.InitStatus.CurrentVersion, Unapplied: mf.InitStatus.UnappliedMigrations}
		o.After = &Summary{IsUpToDate: mf.FinalStatus.IsUpToDate, CurrentVersion: mf.FinalStatus.CurrentVersion, Unapplied: mf.FinalStatus.UnappliedMigrations}
	default:
		// Metaflow's service answers in text only.
		o.Result = strings.TrimSpace(string(body))
	}
	o.Success = code == http.StatusOK && o.Result == api.UpgradeSuccess
	if o.After == nil || o.Before == nil {
		after, err := c.Summary(context.Background())
		if err != nil {
			return o, fmt.Errorf("upgrade answered %q, but reading the status afterwards failed: %w", o.Result, err)
		}
		o.After = after
	}
	return o, nil
}

// settle waits until no migration is in progress and reads the outcome of
// an upgrade whose answer was lost.
func (c *Client) settle(ctx context.Context, before *Summary, cause error) (*Outcome, error) {
	for n := 0; ; n++ {
		s, err := c.Summary(ctx)
		if err != nil {
			return nil, fmt.Errorf("upgrade answer lost (%v) and the status cannot be read: %w", cause, err)
		}
		if !s.MigrationInProgress {
			o := &Outcome{Before: before, After: s, Uncertain: true, Success: s.IsUpToDate}
			o.Result = api.UpgradeFailed
			if o.Success {
				o.Result = api.UpgradeSuccess
			} else {
				o.Error = fmt.Sprintf("the upgrade's answer was lost (%v) and the schema is not up to date (version %s, %d unapplied); check `ferry status`", cause, s.CurrentVersion, len(s.Unapplied))
			}
			return o, nil
		}
		if err := c.sleep(ctx, min(n, 5)); err != nil {
			return nil, err
		}
	}
}
