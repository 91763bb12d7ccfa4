package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// This file holds the two halves of the rolling upgrade's traffic: a
// round-robin reverse proxy over the replicas in rotation (a Kubernetes
// Service, or a load balancer with connection draining), and a load
// generator that sends requests through it for the whole upgrade and
// checks every answer.

// replica is one greeter instance behind the balancer.
type replica struct {
	name    string // the instance id in the fleet registry
	release string // v1 or v2
	addr    string // host:port it listens on
	proxy   *httputil.ReverseProxy
	// inflight counts the requests dispatched to the replica and not
	// answered yet; draining waits for it. pending is the same count, for
	// reading.
	inflight sync.WaitGroup
	pending  atomic.Int64
}

// balancer routes each request to the next replica in rotation.
type balancer struct {
	transport *http.Transport
	mu        sync.Mutex
	rotation  []*replica
	next      int
}

func newBalancer(conns int) *balancer {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = conns
	return &balancer{transport: tr}
}

// add puts r into rotation (once its readiness check passed).
func (b *balancer) add(r *replica) {
	target := &url.URL{Scheme: "http", Host: r.addr}
	r.proxy = &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		Transport: b.transport,
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			http.Error(w, fmt.Sprintf("proxy to %s (%s): %v", r.name, r.addr, err), http.StatusBadGateway)
		},
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rotation = append(b.rotation, r)
}

// drain takes r out of rotation and waits until the requests already
// dispatched to it are answered, as a load balancer's connection draining
// does before the instance is stopped. (Without the wait, a request
// written to a kept-alive connection that the replica's graceful shutdown
// closes as idle before reading it could fail: net/http's Shutdown closes
// idle connections at once.) It returns how many requests were in flight
// when r left the rotation, and whether they were answered within
// timeout.
func (b *balancer) drain(r *replica, timeout time.Duration) (int64, bool) {
	b.mu.Lock()
	b.rotation = slices.DeleteFunc(b.rotation, func(x *replica) bool { return x == r })
	n := r.pending.Load()
	b.mu.Unlock()
	done := make(chan struct{})
	go func() { r.inflight.Wait(); close(done) }()
	select {
	case <-done:
		return n, true
	case <-time.After(timeout):
		return n, false
	}
}

func (b *balancer) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b.mu.Lock()
	if len(b.rotation) == 0 {
		b.mu.Unlock()
		http.Error(w, "no replica in rotation", http.StatusServiceUnavailable)
		return
	}
	r := b.rotation[b.next%len(b.rotation)]
	b.next++
	// Counted under the lock, so that drain, which removes r under the
	// same lock, waits for this request.
	r.inflight.Add(1)
	r.pending.Add(1)
	b.mu.Unlock()
	defer func() { r.pending.Add(-1); r.inflight.Done() }()
	w.Header().Set("X-Replica", r.name)
	w.Header().Set("X-Release", r.release)
	r.proxy.ServeHTTP(w, req)
}

// sample is one correct answer: when the request was sent and when its
// answer was read, and which replica of which release served it.
type sample struct {
	start, end time.Time
	replica    string
	release    string
}

// loadGen sends GET / through the balancer from several goroutines until
// stopped, and keeps every correct answer and every failure.
type loadGen struct {
	url    string
	client *http.Client
	stopFn context.CancelFunc
	wg     sync.WaitGroup
	start  time.Time
	end    time.Time

	mu       sync.Mutex
	samples  []sample
	failures []string
	served   map[string]int // per replica
}

// startLoad starts workers goroutines sending requests to url.
func startLoad(url string, workers int) *loadGen {
	ctx, cancel := context.WithCancel(context.Background())
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = workers
	l := &loadGen{url: url, client: &http.Client{Transport: tr, Timeout: 10 * time.Second}, stopFn: cancel, start: time.Now(), served: map[string]int{}}
	for range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for ctx.Err() == nil {
				l.once(ctx)
			}
		}()
	}
	return l
}

// once sends one request and records its outcome. A request cut short by
// stop is not counted.
func (l *loadGen) once(ctx context.Context) {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.url, nil)
	if err != nil {
		l.fail(start, err.Error())
		return
	}
	resp, err := l.client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			l.fail(start, err.Error())
		}
		return
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	end := time.Now()
	if err != nil {
		if ctx.Err() == nil {
			l.fail(start, "read the body: "+err.Error())
		}
		return
	}
	name, rel := resp.Header.Get("X-Replica"), resp.Header.Get("X-Release")
	want := "Hello, Ada! (greeter " + rel + ")\n"
	if resp.StatusCode != http.StatusOK || rel == "" || string(body) != want {
		l.fail(start, fmt.Sprintf("%s from replica %q: %q (want 200 %q)", resp.Status, name, body, want))
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.samples = append(l.samples, sample{start: start, end: end, replica: name, release: rel})
	l.served[name]++
}

func (l *loadGen) fail(at time.Time, what string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failures = append(l.failures, at.Format("15:04:05.000000")+" "+what)
}

// stop ends the load and waits for the workers.
func (l *loadGen) stop() {
	l.stopFn()
	l.wg.Wait()
	if l.end.IsZero() {
		l.end = time.Now()
	}
	l.client.CloseIdleConnections()
}

// servedBy returns how many correct answers replica gave so far.
func (l *loadGen) servedBy(replica string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.served[replica]
}

// report summarises the load once it stopped: answers per release, the
// longest time without a correct answer (from the start to the end of the
// load, so an outage at either end counts) and when it was.
type loadReport struct {
	perRelease map[string]int
	total      int
	gap        time.Duration
	gapAfter   time.Time
	duration   time.Duration
}

func (l *loadGen) report() loadReport {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := loadReport{perRelease: map[string]int{}, total: len(l.samples), duration: l.end.Sub(l.start)}
	ends := make([]time.Time, 0, len(l.samples)+2)
	ends = append(ends, l.start)
	for _, s := range l.samples {
		r.perRelease[s.release]++
		ends = append(ends, s.end)
	}
	ends = append(ends, l.end)
	slices.SortFunc(ends, func(a, b time.Time) int { return a.Compare(b) })
	for i := 1; i < len(ends); i++ {
		if g := ends[i].Sub(ends[i-1]); g > r.gap {
			r.gap, r.gapAfter = g, ends[i-1]
		}
	}
	return r
}

// firstFailures returns up to n failures, one a line.
func (l *loadGen) firstFailures(n int) (string, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.failures[:min(n, len(l.failures))], "\n  "), len(l.failures)
}
