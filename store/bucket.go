package store

import (
	"context"
	"io"
)

// bucket is what a Store needs of the place that holds its objects: a
// directory (dirBucket), an S3 bucket (s3.go), a Google Cloud Storage
// bucket (gcs.go) or an Azure Blob Storage container (azblob.go). Keys are
// slash-separated and relative to the store's prefix.
type bucket interface {
	// newReader opens object key; a missing object is an error wrapping
	// ErrNotExist.
	newReader(ctx context.Context, key string) (io.ReadCloser, error)
	// newWriter starts writing object key. The object is visible, whole,
	// only after the writer's Close; abort (or ctx ending before Close)
	// leaves no object and keeps any older one.
	newWriter(ctx context.Context, key, contentType string) (objectWriter, error)
	// list returns the entries under prefix in lexical order of key. With
	// dirs, the keys below a further "/" are folded into one entry per
	// "directory" (its key ending with "/").
	list(ctx context.Context, prefix string, dirs bool) ([]entry, error)
	// exists says whether object key exists.
	exists(ctx context.Context, key string) (bool, error)
	// remove deletes object key; a missing object is not an error.
	remove(ctx context.Context, key string) error
	// close releases the bucket's resources.
	close() error
}

// objectWriter streams one object into a bucket.
type objectWriter interface {
	io.Writer
	// Close commits the object.
	Close() error
	// abort discards what was written.
	abort()
}

// entry is one key a listing returned.
type entry struct {
	key   string
	isDir bool
}

// pipeWriter turns an upload function that reads its body from an
// io.Reader into an objectWriter: the upload runs in a goroutine reading
// from a pipe, Close waits for it, and abort cancels it, so that a store
// that commits an object only when its upload completes never sees the
// aborted one complete.
//
// Close and abort may be called in any order, and more than once (a
// caller aborts what failed to close): each waits for the upload and
// returns.
type pipeWriter struct {
	pw     *io.PipeWriter
	cancel context.CancelFunc
	done   chan struct{} // closed when the upload has returned
	err    error         // the upload's result, set before done is closed
}

func newPipeWriter(ctx context.Context, upload func(ctx context.Context, body io.Reader) error) *pipeWriter {
	ctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	w := &pipeWriter{pw: pw, cancel: cancel, done: make(chan struct{})}
	go func() {
		err := upload(ctx, pr)
		// Unblock a Write the upload did not read, whatever happened.
		if err != nil {
			pr.CloseWithError(err)
		} else {
			pr.Close()
		}
		w.err = err
		close(w.done)
	}()
	return w
}

func (w *pipeWriter) Write(p []byte) (int, error) { return w.pw.Write(p) }

func (w *pipeWriter) Close() error {
	w.pw.Close()
	<-w.done
	w.cancel()
	return w.err
}

func (w *pipeWriter) abort() {
	w.cancel()
	w.pw.CloseWithError(context.Canceled)
	<-w.done
}
