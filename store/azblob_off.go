//go:build !azblob

package store

import (
	"context"
	"net/url"
)

func openAzblob(context.Context, *url.URL) (bucket, error) {
	return nil, notLinked("azblob", "Azure's SDK adds about 4 MB, so it is built in only with the tag azblob: go install -tags azblob github.com/ferrydb/ferry/cmd/ferry@latest")
}
