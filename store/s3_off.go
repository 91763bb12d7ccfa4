//go:build !s3

package store

import (
	"context"
	"net/url"
)

func openS3(context.Context, *url.URL) (bucket, error) {
	return nil, notLinked("s3", "minio-go, its client, adds about 4 MB and 2 ms to every command's start-up, so it is built in only with the tag s3: go install -tags s3 github.com/ferrydb/ferry/cmd/ferry@latest (the ferry container image has it)")
}
