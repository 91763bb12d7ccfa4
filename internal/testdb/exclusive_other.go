//go:build !unix

package testdb

import "testing"

// Exclusive is a no-op where file locks are not available; run heavy
// tests with -p 1 there.
func Exclusive(testing.TB, string) {}
