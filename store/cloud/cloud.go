// Package cloud registers the object-storage drivers of package store
// (backups and exports):
// s3:// (Amazon S3 and S3-compatible stores), gs:// (Google Cloud Storage)
// and azblob:// (Azure Blob Storage), through gocloud.dev/blob. Import it
// for its side effect where store.Open should accept those URLs:
//
//	import _ "github.com/ferrydb/ferry/store/cloud"
//
// It is a package of its own so that programs that only keep backups and exports
// in a local directory do not link three cloud SDKs. Credentials come from the
// environment, as each SDK reads them: AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_PROFILE (or an instance role);
// GOOGLE_APPLICATION_CREDENTIALS (or the metadata server);
// AZURE_STORAGE_ACCOUNT with AZURE_STORAGE_KEY, AZURE_STORAGE_SAS_TOKEN or
// an Azure identity (AZURE_CLIENT_ID, AZURE_TENANT_ID, ...).
package cloud

import (
	_ "gocloud.dev/blob/azureblob" // azblob://container
	_ "gocloud.dev/blob/gcsblob"   // gs://bucket
	_ "gocloud.dev/blob/s3blob"    // s3://bucket
)
