// Command status-bench measures the migration service's status answers
// with a long history: for each database it applies N migrations (default
// 10,000), starts `ferry serve`, and drives it with wrk from a second
// process on loopback (16 connections) on /db_schema_status, /v1/status
// and /ping, reporting requests per second and p99 latency; then it holds
// -sse-clients server-sent-event streams open on /v1/events and reports
// the service's extra resident memory.
//
//	go run ./bench/status -n 10000
//
// It needs wrk (Debian package wrk). Databases it creates are named
// ferry_sbench_<pid> and dropped at the end.
package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/ferrydb/ferry/database"
)

func main() {
	n := flag.Int("n", 10000, "applied migrations")
	dur := flag.Duration("duration", 10*time.Second, "wrk duration per route")
	conns := flag.Int("c", 16, "wrk connections")
	sseClients := flag.Int("sse-clients", 500, "server-sent-event clients to hold open (0: skip)")
	pgURL := flag.String("pg", envOr("FERRY_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres"), "PostgreSQL admin URL (\"\" skips it)")
	myURL := flag.String("mysql", envOr("FERRY_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/"), "MariaDB/MySQL admin URL (\"\" skips it)")
	only := flag.String("only", "", "run one database only: postgres, mysql or sqlite")
	ferryBin := flag.String("ferry", "", "ferry binary (default: built from this checkout)")
	jsonOut := flag.String("json", "", "also write the results here as JSON")
	flag.Parse()
	dir, err := os.MkdirTemp("", "ferry-sbench-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	bin := *ferryBin
	if bin == "" {
		bin = filepath.Join(dir, "ferry")
		if out, err := exec.Command("go", "build", "-o", bin, "./cmd/ferry").CombinedOutput(); err != nil {
			log.Fatalf("build ferry: %v\n%s", err, out)
		}
	}
	mdir := filepath.Join(dir, "migrations")
	if err := os.Mkdir(mdir, 0o755); err != nil {
		log.Fatal(err)
	}
	for i := 1; i <= *n; i++ {
		src := fmt.Sprintf("-- +ferry up\nSELECT %d;\n", i)
		if err := os.WriteFile(filepath.Join(mdir, fmt.Sprintf("%06d_m.sql", i)), []byte(src), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	results := map[string]any{"n": *n, "connections": *conns}
	name := fmt.Sprintf("ferry_sbench_%d", os.Getpid())
	for _, kind := range []string{"postgres", "mysql", "sqlite"} {
		if *only != "" && *only != kind {
			continue
		}
		var url string
		drop := func() {}
		switch kind {
		case "sqlite":
			url = "sqlite:" + filepath.Join(dir, "bench.db")
		case "postgres", "mysql":
			admin := map[string]string{"postgres": *pgURL, "mysql": *myURL}[kind]
			if admin == "" {
				continue
			}
			u, err := database.Parse(admin)
			if err != nil {
				log.Fatal(err)
			}
			driver := map[string]string{"postgres": "pgx", "mysql": "mysql"}[kind]
			dsn := u.WithPassword()
			if kind == "mysql" {
				dsn = mysqlDSN(u)
			}
			db, err := sql.Open(driver, dsn)
			if err != nil {
				log.Fatal(err)
			}
			q := map[string]string{"postgres": `"`, "mysql": "`"}[kind]
			if _, err := db.Exec("CREATE DATABASE " + q + name + q); err != nil {
				log.Fatalf("%s: %v", kind, err)
			}
			url = u.WithDatabase(name).WithPassword()
			drop = func() { db.Exec("DROP DATABASE IF EXISTS " + q + name + q); db.Close() }
		}
		r, err := measure(bin, dir, kind, url, *dur, *conns, *sseClients)
		drop()
		if err != nil {
			log.Fatalf("%s: %v", kind, err)
		}
		results[kind] = r
	}
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(results, "", "  ")
		if err := os.WriteFile(*jsonOut, append(b, '\n'), 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

func measure(bin, dir, kind, url string, dur time.Duration, conns, sseClients int) (map[string]any, error) {
	start := time.Now()
	up := exec.Command(bin, "up", "--lint", "off")
	up.Dir, up.Env = dir, append(os.Environ(), "FERRY_DATABASE_URL="+url)
	if out, err := up.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ferry up: %v\n%s", err, tail(out))
	}
	fmt.Printf("%s: applied the migrations in %s\n", kind, time.Since(start).Round(time.Millisecond))
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	srv := exec.Command(bin, "serve", "--listen", addr, "--log-level", "error")
	srv.Dir, srv.Env = dir, append(os.Environ(), "FERRY_DATABASE_URL="+url)
	if err := srv.Start(); err != nil {
		return nil, err
	}
	defer func() { srv.Process.Signal(os.Interrupt); srv.Wait() }()
	base := "http://" + addr
	if err := waitFor(base + "/ping"); err != nil {
		return nil, err
	}
	out := map[string]any{}
	// The same service reading the database for every request (the
	// smallest max age), for the ratio.
	{
		uport, err := freePort()
		if err != nil {
			return nil, err
		}
		uaddr := "127.0.0.1:" + strconv.Itoa(uport)
		u := exec.Command(bin, "serve", "--listen", uaddr, "--log-level", "error", "--status-max-age", "1ns")
		u.Dir, u.Env = dir, append(os.Environ(), "FERRY_DATABASE_URL="+url)
		if err := u.Start(); err != nil {
			return nil, err
		}
		err = waitFor("http://" + uaddr + "/ping")
		var rps float64
		var p99 time.Duration
		if err == nil {
			rps, p99, err = runWrk("http://"+uaddr+"/db_schema_status", dur, conns)
		}
		u.Process.Signal(os.Interrupt)
		u.Wait()
		if err != nil {
			return nil, err
		}
		fmt.Printf("%s %-18s %8.0f requests/s  p99 %s  (a database read per request: --status-max-age 1ns)\n", kind, "/db_schema_status", rps, p99)
		out["/db_schema_status uncached"] = map[string]any{"requests_per_s": rps, "p99_ms": float64(p99.Microseconds()) / 1000}
	}
	for _, route := range []string{"/db_schema_status", "/v1/status", "/ping"} {
		rps, p99, err := runWrk(base+route, dur, conns)
		if err != nil {
			return nil, err
		}
		fmt.Printf("%s %-18s %8.0f requests/s  p99 %s\n", kind, route, rps, p99)
		out[route] = map[string]any{"requests_per_s": rps, "p99_ms": float64(p99.Microseconds()) / 1000}
	}
	if sseClients > 0 {
		extra, err := holdSSE(base, srv.Process.Pid, sseClients)
		if err != nil {
			return nil, err
		}
		fmt.Printf("%s %d SSE clients: %.1f MiB extra resident memory\n", kind, sseClients, extra)
		out["sse_clients"] = sseClients
		out["sse_extra_mib"] = extra
	}
	return out, nil
}

var (
	reqRe = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	p99Re = regexp.MustCompile(`(?m)^\s+99%\s+([\d.]+)(us|ms|s)`)
)

func runWrk(url string, dur time.Duration, conns int) (float64, time.Duration, error) {
	out, err := exec.Command("wrk", "-t2", "-c"+strconv.Itoa(conns), "-d"+dur.String(), "--latency", url).CombinedOutput()
	if err != nil {
		return 0, 0, fmt.Errorf("wrk (Debian package wrk): %v\n%s", err, out)
	}
	if strings.Contains(string(out), "Non-2xx") {
		return 0, 0, fmt.Errorf("wrk saw errors on %s:\n%s", url, out)
	}
	m, p := reqRe.FindSubmatch(out), p99Re.FindSubmatch(out)
	if m == nil || p == nil {
		return 0, 0, fmt.Errorf("cannot read wrk's output:\n%s", out)
	}
	rps, _ := strconv.ParseFloat(string(m[1]), 64)
	v, _ := strconv.ParseFloat(string(p[1]), 64)
	unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[string(p[2])]
	return rps, time.Duration(v * float64(unit)), nil
}

// holdSSE opens n event streams and returns how much the service's
// resident memory grew, in MiB.
func holdSSE(base string, pid, n int) (float64, error) {
	before, err := rss(pid)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tr := &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: n}
	cl := &http.Client{Transport: tr}
	ready := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/events", nil)
			resp, err := cl.Do(req)
			if err != nil {
				ready <- err
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 {
				ready <- fmt.Errorf("/v1/events: %s", resp.Status)
				return
			}
			br := bufio.NewReader(resp.Body)
			// The first event is the current status.
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					ready <- err
					return
				}
				if line == "\n" {
					break
				}
			}
			ready <- nil
			<-ctx.Done()
		}()
	}
	for i := 0; i < n; i++ {
		if err := <-ready; err != nil {
			return 0, err
		}
	}
	after, err := rss(pid)
	if err != nil {
		return 0, err
	}
	return float64(after-before) / (1 << 20), nil
}

func rss(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

func waitFor(url string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer in 30s", url)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func mysqlDSN(u *database.URL) string {
	// root@tcp(host:port)/ from mysql://root@host:port/
	raw := u.WithPassword()
	rest := strings.TrimPrefix(raw, "mysql://")
	userinfo, hostpath, _ := strings.Cut(rest, "@")
	host, _, _ := strings.Cut(hostpath, "/")
	return userinfo + "@tcp(" + host + ")/"
}

func tail(b []byte) string {
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
