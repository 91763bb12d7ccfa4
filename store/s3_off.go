//go:build nocloud

package store

import (
	"context"
	"net/url"
)

func openS3(context.Context, *url.URL) (bucket, error) {
	return nil, notLinked("s3", "this ferry was built with -tags nocloud, which leaves out object storage; build it without that tag: go install github.com/ferrydb/ferry/cmd/ferry@latest")
}
