//go:build !gcs

package store

import (
	"context"
	"net/url"
)

func openGCS(context.Context, *url.URL) (bucket, error) {
	return nil, notLinked("gs", "Google Cloud Storage's SDK adds about 34 MB (gRPC, OpenTelemetry), so it is built in only with the tag gcs: go install -tags gcs github.com/ferrydb/ferry/cmd/ferry@latest")
}
