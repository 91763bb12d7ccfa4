package transfer

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
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

// TestPGDetail: a load error carries what PostgreSQL says of the row.
func TestPGDetail(t *testing.T) {
	pe := &pgconn.PgError{Message: `insert or update on table "runs" violates foreign key constraint "runs_user_id_fkey"`, Code: "23503",
		Detail: `Key (user_id)=(99) is not present in table "users".`, Where: "COPY runs, line 2"}
	err := pgDetail(fmt.Errorf("copy: %w", pe))
	if !errors.Is(err, pe) || !strings.HasSuffix(err.Error(), `: Key (user_id)=(99) is not present in table "users".; at COPY runs, line 2`) {
		t.Errorf("pgDetail: %v", err)
	}
	plain := errors.New("no detail")
	if pgDetail(plain) != plain {
		t.Errorf("pgDetail changed an error that is not PostgreSQL's")
	}
}
