//go:build nocloud

package main

// cloudStores says whether this build has the object-storage stores: a
// build with -tags nocloud keeps backups in directories only.
const cloudStores = false
