//go:build !nocloud

package main

// The s3://, gs:// and azblob:// backup stores. Their SDKs add about 45 MB
// to the binary and 9 ms to every command's start-up; build with
// -tags nocloud for a ferry that keeps backups in directories only.
import _ "github.com/ferrydb/ferry/store/cloud"

// cloudStores says whether this build has the object-storage stores.
const cloudStores = true
