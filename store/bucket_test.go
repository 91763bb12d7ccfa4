package store

import (
	"context"
	"errors"
	"io"
	"testing"
)

// TestPipeWriter: an upload's error comes back from Close; Close and
// abort may follow each other in any order, more than once, without
// blocking; abort cancels an upload that is still reading.
func TestPipeWriter(t *testing.T) {
	ctx := context.Background()
	failed := errors.New("ContainerNotFound")
	w := newPipeWriter(ctx, func(ctx context.Context, body io.Reader) error {
		io.Copy(io.Discard, body)
		return failed
	})
	w.Write([]byte("x"))
	if err := w.Close(); !errors.Is(err, failed) {
		t.Fatalf("Close: %v", err)
	}
	w.abort() // as a caller does with what failed to close
	if err := w.Close(); !errors.Is(err, failed) {
		t.Fatalf("Close again: %v", err)
	}

	var got []byte
	ok := newPipeWriter(ctx, func(ctx context.Context, body io.Reader) error {
		var err error
		got, err = io.ReadAll(body)
		return err
	})
	ok.Write([]byte("hello"))
	if err := ok.Close(); err != nil || string(got) != "hello" {
		t.Fatalf("upload read %q: %v", got, err)
	}

	cancelled := make(chan error, 1)
	aborted := newPipeWriter(ctx, func(ctx context.Context, body io.Reader) error {
		_, err := io.ReadAll(body)
		cancelled <- ctx.Err()
		return err
	})
	aborted.Write([]byte("partial"))
	aborted.abort()
	if err := <-cancelled; !errors.Is(err, context.Canceled) {
		t.Errorf("the upload's context after abort: %v", err)
	}
	aborted.abort()
}
