//go:build s3

package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/ferrydb/ferry/internal/redact"
)

// openS3 opens s3://bucket/prefix through minio-go, which speaks to Amazon
// S3 and to the S3-compatible stores (MinIO, Cloudflare R2, Ceph RGW,
// Backblaze B2, ...). Parameters:
//
//	region=eu-west-1              else AWS_REGION, AWS_DEFAULT_REGION, or asked of the bucket
//	endpoint=https://host:9000    else AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, or Amazon S3
//	use_path_style=true           bucket in the path, not the host name (MinIO, Ceph)
//	disable_https=true            plain HTTP to an endpoint given without a scheme
//
// Credentials follow the AWS conventions, first found wins: the
// environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// AWS_SESSION_TOKEN); the shared files (AWS_PROFILE,
// AWS_SHARED_CREDENTIALS_FILE, AWS_CONFIG_FILE, with credential_process
// and SSO profiles); then the role of the machine, task or pod (EC2
// instance metadata, ECS task roles, EKS IRSA web identity and Pod
// Identity). With none, requests go unsigned, for public buckets.
func openS3(_ context.Context, u *url.URL) (bucket, error) {
	q := u.Query() // checked by checkParams
	secure := true
	if v := q.Get("disable_https"); v != "" {
		off, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("%w: disable_https=%q is not true or false", ErrInvalidLocation, v)
		}
		secure = !off
	}
	endpoint := q.Get("endpoint")
	if endpoint == "" {
		endpoint = firstEnv("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
	}
	host := "s3.amazonaws.com"
	if endpoint != "" {
		host = endpoint
		if scheme, rest, ok := strings.Cut(endpoint, "://"); ok {
			switch strings.ToLower(scheme) {
			case "https":
				if !secure {
					return nil, fmt.Errorf("%w: disable_https=true with an https endpoint: say one or the other", ErrInvalidLocation)
				}
			case "http":
				secure = false
			default:
				return nil, fmt.Errorf("%w: endpoint %s: the scheme must be http or https", ErrInvalidLocation, redact.URL(endpoint))
			}
			host = rest
		}
		host = strings.TrimRight(host, "/")
		if host == "" || strings.ContainsAny(host, "/?#@") {
			return nil, fmt.Errorf("%w: endpoint %s is not a host[:port] or an http(s) URL of one", ErrInvalidLocation, redact.URL(endpoint))
		}
	}
	lookup := minio.BucketLookupAuto
	if v := q.Get("use_path_style"); v != "" {
		on, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("%w: use_path_style=%q is not true or false", ErrInvalidLocation, v)
		}
		lookup = minio.BucketLookupDNS
		if on {
			lookup = minio.BucketLookupPath
		}
	}
	region := q.Get("region")
	if region == "" {
		region = firstEnv("AWS_REGION", "AWS_DEFAULT_REGION")
	}
	transport, err := minio.DefaultTransport(secure)
	if err != nil {
		return nil, err
	}
	creds := credentials.NewChainCredentials([]credentials.Provider{
		&credentials.EnvAWS{},
		&credentials.FileAWSCredentials{},
		&credentials.IAM{Client: &http.Client{Transport: transport, Timeout: 10 * time.Second}},
	})
	client, err := minio.New(host, &minio.Options{
		Creds:        creds,
		Secure:       secure,
		Region:       region,
		BucketLookup: lookup,
		Transport:    transport,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidLocation, err)
	}
	return &s3Bucket{core: minio.Core{Client: client}, creds: creds, name: u.Host, prefix: objectPrefix(u)}, nil
}

func firstEnv(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}

// s3Bucket is a bucket of S3, its keys under prefix.
type s3Bucket struct {
	core   minio.Core
	creds  *credentials.Credentials
	name   string
	prefix string
}

// wrap adds what to do to the errors an operator can act on.
func (b *s3Bucket) wrap(err error) error {
	var resp minio.ErrorResponse
	if !errors.As(err, &resp) {
		return err
	}
	switch resp.Code {
	case "NoSuchKey":
		return fmt.Errorf("%w: %w", ErrNotExist, err)
	case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken":
		if v, cerr := b.creds.GetWithContext(nil); cerr != nil || v.AccessKeyID == "" {
			// minio-go's chain goes unsigned when no provider finds
			// credentials, without saying why.
			return fmt.Errorf("%w (no credentials were found, so the request went unsigned: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE naming a profile of ~/.aws/credentials or ~/.aws/config, or give the machine, task or pod a role)", err)
		}
		return fmt.Errorf("%w (check the credentials, from AWS_ACCESS_KEY_ID, AWS_PROFILE or the machine's role, and the bucket's policy: ferry needs s3:ListBucket, s3:GetObject, s3:PutObject, s3:DeleteObject and s3:AbortMultipartUpload)", err)
	case "NoSuchBucket":
		return fmt.Errorf("%w (create the bucket first, or check its name and the region)", err)
	}
	return err
}

func (b *s3Bucket) newReader(ctx context.Context, key string) (io.ReadCloser, error) {
	r, _, _, err := b.core.GetObject(ctx, b.name, b.prefix+key, minio.GetObjectOptions{})
	if err != nil {
		return nil, b.wrap(err)
	}
	return r, nil
}

