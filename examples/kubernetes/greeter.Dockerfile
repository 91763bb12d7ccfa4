# syntax=docker/dockerfile:1
#
# The images of the example in this directory: the greeter service of
# docs/releases.md, release v2. Build from the repository's root (after
# `docker build -t ghcr.io/ferrydb/ferry .`, or with a released image):
#
#   docker build -f examples/kubernetes/greeter.Dockerfile --target migrations -t example.com/greeter-migrations:v2 .
#   docker build -f examples/kubernetes/greeter.Dockerfile --target app -t example.com/greeter:v2 .
#
# In a service's own repository the migrations image is just:
#
#   FROM ghcr.io/ferrydb/ferry:v1
#   COPY migrations /app/migrations
#   COPY ferry.yaml /app/ferry.yaml
#
# migrations: ferry, the migration files and ferry.yaml (which holds the
# release manifest). The migration Jobs, the `ferry wait` init container and
# `ferry serve` run it.
#
# app: the same plus the service's binary, started by `ferry launch`, which
# registers each pod in the fleet registry so that the contract migration
# waits until no v1 pod is left. Its path is the release's command in
# ferry.yaml (bin/greeter-v2), relative to the working directory /app.

ARG FERRY_IMAGE=ghcr.io/ferrydb/ferry:latest
ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/ ./examples/greeter/cmd/greeter-v2

FROM ${FERRY_IMAGE} AS migrations
COPY examples/greeter/migrations /app/migrations
COPY examples/greeter/ferry.yaml /app/ferry.yaml

FROM migrations AS app
COPY --from=build /out/greeter-v2 /app/bin/greeter-v2
