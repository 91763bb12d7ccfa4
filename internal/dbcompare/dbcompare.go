// Package dbcompare prints a database's schema with the database's own
// tools and checksums its tables, so that tests can assert that two
// databases (an original and its restored copy) are the same.
package dbcompare

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/ferrydb/ferry/database"
)

// restrictLine matches pg_dump's per-dump random \restrict keys.
var restrictLine = regexp.MustCompile(`(?m)^\\(un)?restrict .*$`)

// Schema returns db's schema as its tools print it: pg_dump --schema-only,
// mysqldump --no-data (with routines, triggers and events), or the rows of
// sqlite_master.
func Schema(ctx context.Context, db *database.DB) (string, error) {
	u := db.URL
	switch u.Kind {
	case database.Postgres:
		cmd := exec.CommandContext(ctx, "pg_dump", "--schema-only", "--no-password")
		cmd.Env = append(os.Environ(), "PGHOST="+u.Host, "PGPORT="+u.Port, "PGUSER="+u.User, "PGDATABASE="+u.Database, "PGPASSWORD="+u.Password())
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("pg_dump --schema-only: %w", err)
		}
		return restrictLine.ReplaceAllString(string(out), ""), nil
	case database.MySQL:
		dir, err := os.MkdirTemp("", "dbcompare-")
		if err != nil {
			return "", err
		}
		defer os.RemoveAll(dir)
		cnf := filepath.Join(dir, "my.cnf")
		body := fmt.Sprintf("[client]\nuser=%q\npassword=%q\nhost=%q\nport=%s\nprotocol=TCP\n", u.User, u.Password(), u.Host, u.Port)
		if err := os.WriteFile(cnf, []byte(body), 0o600); err != nil {
			return "", err
		}
		out, err := exec.CommandContext(ctx, "mysqldump", "--defaults-extra-file="+cnf, "--no-data", "--skip-dump-date", "--skip-comments",
			"--routines", "--events", "--triggers", u.Database).Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return "", fmt.Errorf("mysqldump --no-data: %w: %s", err, bytes.TrimSpace(ee.Stderr))
			}
			return "", fmt.Errorf("mysqldump --no-data: %w", err)
		}
		return string(out), nil
	}
	rows, err := db.QueryContext(ctx, "SELECT type || ' ' || name || ' ' || tbl_name || ': ' || coalesce(sql, '') FROM sqlite_master ORDER BY type, name")
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return "", err
		}
		b.WriteString(s + "\n")
	}
	return b.String(), rows.Err()
}

// Tables returns the base tables of db, schema-qualified and quoted, keyed
// by their display name.
func Tables(ctx context.Context, db *database.DB) (map[string]string, error) {
	var q string
	switch db.URL.Kind {
	case database.Postgres:
		q = `SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'`
	case database.MySQL:
		q = "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE'"
	default:
		q = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
	}
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		quoted := db.Dialect.QuoteIdent(n)
		if i := strings.IndexByte(n, '.'); i >= 0 && db.URL.Kind == database.Postgres {
			quoted = db.Dialect.QuoteIdent(n[:i]) + "." + db.Dialect.QuoteIdent(n[i+1:])
		}
		out[n] = quoted
	}
	return out, rows.Err()
}

// Checksums returns, for every base table of db except those named in
// skip (by bare name), its row count and a sha256 of its rows (each row's
// values printed, rows sorted).
func Checksums(ctx context.Context, db *database.DB, skip ...string) (map[string]string, error) {
	tables, err := Tables(ctx, db)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for name, quoted := range tables {
		bare := name[strings.LastIndexByte(name, '.')+1:]
		skipped := false
		for _, s := range skip {
			skipped = skipped || s == bare
		}
		if skipped {
			continue
		}
		sum, err := RowsChecksum(ctx, db, "SELECT * FROM "+quoted)
		if err != nil {
			return nil, err
		}
		out[name] = sum
	}
	return out, nil
}

// RowsChecksum returns the row count and a sha256 of the rows of query.
func RowsChecksum(ctx context.Context, db *database.DB, query string) (string, error) {
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		return "", fmt.Errorf("%s: %w", query, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return "", err
	}
	var lines []string
	for rows.Next() {
		vals := make([]sql.RawBytes, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return "", err
		}
		var b bytes.Buffer
		for _, v := range vals {
			if v == nil {
				b.WriteString("NULL|")
			} else {
				fmt.Fprintf(&b, "%q|", v)
			}
		}
		lines = append(lines, b.String())
	}
	if err := rows.Err(); err != nil {
		return "", err
	}
	sort.Strings(lines)
	h := sha256.Sum256([]byte(strings.Join(lines, "\n")))
	return fmt.Sprintf("%d rows %s", len(lines), hex.EncodeToString(h[:8])), nil
}
