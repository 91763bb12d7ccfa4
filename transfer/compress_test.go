package transfer

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// eventRows is about n bytes of row lines like bench/transfer's events
// table (ids, a foreign key, a kind, an amount, a time, text with an MD5
// in it), as an export encodes them.
func eventRows(n int) []byte {
	kinds := []string{"signup", "login", "purchase", "refund", "logout"}
	var b []byte
	for seq := 1; len(b) < n; seq++ {
		sum := md5.Sum([]byte(fmt.Sprint(seq)))
		payload := fmt.Sprintf("order %d %s %s", seq, hex.EncodeToString(sum[:]), strings.Repeat(string(rune('a'+seq%26)), 20+seq%40))
		b = appendRow(b, []any{int64(seq), int64(1 + seq*7919%10000), kinds[seq%5], fmt.Sprintf("%.2f", float64(seq*104729%100000)/100),
			fmt.Sprintf("2026-01-%02d %02d:%02d:%02d.000000", 1+seq/86400%28, seq/3600%24, seq/60%60, seq%60), payload})
	}
	return b
}

// BenchmarkChunkCompression compares the chunk compressions (and zstd's
// fastest level, which ferry does not use) on one core, in the blocks the
// chunk writer hands its compressor; "ratio" is compressed/raw.
//
//	go test ./transfer -run '^$' -bench ChunkCompression
func BenchmarkChunkCompression(b *testing.B) {
	rows := eventRows(32 << 20)
	for _, c := range []struct {
		name string
		new  func(io.Writer) io.WriteCloser
	}{
		{"s2", func(w io.Writer) io.WriteCloser { return s2.NewWriter(w, s2.WriterConcurrency(1)) }},
		{"gzip-1", func(w io.Writer) io.WriteCloser { z, _ := gzip.NewWriterLevel(w, gzip.BestSpeed); return z }},
		{"zstd-fastest", func(w io.Writer) io.WriteCloser {
			z, _ := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
			return z
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			var out bytes.Buffer
			b.SetBytes(int64(len(rows)))
			for b.Loop() {
				out.Reset()
				w := c.new(&out)
				for i := 0; i < len(rows); i += blockSize {
					if _, err := w.Write(rows[i:min(len(rows), i+blockSize)]); err != nil {
						b.Fatal(err)
					}
				}
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(out.Len())/float64(len(rows)), "ratio")
		})
	}
}
