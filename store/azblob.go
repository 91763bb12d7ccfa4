//go:build azblob

package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/ferrydb/ferry/internal/redact"
)

// openAzblob opens azblob://container/prefix with Azure's SDK. The
// account is AZURE_STORAGE_ACCOUNT; the service URL is
// https://ACCOUNT.blob.core.windows.net unless the parameter endpoint
// (or AZURE_STORAGE_ENDPOINT) names another, such as Azurite's. The
// credential is, first found: AZURE_STORAGE_CONNECTION_STRING,
// AZURE_STORAGE_KEY (shared key), AZURE_STORAGE_SAS_TOKEN, else Azure's
// default credential chain (AZURE_CLIENT_ID/AZURE_TENANT_ID with a secret,
// certificate or workload identity, managed identity, the az CLI).
func openAzblob(_ context.Context, u *url.URL) (bucket, error) {
	q := u.Query() // checked by checkParams
	var client *azblob.Client
	var err error
	if cs := os.Getenv("AZURE_STORAGE_CONNECTION_STRING"); cs != "" {
		client, err = azblob.NewClientFromConnectionString(cs, nil)
	} else {
		account := os.Getenv("AZURE_STORAGE_ACCOUNT")
		endpoint := q.Get("endpoint")
		if endpoint == "" {
			endpoint = os.Getenv("AZURE_STORAGE_ENDPOINT")
		}
		if endpoint == "" {
			if account == "" {
				return nil, fmt.Errorf("set AZURE_STORAGE_ACCOUNT (or AZURE_STORAGE_CONNECTION_STRING, or the parameter endpoint) to name the storage account")
			}
			endpoint = "https://" + account + ".blob.core.windows.net/"
		}
		if !strings.HasSuffix(endpoint, "/") {
			endpoint += "/"
		}
		switch {
		case os.Getenv("AZURE_STORAGE_KEY") != "":
			var cred *azblob.SharedKeyCredential
			cred, err = azblob.NewSharedKeyCredential(account, os.Getenv("AZURE_STORAGE_KEY"))
			if err == nil {
				client, err = azblob.NewClientWithSharedKeyCredential(endpoint, cred, nil)
			}
		case os.Getenv("AZURE_STORAGE_SAS_TOKEN") != "":
			client, err = azblob.NewClientWithNoCredential(endpoint+"?"+strings.TrimPrefix(os.Getenv("AZURE_STORAGE_SAS_TOKEN"), "?"), nil)
		default:
			var cred azcore.TokenCredential
			cred, err = azidentity.NewDefaultAzureCredential(nil)
			if err == nil {
				client, err = azblob.NewClient(endpoint, cred, nil)
			}
		}
	}
	if err != nil {
		return nil, err
	}
	return &azBucket{c: client.ServiceClient().NewContainerClient(u.Host), prefix: objectPrefix(u), secrets: azSecrets()}, nil
}

type azBucket struct {
	c       *container.Client
	prefix  string
	secrets []string // the SAS token and key, as they may appear in errors
}

// azSecrets are the forms in which a SAS token or key may be quoted in
// an error: whole, and each signature as sent and decoded.
func azSecrets() []string {
	var out []string
	for _, name := range []string{"AZURE_STORAGE_SAS_TOKEN", "AZURE_STORAGE_KEY", "AZURE_STORAGE_CONNECTION_STRING"} {
		v := os.Getenv(name)
		if v == "" {
			continue
		}
		out = append(out, v)
		for _, part := range strings.FieldsFunc(v, func(r rune) bool { return r == '&' || r == ';' || r == '?' }) {
			k, val, ok := strings.Cut(part, "=")
			if !ok || (k != "sig" && k != "AccountKey" && k != "SharedAccessSignature") {
				continue
			}
			out = append(out, val, url.QueryEscape(val))
			if dec, err := url.QueryUnescape(val); err == nil {
				out = append(out, dec, url.QueryEscape(dec))
			}
		}
	}
	return out
}

func (b *azBucket) wrap(err error) error {
	if err == nil {
		return nil
	}
	// Transport and response errors quote the request's URL, whose query
	// holds a SAS token's signature.
	err = redact.Error(err, b.secrets...)
	if bloberror.HasCode(err, bloberror.BlobNotFound) {
		return fmt.Errorf("%w: %w", ErrNotExist, err)
	}
	if bloberror.HasCode(err, bloberror.ContainerNotFound) {
		return fmt.Errorf("%w (create the container first, or check its name)", err)
	}
	return err
}

func (b *azBucket) newReader(ctx context.Context, key string) (io.ReadCloser, error) {
	resp, err := b.c.NewBlockBlobClient(b.prefix+key).DownloadStream(ctx, nil)
	if err != nil {
		return nil, b.wrap(err)
	}
	return resp.Body, nil
}

func (b *azBucket) newWriter(ctx context.Context, key, contentType string) (objectWriter, error) {
	bb := b.c.NewBlockBlobClient(b.prefix + key)
	// UploadStream commits the blob's block list only when the body
	// ends: an upload cancelled before that leaves no blob.
	return newPipeWriter(ctx, func(ctx context.Context, body io.Reader) error {
		// 8 MiB blocks: a blob holds 50,000, so up to 390 GiB (the
		// default 1 MiB stops at 48 GiB); memory is one block.
		_, err := bb.UploadStream(ctx, body, &blockblob.UploadStreamOptions{BlockSize: 8 << 20, Concurrency: 1, HTTPHeaders: &blob.HTTPHeaders{BlobContentType: &contentType}})
		return b.wrap(err)
	}), nil
}

func (b *azBucket) list(ctx context.Context, prefix string, dirs bool) ([]entry, error) {
	full := b.prefix + prefix
	var out []entry
	if dirs {
		pager := b.c.NewListBlobsHierarchyPager("/", &container.ListBlobsHierarchyOptions{Prefix: &full})
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				return nil, b.wrap(err)
			}
			for _, p := range page.Segment.BlobPrefixes {
				out = append(out, entry{key: strings.TrimPrefix(*p.Name, b.prefix), isDir: true})
			}
			for _, it := range page.Segment.BlobItems {
				out = append(out, entry{key: strings.TrimPrefix(*it.Name, b.prefix)})
			}
		}
	} else {
		pager := b.c.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: &full})
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				return nil, b.wrap(err)
			}
			for _, it := range page.Segment.BlobItems {
				out = append(out, entry{key: strings.TrimPrefix(*it.Name, b.prefix)})
			}
		}
	}
	return out, nil
}

func (b *azBucket) exists(ctx context.Context, key string) (bool, error) {
	_, err := b.c.NewBlobClient(b.prefix+key).GetProperties(ctx, nil)
	if bloberror.HasCode(err, bloberror.BlobNotFound) {
		return false, nil
	}
	var re *azcore.ResponseError
	if errors.As(err, &re) && re.StatusCode == 404 {
		return false, nil
	}
	return err == nil, b.wrap(err)
}

func (b *azBucket) remove(ctx context.Context, key string) error {
	_, err := b.c.NewBlobClient(b.prefix+key).Delete(ctx, nil)
	if bloberror.HasCode(err, bloberror.BlobNotFound) {
		return nil
	}
	return b.wrap(err)
}

func (b *azBucket) close() error { return nil }
