package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferrydb/ferry/migrate"
)

const exampleMigration = `-- +ferry up
-- An example migration. ferry runs the statements under "up" in order, in
-- one transaction where the database allows it, and records the version in
-- the history table. "down" undoes them (ferry down).
CREATE TABLE example (
    id INTEGER PRIMARY KEY,
    name VARCHAR(100) NOT NULL
);

-- +ferry down
DROP TABLE example;
`

func (a *app) initCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "init",
		Short: "Create the migrations directory with an example migration",
		Long: `Create the migrations directory (./migrations, or --dir) with an example
migration. If the directory already holds migrations, init changes nothing.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir := a.cfg.Dir
			versions, err := existingVersions(dir)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			if len(versions) > 0 {
				a.printf("%s already holds %d migrations; nothing to do\n", dir, len(versions))
				return nil
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("create %s: %w", dir, err)
			}
			path := filepath.Join(dir, "00001_create_example.sql")
			if err := os.WriteFile(path, []byte(exampleMigration), 0o644); err != nil {
				return err
			}
			a.printf("created %s\nnext: edit it, then run `ferry up` (and `ferry status` to check)\n", path)
			return nil
		},
	}
}

var nameClean = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`[^a-z0-9]+`) })

func (a *app) newCmd() *cobra.Command {
	var seq, timestamp bool
	var format string
	c := &cobra.Command{
		Use:   "new NAME",
		Short: "Create a new, empty migration file",
		Long: `Create a new migration file named <version>_<name>.sql in the migrations
directory, with empty up and down sections.

The version is the next sequence number (--seq, 00001, 00002, ...) or the
current UTC time (--timestamp, 20261121193000). Without either flag, ferry
follows the style of the existing files (sequence numbers for a new
directory).`,
		Example: "  ferry new add_email_to_users\n  ferry new --timestamp add_orders",
		Args:    exactArgs(1, "one NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if seq && timestamp {
				return usageErrorf("use --seq or --timestamp, not both")
			}
			name := strings.Trim(nameClean().ReplaceAllString(strings.ToLower(args[0]), "_"), "_")
			if name == "" {
				return usageErrorf("migration name %q has no letters or digits", args[0])
			}
			versions, err := existingVersions(a.cfg.Dir)
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("migrations directory %s does not exist; create it with `ferry init`", a.cfg.Dir)
			}
			if err != nil {
				return err
			}
			var latest int64
			for _, v := range versions {
				latest = max(latest, v)
			}
			const timestampLike = 1_000_000_000_000 // 13+ digits: YYYYMMDDHHMMSS
			useTS := timestamp || (!seq && latest >= timestampLike)
			var file string
			if useTS {
				now, _ := strconv.ParseInt(time.Now().UTC().Format("20060102150405"), 10, 64)
				v := max(now, latest+1)
				file = fmt.Sprintf("%d_%s.sql", v, name)
			} else {
				file = fmt.Sprintf("%05d_%s.sql", latest+1, name)
			}
			body, err := template(format)
			if err != nil {
				return err
			}
			path := filepath.Join(a.cfg.Dir, file)
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if err != nil {
				return err
			}
			if _, err := f.WriteString(body); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			a.printf("%s\n", path)
			return nil
		},
	}
	c.Flags().BoolVar(&seq, "seq", false, "number the file with the next sequence number")
	c.Flags().BoolVar(&timestamp, "timestamp", false, "number the file with the current UTC time")
	c.Flags().StringVar(&format, "format", "ferry", "file format: ferry or goose")
	return c
}

func template(format string) (string, error) {
	switch format {
	case "ferry":
		return "-- +ferry up\n" + migrate.TODOMarker + "\n\n-- +ferry down\n\n", nil
	case "goose":
		return "-- +goose Up\n" + migrate.TODOMarker + "\n\n-- +goose Down\n\n", nil
	}
	return "", usageErrorf("format %q: use ferry or goose", format)
}

// existingVersions lists the versions of the migration files in dir.
func existingVersions(dir string) ([]int64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []int64
	for _, e := range entries {
		if v, ok := migrate.FileVersion(e.Name()); ok && !e.IsDir() {
			out = append(out, v)
		}
	}
	return out, nil
}
