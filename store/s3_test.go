//go:build s3

package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// s3Server starts an S3-protocol server (gofakes3, in memory) with the
// bucket ferry-test, and points the AWS credential variables at a test
// key so that nothing looks for a machine role.
func s3Server(t *testing.T) (endpoint string, backend *s3mem.Backend) {
	t.Helper()
	backend = s3mem.New()
	if err := backend.CreateBucket("ferry-test"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(srv.Close)
	t.Setenv("AWS_ACCESS_KEY_ID", "ferrytest")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "ferrytestsecret")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ENDPOINT_URL", "")
	t.Setenv("AWS_ENDPOINT_URL_S3", "")
	return srv.URL, backend
}

// TestS3Store runs the store's contract against a real S3-protocol
// server, through the URL an operator writes.
func TestS3Store(t *testing.T) {
	endpoint, _ := s3Server(t)
	testContract(t, "s3://ferry-test/backups/app?endpoint="+endpoint+"&use_path_style=true")
}

// TestS3Endpoint: the endpoint may come from AWS_ENDPOINT_URL_S3, as
// the AWS tools read it, and the store's URL then names only the bucket.
func TestS3Endpoint(t *testing.T) {
	endpoint, backend := s3Server(t)
	t.Setenv("AWS_ENDPOINT_URL_S3", endpoint)
	ctx := context.Background()
	s, err := Open(ctx, "s3://ferry-test/p?use_path_style=true", "backup store")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.WriteAll(ctx, "x/manifest.json", []byte("{}"), "application/json"); err != nil {
		t.Fatal(err)
	}
	// The object is in the bucket under the URL's prefix.
	obj, err := backend.HeadObject("ferry-test", "p/x/manifest.json")
	if err != nil || obj.Size != 2 {
		t.Fatalf("object in the bucket: %+v %v", obj, err)
	}
}

// TestS3Multipart writes an object of several parts and reads it back;
// an aborted multipart object leaves nothing, and no upload in progress.
func TestS3Multipart(t *testing.T) {
	endpoint, backend := s3Server(t)
	ctx := context.Background()
	s, err := Open(ctx, "s3://ferry-test?endpoint="+endpoint+"&use_path_style=true", "export store")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	data := make([]byte, 2*s3PartSize+12345)
	rand.Read(data)
	w, err := s.Create(ctx, "big/part-00001", "application/octet-stream")
	if err != nil {
		t.Fatal(err)
	}
	// Odd-sized writes cross the part boundaries.
	for rest := data; len(rest) > 0; {
		n := min(len(rest), 1<<20+7)
		if _, err := w.Write(rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := s.OpenChecked(ctx, "big/part-00001", w.Size(), w.SHA256())
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes of %d: %v", len(got), len(data), err)
	}

	aborted, err := s.Create(ctx, "big/part-00002", "application/octet-stream")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := aborted.Write(data); err != nil {
		t.Fatal(err)
	}
	aborted.Abort()
	if ok, err := s.Exists(ctx, "big/part-00002"); ok || err != nil {
		t.Errorf("an aborted multipart object is visible (%v, %v)", ok, err)
	}
	uploads, err := s.bucket.(*s3Bucket).core.ListMultipartUploads(ctx, "ferry-test", "", "", "", "", 10)
	if err != nil || len(uploads.Uploads) != 0 {
		t.Errorf("uploads left after an abort: %+v %v", uploads.Uploads, err)
	}
	_ = backend
}

// TestS3Refuses: a misspelt parameter or a bad endpoint is a usage error
// naming the parameter, and does not show a secret; a missing bucket says
// to create it. (gofakes3 checks no signatures: the hints for refused
// credentials are not tested here.)
func TestS3Refuses(t *testing.T) {
	endpoint, _ := s3Server(t)
	ctx := context.Background()
	for loc, want := range map[string]string{
		"s3://b?regoin=eu-west-1":                         `no parameter "regoin"`,
		"s3://b?endpoint=ftp://x":                         "http or https",
		"s3://b?use_path_style=maybe":                     "not true or false",
		"s3:///prefix-without-bucket":                     "no bucket named",
		"s3://b?endpoint=http://h/p/ath":                  "not a host",
		"s3://b?disable_https=sometimes":                  "not true or false",
		"s3://k:SeCrEt@b?endpoint=http:/":                 "credentials do not belong",
		"s3://b?endpoint=https://h&disable_https=true":    "say one or the other",
		"s3://b?endpoint=http://AKIA:SeCrEt%2F2@h:9000/p": "not a host",
	} {
		_, err := Open(ctx, loc, "backup store")
		if !errors.Is(err, ErrInvalidLocation) || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "SeCrEt") || strings.Contains(err.Error(), "2@h") {
			t.Errorf("%s: %v, want %q", loc, err, want)
		}
	}
	s, err := Open(ctx, "s3://no-such-bucket?endpoint="+endpoint+"&use_path_style=true", "backup store")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.WriteAll(ctx, "x", []byte("x"), "text/plain"); err == nil || !strings.Contains(err.Error(), "create the bucket first") {
		t.Errorf("a missing bucket: %v", err)
	}
}
