//go:build gcs

package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"

	"cloud.google.com/go/storage"
	"google.golang.org/api/iterator"
)

// openGCS opens gs://bucket/prefix with Google's SDK. It takes no
// parameters. Credentials are Google's application default credentials:
// GOOGLE_APPLICATION_CREDENTIALS (a service account key file), gcloud's
// login, or the metadata server (GCE, GKE Workload Identity, Cloud Run).
// STORAGE_EMULATOR_HOST points it at an emulator.
func openGCS(ctx context.Context, u *url.URL) (bucket, error) {
	// The client outlives ctx, which is only for opening the store.
	client, err := storage.NewClient(context.WithoutCancel(ctx))
	if err != nil {
		return nil, err
	}
	return &gcsBucket{client: client, b: client.Bucket(u.Host), prefix: objectPrefix(u)}, nil
}

type gcsBucket struct {
	client *storage.Client
	b      *storage.BucketHandle
	prefix string
}

func gcsError(err error) error {
	if errors.Is(err, storage.ErrObjectNotExist) {
		return fmt.Errorf("%w: %w", ErrNotExist, err)
	}
	if errors.Is(err, storage.ErrBucketNotExist) {
		return fmt.Errorf("%w (create the bucket first, or check its name)", err)
	}
	return err
}

func (b *gcsBucket) newReader(ctx context.Context, key string) (io.ReadCloser, error) {
	r, err := b.b.Object(b.prefix + key).NewReader(ctx)
	if err != nil {
		return nil, gcsError(err)
	}
	return r, nil
}

// gcsWriter commits the object at Close; cancelling its context before
// that abandons the upload, leaving no object.
type gcsWriter struct {
	w      *storage.Writer
	cancel context.CancelFunc
}

func (b *gcsBucket) newWriter(ctx context.Context, key, contentType string) (objectWriter, error) {
	ctx, cancel := context.WithCancel(ctx)
	w := b.b.Object(b.prefix + key).NewWriter(ctx)
	w.ContentType = contentType
	return &gcsWriter{w: w, cancel: cancel}, nil
}

func (w *gcsWriter) Write(p []byte) (int, error) { return w.w.Write(p) }

func (w *gcsWriter) Close() error {
	defer w.cancel()
	return gcsError(w.w.Close())
}

func (w *gcsWriter) abort() {
	w.cancel()
	_ = w.w.Close()
}

func (b *gcsBucket) list(ctx context.Context, prefix string, dirs bool) ([]entry, error) {
	q := &storage.Query{Prefix: b.prefix + prefix}
	if dirs {
		q.Delimiter = "/"
	}
	_ = q.SetAttrSelection([]string{"Name"})
	it := b.b.Objects(ctx, q)
	var out []entry
	for {
		attrs, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return out, nil
		}
		if err != nil {
			return nil, gcsError(err)
		}
		if attrs.Prefix != "" {
			out = append(out, entry{key: attrs.Prefix[len(b.prefix):], isDir: true})
			continue
		}
		out = append(out, entry{key: attrs.Name[len(b.prefix):]})
	}
}

func (b *gcsBucket) exists(ctx context.Context, key string) (bool, error) {
	_, err := b.b.Object(b.prefix + key).Attrs(ctx)
	if errors.Is(err, storage.ErrObjectNotExist) {
		return false, nil
	}
	return err == nil, gcsError(err)
}

func (b *gcsBucket) remove(ctx context.Context, key string) error {
	err := b.b.Object(b.prefix + key).Delete(ctx)
	if errors.Is(err, storage.ErrObjectNotExist) {
		return nil
	}
	return gcsError(err)
}

func (b *gcsBucket) close() error { return b.client.Close() }
