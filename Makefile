# Convenience targets; the README's commands work without make.
# Database servers: FERRY_TEST_POSTGRES_URL and FERRY_TEST_MYSQL_URL, or the
# local defaults (postgres://postgres@127.0.0.1:5432/postgres,
# mysql://root@127.0.0.1:3306/).
TEST_ENV = FERRY_TEST_POSTGRES_URL=$${FERRY_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres} \
           FERRY_TEST_MYSQL_URL=$${FERRY_TEST_MYSQL_URL:-mysql://root@127.0.0.1:3306/} \
           FERRY_TEST_REQUIRE_DB=1
BENCH_FLAGS ?=

.PHONY: test ci reliability bench bench-quick

# The README's test command (SQLite always; servers when their URLs are set).
test:
	go test ./...

# What CI runs: servers started if needed, gofmt, vet, go test -race, the reliability suite.
ci:
	.ci/run

# Fault injection against real ferry processes on every database (docs/reliability.md).
reliability:
	$(TEST_ENV) FERRY_RELIABILITY_REPORT=$${FERRY_RELIABILITY_REPORT:-reliability-report.json} \
		go test -tags reliability -count=1 -timeout 60m -v ./internal/reliability/

# Benchmarks run on demand, never in CI (docs/performance.md). The whole
# comparison: the table on stdout and in bench/results/latest.md, raw numbers
# in bench/results/latest.json, and ferry's CPU profiles with the server
# counters of every tool (the -profile pass) in bench/results/raw/profiles.
bench:
	go run ./bench/compare -json bench/results/latest.json -markdown bench/results/latest.md -profile bench/results/raw/profiles $(BENCH_FLAGS)

# N=100 only, 3 runs: about 30 s, for checking a change. Results go to
# bench/results/raw/ (not committed).
bench-quick:
	mkdir -p bench/results/raw
	go run ./bench/compare -n 100 -runs 3 -concurrent-runs 1 -windows 1 -json bench/results/raw/quick.json $(BENCH_FLAGS)