// s3PartSize is the size of the first parts of a multipart upload; it
// doubles every s3PartsPerSize parts, so that memory stays bounded by one
// part while an object can grow past S3's 10,000 parts of one size.
const (
	s3PartSize     = 8 << 20
	s3PartsPerSize = 1000
)

func (b *s3Bucket) newWriter(ctx context.Context, key, contentType string) (objectWriter, error) {
	return &s3Writer{ctx: ctx, b: b, key: b.prefix + key, opts: minio.PutObjectOptions{ContentType: contentType, DisableContentSha256: true}, partSize: s3PartSize}, nil
}

// s3Writer uploads an object of unknown size: one PUT if it fits in the
// first part, else a multipart upload that S3 assembles, atomically, only
// at CompleteMultipartUpload.
type s3Writer struct {
	ctx      context.Context
	b        *s3Bucket
	key      string
	opts     minio.PutObjectOptions
	buf      []byte
	partSize int
	uploadID string
	parts    []minio.CompletePart
	err      error
}

func (w *s3Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	n := 0
	for len(p) > 0 {
		// The buffer grows as written (a manifest of a few KiB takes a
		// few KiB), up to the part size, and is reused part after part.
		k := min(len(p), w.partSize-len(w.buf))
		w.buf = append(w.buf, p[:k]...)
		p = p[k:]
		n += k
		if len(w.buf) == w.partSize {
			if err := w.flushPart(); err != nil {
				w.err = err
				return n, err
			}
		}
	}
	return n, nil
}

func (w *s3Writer) flushPart() error {
	if w.uploadID == "" {
		id, err := w.b.core.NewMultipartUpload(w.ctx, w.b.name, w.key, w.opts)
		if err != nil {
			return w.b.wrap(err)
		}
		w.uploadID = id
	}
	n := len(w.parts) + 1
	part, err := w.b.core.PutObjectPart(w.ctx, w.b.name, w.key, w.uploadID, n, bytes.NewReader(w.buf), int64(len(w.buf)), minio.PutObjectPartOptions{Sha256Hex: sha256Hex(w.buf), DisableContentSha256: true})
	if err != nil {
		return w.b.wrap(err)
	}
	w.parts = append(w.parts, minio.CompletePart{PartNumber: n, ETag: part.ETag})
	if len(w.parts)%s3PartsPerSize == 0 {
		w.partSize *= 2
	}
	w.buf = w.buf[:0]
	return nil
}

// sha256Hex is the payload hash that signs a part. With it (and
// DisableContentSha256), minio-go signs the request with the hash instead
// of sending the body in aws-chunked encoding over plain HTTP, which some
// S3-compatible servers store as it came, chunk signatures and all.
func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func (w *s3Writer) Close() error {
	if w.err != nil {
		w.abort()
		return w.err
	}
	if w.uploadID == "" {
		_, err := w.b.core.PutObject(w.ctx, w.b.name, w.key, bytes.NewReader(w.buf), int64(len(w.buf)), "", sha256Hex(w.buf), w.opts)
		return w.b.wrap(err)
	}
	if len(w.buf) > 0 {
		if err := w.flushPart(); err != nil {
			w.abort()
			return err
		}
	}
	if _, err := w.b.core.CompleteMultipartUpload(w.ctx, w.b.name, w.key, w.uploadID, w.parts, w.opts); err != nil {
		w.abort()
		return w.b.wrap(err)
	}
	w.uploadID = "" // complete: nothing left to abort
	return nil
}

func (w *s3Writer) abort() {
	w.buf = nil
	if w.uploadID == "" {
		return
	}
	// The parts of an upload never completed are kept, and billed, until
	// it is aborted: abort even when ctx has ended.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(w.ctx), 30*time.Second)
	defer cancel()
	_ = w.b.core.AbortMultipartUpload(ctx, w.b.name, w.key, w.uploadID)
	w.uploadID = ""
}

func (b *s3Bucket) list(ctx context.Context, prefix string, dirs bool) ([]entry, error) {
	delimiter := ""
	if dirs {
		delimiter = "/"
	}
	var out []entry
	for obj := range b.core.Client.ListObjects(ctx, b.name, minio.ListObjectsOptions{Prefix: b.prefix + prefix, Recursive: !dirs}) {
		if obj.Err != nil {
			return nil, b.wrap(obj.Err)
		}
		key := strings.TrimPrefix(obj.Key, b.prefix)
		out = append(out, entry{key: key, isDir: delimiter != "" && strings.HasSuffix(key, "/")})
	}
	return out, nil
}

func (b *s3Bucket) exists(ctx context.Context, key string) (bool, error) {
	_, err := b.core.StatObject(ctx, b.name, b.prefix+key, minio.StatObjectOptions{})
	if err == nil {
		return true, nil
	}
	err = b.wrap(err)
	if errors.Is(err, ErrNotExist) {
		return false, nil
	}
	return false, err
}

func (b *s3Bucket) remove(ctx context.Context, key string) error {
	// S3 answers a DELETE of a missing key with success.
	return b.wrap(b.core.RemoveObject(ctx, b.name, b.prefix+key, minio.RemoveObjectOptions{}))
}

func (b *s3Bucket) close() error { return nil }
