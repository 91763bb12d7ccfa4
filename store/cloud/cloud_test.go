package cloud_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/store"
	_ "github.com/ferrydb/ferry/store/cloud"
)

// TestDriversRegistered: with this package imported, s3://, gs:// and
// azblob:// store URLs reach their gocloud drivers (which may still want
// credentials from the environment; nothing here goes to the network).
func TestDriversRegistered(t *testing.T) {
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AZURE_STORAGE_ACCOUNT", "ferrytest")
	t.Setenv("AZURE_STORAGE_KEY", "ZmVycnl0ZXN0a2V5")
	for _, u := range []string{"s3://ferry-test-bucket/prefix", "gs://ferry-test-bucket/prefix", "azblob://ferry-test-container"} {
		s, err := store.Open(context.Background(), u, "backup store")
		if err != nil {
			if strings.Contains(err.Error(), "not linked") || strings.Contains(err.Error(), "unsupported scheme") {
				t.Errorf("%s: %v", u, err)
			}
			continue
		}
		if s.String() != u {
			t.Errorf("%s shown as %s", u, s)
		}
		s.Close()
	}
}
