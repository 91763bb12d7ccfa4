package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os/exec"
	"slices"
	"sync"
	"syscall"
	"time"
)

// service is a running `ferry serve`.
type service struct {
	cmd  *exec.Cmd
	addr string
	done chan struct{}
	logs *tailBuffer // the last lines of its log, for errors
	mu   sync.Mutex
}

// startService starts `ferry serve --read-only` on a free loopback port
// and returns once it listens (it logs a "serving" line with the address).
func (b *bins) startService(ctx context.Context, f *fresh, dir string, env ...string) (*service, error) {
	cmd := exec.CommandContext(ctx, b.ferry, "serve", "--read-only", "--listen", "127.0.0.1:0", "--dir", dir, "--database", f.ferryURL())
	cmd.Env = append(childEnv(), env...)
	b.prepare(cmd)
	cmd.Stdout, cmd.Stderr = nil, nil
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start ferry serve: %w", err)
	}
	s := &service{cmd: cmd, done: make(chan struct{}), logs: &tailBuffer{max: 4 << 10}}
	addr := make(chan string, 1)
	go func() {
		defer close(s.done)
		// The service logs every request; read it all (as a log collector
		// would), keeping the tail for errors.
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		found := false
		for sc.Scan() {
			line := sc.Bytes()
			if !found {
				var rec struct{ Msg, Addr string }
				if json.Unmarshal(line, &rec) == nil && rec.Msg == "serving" && rec.Addr != "" {
					found = true
					addr <- rec.Addr
				}
			}
			s.mu.Lock()
			s.logs.Write(line)
			s.logs.Write([]byte{'\n'})
			s.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, stderr)
		_ = cmd.Wait()
	}()
	select {
	case a := <-addr:
		s.addr = a
		return s, nil
	case <-s.done:
		return nil, fmt.Errorf("ferry serve exited before listening:\n%s", s.tail())
	case <-ctx.Done():
		s.stop()
		return nil, ctx.Err()
	}
}

func (s *service) tail() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs.String()
}

// stop sends SIGTERM, waits for the process to exit (killing it after 10s)
// and returns its CPU time.
func (s *service) stop() time.Duration {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	if ps := s.cmd.ProcessState; ps != nil {
		return ps.UserTime() + ps.SystemTime()
	}
	return 0
}

// load is a closed-loop load generator: workers goroutines on keep-alive
// connections, each sending the next request as soon as the last answer is
// read.
type load struct {
	client  *http.Client
	url     string
	workers int
}

func newLoad(addr string, workers int) *load {
	tr := &http.Transport{MaxIdleConnsPerHost: workers, MaxConnsPerHost: workers, DisableCompression: true}
	return &load{client: &http.Client{Transport: tr, Timeout: 30 * time.Second}, url: "http://" + addr + "/db_schema_status", workers: workers}
}

func (l *load) close() { l.client.CloseIdleConnections() }

// check makes one request and verifies the answer: 200, up to date, n
// versions.
func (l *load) check(ctx context.Context, n int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.url, nil)
	if err != nil {
		return err
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var doc struct {
		IsUpToDate bool     `json:"is_up_to_date"`
		Versions   []string `json:"db_schema_versions"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		return fmt.Errorf("GET /db_schema_status: %d, %w", resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusOK || !doc.IsUpToDate || len(doc.Versions) != n {
		return fmt.Errorf("GET /db_schema_status: %d, up to date %v, %d versions (want %d)", resp.StatusCode, doc.IsUpToDate, len(doc.Versions), n)
	}
	return nil
}

// run sends requests for d and measures them.
func (l *load) run(ctx context.Context, d time.Duration) svcWindow {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	lat := make([][]time.Duration, l.workers)
	errs := make([]int, l.workers)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range l.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				t0 := time.Now()
				err := l.get(ctx)
				if ctx.Err() != nil {
					return // the window ended during this request: not counted
				}
				if err != nil {
					errs[w]++
					continue
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	out := svcWindow{Seconds: elapsed.Seconds()}
	for w := range l.workers {
		all = append(all, lat[w]...)
		out.Errors += errs[w]
	}
	slices.Sort(all)
	out.Requests = len(all)
	out.RPS = float64(len(all)) / elapsed.Seconds()
	out.P50ms = ms(percentile(all, 0.50))
	out.P99ms = ms(percentile(all, 0.99))
	if len(all) > 0 {
		out.MaxMS = ms(all[len(all)-1])
	}
	return out
}

func (l *load) get(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.url, nil)
	if err != nil {
		return err
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode != http.StatusOK {
		err = errors.New(resp.Status)
	}
	return err
}

// percentile of sorted durations (nearest rank).
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
