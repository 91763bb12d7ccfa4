package store

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestStoresNotLinked: an object store left out of the build says which
// tag builds it in, and is not mistaken for a bad location.
func TestStoresNotLinked(t *testing.T) {
	for loc, tag := range map[string]string{"s3://bucket/p": "-tags s3", "gs://bucket/p": "-tags gcs", "azblob://container/p": "-tags azblob"} {
		_, err := Open(context.Background(), loc, "backup store")
		if !errors.Is(err, ErrDriverNotLinked) {
			continue // built in
		}
		if errors.Is(err, ErrInvalidLocation) || !strings.Contains(err.Error(), tag) {
			t.Errorf("%s: %v", loc, err)
		}
	}
}

// TestParamsChecked: a misspelt parameter is refused by every build,
// with or without the store, naming the parameters it takes.
func TestParamsChecked(t *testing.T) {
	for loc, want := range map[string]string{
		"s3://b?regoin=eu-west-1":      `s3:// takes no parameter "regoin" (it takes region, endpoint`,
		"gs://b?token=SeCrEt":          `gs:// takes no parameter "token"`,
		"azblob://c?endpiont=http://x": `takes no parameter "endpiont" (it takes endpoint)`,
	} {
		_, err := Open(context.Background(), loc, "backup store")
		if !errors.Is(err, ErrInvalidLocation) || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "SeCrEt") {
			t.Errorf("%s: %v", loc, err)
		}
	}
}
