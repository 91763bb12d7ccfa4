//go:build !gcs && !azblob

package store

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestOtherStoresNotLinked: gs:// and azblob:// in a build without their
// tags say which tag builds them in.
func TestOtherStoresNotLinked(t *testing.T) {
	for loc, tag := range map[string]string{"gs://bucket/p": "-tags gcs", "azblob://container/p": "-tags azblob"} {
		_, err := Open(context.Background(), loc, "backup store")
		if !errors.Is(err, ErrDriverNotLinked) || errors.Is(err, ErrInvalidLocation) || !strings.Contains(err.Error(), tag) {
			t.Errorf("%s: %v", loc, err)
		}
	}
}
