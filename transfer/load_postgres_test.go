package transfer

import (
	"strings"
	"testing"
)

func TestAppendEscaped(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"plain text", "plain text"},
		{"a\tb\nc\\d\re\x00f", `a\tb\nc\\d\re\0f`},
		{"\\\\", `\\\\`},
		{"\nmiddle\n", `\nmiddle\n`},
		{"é\t日本\r", `é\t日本\r`},
		{"\x01\x1f\"'", "\x01\x1f\"'"}, // only the format's own escapes
	} {
		if got := string(appendEscaped([]byte("<"), c.in)); got != "<"+c.want {
			t.Errorf("appendEscaped(%q) = %q, want %q", c.in, got, "<"+c.want)
		}
		if got := string(appendEscaped(nil, []byte(c.in))); got != c.want {
			t.Errorf("appendEscaped([]byte %q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// BenchmarkAppendEscaped: a text value like most (no escapes), and one
// with an escape every 40 bytes.
func BenchmarkAppendEscaped(b *testing.B) {
	for _, c := range []struct{ name, s string }{
		{"plain", strings.Repeat("0123456789abcdef", 8)},
		{"escapes", strings.Repeat("0123456789abcdef0123456789abcdef012345\t\n", 3)},
	} {
		b.Run(c.name, func(b *testing.B) {
			buf := make([]byte, 0, 1024)
			b.SetBytes(int64(len(c.s)))
			for b.Loop() {
				buf = appendEscaped(buf[:0], c.s)
			}
		})
	}
}
