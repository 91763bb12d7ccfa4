# syntax=docker/dockerfile:1
#
# ferry's container images. Build from the repository's root:
#
#   docker build -t ghcr.io/ferrydb/ferry .                    # the default: distroless, static, non-root
#   docker build --target tools -t ghcr.io/ferrydb/ferry:tools .
#                                                               # Debian with pg_dump/pg_restore and
#                                                               # mariadb-dump/mariadb, for `ferry backup`
#                                                               # and `ferry up --backup`
#
# Build arguments: VERSION (what `ferry --version` prints; default dev),
# GO_TAGS (Go build tags, comma-separated, as for `go install -tags`: the
# object stores for backups and exports; default s3, and s3,gcs,azblob adds
# Google Cloud Storage and Azure Blob; see docs/backups.md), PG_MAJOR (tools target: the
# PostgreSQL client tools' major version, default 17; pg_dump must be at
# least the server's major version).
#
# Both images run as the non-root user 65532, in /app, with ferry as the
# entry point. ferry looks for its migrations in ./migrations and for an
# optional ./ferry.yaml, that is /app/migrations and /app/ferry.yaml.
#
# A service ships its migrations in an image of its own, built FROM ferry:
#
#   FROM ghcr.io/ferrydb/ferry:v1 AS migrations
#   COPY migrations /app/migrations
#   COPY ferry.yaml /app/ferry.yaml        # optional: the release manifest, lint settings
#
# and runs it with the database in FERRY_DATABASE_URL (from a Secret):
#
#   docker run --rm -e FERRY_DATABASE_URL example.com/greeter-migrations:v2 up
#
# Set FERRY_DATABASE_URL: the default database, the SQLite file ./ferry.db,
# would be /app/ferry.db, and /app is not writable by the image's user (nor
# should it be: a read-only root file system is the norm in Kubernetes). For
# SQLite, mount a volume and point at it: sqlite:///data/app.db.
#
# Kubernetes manifests that use these images (a migration Job per release,
# `ferry wait` init containers, the contract Job, `ferry serve`) are in
# examples/kubernetes; docs/kubernetes.md walks through a deploy.
#
# cmd/ferry/dockerfile_test.go runs this file's `go build` line as written
# and checks that the binary is static; keep that line's shape.

ARG GO_VERSION=1.26

# ---- build: a static binary (pure Go, no cgo) --------------------------------
FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
ARG GO_TAGS=s3
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -tags="${GO_TAGS}" -ldflags="-s -w -X main.version=${VERSION}" -o /out/ferry ./cmd/ferry

# ---- tools: ferry plus the database client tools that backups need ----------
# pg_dump and pg_restore come from the PostgreSQL project's own repository
# (apt.postgresql.org), because Debian 12's are version 15 and ferry refuses
# a pg_dump older than the server. mariadb-dump and mariadb (mysqldump and
# mysql too) are Debian's MariaDB 10.11 client: for MariaDB 11 servers, or
# for MySQL servers (a MariaDB client works with a warning), install the
# server's own client in an image of your own.
FROM debian:bookworm-slim AS tools
ARG PG_MAJOR=17
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates postgresql-common; \
    /usr/share/postgresql-common/pgdg/apt.postgresql.org.sh -y; \
    apt-get install -y --no-install-recommends "postgresql-client-${PG_MAJOR}" mariadb-client; \
    rm -rf /var/lib/apt/lists/*; \
    groupadd --gid 65532 nonroot; \
    useradd --uid 65532 --gid 65532 --home-dir /home/nonroot --create-home --shell /usr/sbin/nologin nonroot
# The client of PG_MAJOR first in PATH (Debian's /usr/bin/pg_dump is a
# wrapper that picks a version per cluster).
ENV PATH=/usr/lib/postgresql/${PG_MAJOR}/bin:${PATH}
COPY --from=build /out/ferry /usr/local/bin/ferry
WORKDIR /app
USER 65532:65532
EXPOSE 8082
ENTRYPOINT ["/usr/local/bin/ferry"]

# ---- the default image: distroless, static, non-root -------------------------
# CA certificates and time zone data included; no shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot AS ferry
COPY --from=build /out/ferry /usr/local/bin/ferry
WORKDIR /app
USER 65532:65532
EXPOSE 8082
ENTRYPOINT ["/usr/local/bin/ferry"]
