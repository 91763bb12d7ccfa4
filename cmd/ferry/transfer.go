package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"filippo.io/age"
	"github.com/spf13/cobra"

	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/migrate"
	"github.com/ferrydb/ferry/store"
	"github.com/ferrydb/ferry/transfer"
)

const exportStoreHelp = "export store: a directory, or a file://, s3://, gs:// or azblob:// URL (env FERRY_EXPORT_STORE; default ./ferry-exports). Object stores need a ferry built with their tag (docs/backups.md); credentials come from the environment, never from here"

// exportStore opens the export store at loc, or FERRY_EXPORT_STORE, or
// the default.
func (a *app) exportStore(ctx context.Context, loc string) (*transfer.Store, error) {
	return a.openExportStore(ctx, loc, transfer.OpenStore)
}

// existingExportStore opens an export store to read: one that does not
// exist is an error, not a new empty directory.
func (a *app) existingExportStore(ctx context.Context, loc string) (*transfer.Store, error) {
	return a.openExportStore(ctx, loc, transfer.OpenStoreExisting)
}

func (a *app) openExportStore(ctx context.Context, loc string, open func(context.Context, string) (*transfer.Store, error)) (*transfer.Store, error) {
	if loc == "" {
		loc = a.getenv("FERRY_EXPORT_STORE")
	}
	st, err := open(ctx, loc)
	if errors.Is(err, store.ErrInvalidLocation) {
		err = usageError{err}
	}
	return st, err
}

// exportAt opens the store of "STORE/ID", or of ID in --store.
func (a *app) exportAt(ctx context.Context, loc, storeFlag string) (*transfer.Store, string, error) {
	if transfer.ValidID(loc) {
		st, err := a.existingExportStore(ctx, storeFlag)
		return st, loc, err
	}
	if storeFlag != "" {
		return nil, "", usageErrorf("%q is not an export id; give an id with --store, or STORE/ID without it", loc)
	}
	storeLoc, id, err := transfer.SplitLocation(loc)
	if err != nil {
		return nil, "", usageError{err}
	}
	st, err := a.existingExportStore(ctx, storeLoc)
	return st, id, err
}

// transferProgress reports progress on stderr: on a terminal, a line per
// table that redraws itself (rows, bytes, rate, and, when the table's
// size is known, a bar and the time left); otherwise, or with --json,
// JSON lines (docs/transfer.md). The callback is called from one
// goroutine at a time.
func (a *app) transferProgress() func(transfer.Progress) {
	type state struct {
		start, last time.Time
	}
	tables := map[string]*state{}
	var current string // the table whose line the cursor is on
	// Off a terminal, JSON lines of their own, whatever the log's format,
	// at the default log level and below it (--log-level error: none).
	lines := slog.New(slog.NewJSONHandler(a.stderr, nil))
	quiet := !a.log.Enabled(context.Background(), slog.LevelWarn)
	return func(p transfer.Progress) {
		key := p.Op + " " + p.Table
		st := tables[key]
		now := time.Now()
		if st == nil {
			st = &state{start: now}
			tables[key] = st
		}
		if !p.Done && now.Sub(st.last) < 500*time.Millisecond {
			return
		}
		st.last = now
		if a.json || !isTerminal(a.stderr) {
			if !quiet && (p.Done || now.Sub(st.start) > 2*time.Second) {
				lines.Info("progress", "op", p.Op, "table", p.Table, "rows", p.Rows, "bytes", p.Bytes, "total", p.Total, "done", p.Done)
			}
			return
		}
		if current != "" && current != key {
			fmt.Fprintln(a.stderr) // another table's line: keep it, start a new one
		}
		current = key
		fmt.Fprintf(a.stderr, "\r\033[K%s", terminalSafe(progressLine(p, now.Sub(st.start))))
		if p.Done {
			fmt.Fprintln(a.stderr)
			current = ""
		}
	}
}

// progressLine is one table's progress for a terminal.
func progressLine(p transfer.Progress, elapsed time.Duration) string {
	secs := max(elapsed.Seconds(), 0.001)
	line := fmt.Sprintf("%-6s %-24s %10d rows", p.Op, p.Table, p.Rows)
	if p.Bytes > 0 {
		line += fmt.Sprintf("  %9s", fmtSize(p.Bytes))
	}
	// A rate over less than a second says nothing.
	switch {
	case secs < 1:
	case p.Bytes > 0:
		line += fmt.Sprintf("  %9s/s", fmtSize(int64(float64(p.Bytes)/secs)))
	default:
		line += fmt.Sprintf("  %8.0f rows/s", float64(p.Rows)/secs)
	}
	if p.Total > 0 && !p.Done {
		frac := min(float64(p.Rows)/float64(p.Total), 1)
		const width = 20
		n := int(frac * width)
		line += fmt.Sprintf("  [%s%s] %3.0f%%", strings.Repeat("#", n), strings.Repeat(".", width-n), frac*100)
		if p.Rows > 0 {
			left := time.Duration(float64(elapsed) * (float64(p.Total-p.Rows) / float64(p.Rows)))
			line += "  ETA " + left.Round(time.Second).String()
		}
	}
	if p.Done {
		line += "  done in " + elapsed.Round(10*time.Millisecond).String()
	}
	return line
}

// recipients reads whom an export's key is encrypted to: an age
// recipients file, or a passphrase file, or FERRY_EXPORT_RECIPIENTS /
// FERRY_EXPORT_PASSPHRASE. Never a key on the command line.
func (a *app) recipients(recipientsFile, passphraseFile string) ([]age.Recipient, error) {
	switch {
	case recipientsFile != "" && passphraseFile != "":
		return nil, usageErrorf("--recipients-file and --passphrase-file exclude each other (age encrypts to a passphrase alone)")
	case recipientsFile != "":
		if strings.HasPrefix(strings.TrimSpace(recipientsFile), "AGE-SECRET-KEY-") {
			return nil, usageErrorf("--recipients-file takes the path of a file of public keys (age1...), and was given a secret key itself (not repeated here): the secret key stays with whoever imports, and never goes on a command line; age-keygen -y prints its public key")
		}
		f, err := os.Open(recipientsFile)
		if err != nil {
			return nil, usageError{fmt.Errorf("--recipients-file: %w", fileError(err))}
		}
		defer f.Close()
		rs, err := transfer.ParseRecipients(f)
		if err != nil {
			return nil, usageError{fmt.Errorf("--recipients-file %s: %w", recipientsFile, err)}
		}
		return rs, nil
	case passphraseFile != "":
		pass, err := readSecretFile(passphraseFile, "--passphrase-file")
		if err != nil {
			return nil, err
		}
		return transfer.PassphraseRecipient(pass)
	case a.getenv("FERRY_EXPORT_RECIPIENTS") != "" && a.getenv("FERRY_EXPORT_PASSPHRASE") != "":
		return nil, usageErrorf("FERRY_EXPORT_RECIPIENTS and FERRY_EXPORT_PASSPHRASE are both set, and exclude each other (age encrypts to a passphrase alone): unset one")
	case a.getenv("FERRY_EXPORT_RECIPIENTS") != "":
		v, err := envSecret("FERRY_EXPORT_RECIPIENTS", a.getenv("FERRY_EXPORT_RECIPIENTS"), "--recipients-file")
		if err != nil {
			return nil, err
		}
		rs, err := transfer.ParseRecipients(strings.NewReader(v))
		if err != nil {
			return nil, usageError{fmt.Errorf("FERRY_EXPORT_RECIPIENTS (the recipients themselves, not a file's path): %w", err)}
		}
		return rs, nil
	case a.getenv("FERRY_EXPORT_PASSPHRASE") != "":
		pass, err := envPassphrase("FERRY_EXPORT_PASSPHRASE", a.getenv("FERRY_EXPORT_PASSPHRASE"))
		if err != nil {
			return nil, err
		}
		return transfer.PassphraseRecipient(pass)
	}
	return nil, usageErrorf("--encrypt needs --recipients-file FILE (age public keys), --passphrase-file FILE, FERRY_EXPORT_RECIPIENTS or FERRY_EXPORT_PASSPHRASE")
}

// identities reads what opens an encrypted export: an age identity file
// (--identity), a passphrase file, FERRY_IMPORT_IDENTITY or
// FERRY_IMPORT_PASSPHRASE. None is no error: an export that is not
// encrypted needs none.
func (a *app) identities(identityFile, passphraseFile string) ([]age.Identity, error) {
	switch {
	case identityFile != "" && passphraseFile != "":
		return nil, usageErrorf("--identity and --passphrase-file exclude each other (an export is encrypted to recipients or to a passphrase): give the one it was exported with")
	case identityFile == "" && passphraseFile == "" && a.getenv("FERRY_IMPORT_IDENTITY") != "" && a.getenv("FERRY_IMPORT_PASSPHRASE") != "":
		return nil, usageErrorf("FERRY_IMPORT_IDENTITY and FERRY_IMPORT_PASSPHRASE are both set, and exclude each other (an export is encrypted to recipients or to a passphrase): unset one")
	case identityFile != "":
		if strings.HasPrefix(strings.TrimSpace(identityFile), "AGE-SECRET-KEY-") {
			return nil, usageErrorf("--identity takes the path of a file holding the identity, and was given a secret key itself (not repeated here): keys never go on the command line, where ps and shell history keep them; write it to a file, or set FERRY_IMPORT_IDENTITY")
		}
		f, err := os.Open(identityFile)
		if err != nil {
			return nil, usageError{fmt.Errorf("--identity: %w", fileError(err))}
		}
		defer f.Close()
		ids, err := transfer.ParseIdentities(f)
		if err != nil {
			return nil, usageError{fmt.Errorf("--identity %s: %w", identityFile, err)}
		}
		return ids, nil
	case passphraseFile != "":
		pass, err := readSecretFile(passphraseFile, "--passphrase-file")
		if err != nil {
			return nil, err
		}
		return transfer.PassphraseIdentity(pass)
	case a.getenv("FERRY_IMPORT_IDENTITY") != "":
		v, err := envSecret("FERRY_IMPORT_IDENTITY", a.getenv("FERRY_IMPORT_IDENTITY"), "--identity")
		if err != nil {
			return nil, err
		}
		ids, err := transfer.ParseIdentities(strings.NewReader(v))
		if err != nil {
			return nil, usageError{fmt.Errorf("FERRY_IMPORT_IDENTITY (the identity itself, AGE-SECRET-KEY-1..., not a file's path): %w", err)}
		}
		return ids, nil
	case a.getenv("FERRY_IMPORT_PASSPHRASE") != "":
		raw := a.getenv("FERRY_IMPORT_PASSPHRASE")
		pass, err := envPassphrase("FERRY_IMPORT_PASSPHRASE", raw)
		if err != nil {
			return nil, err
		}
		ids, err := transfer.PassphraseIdentity(pass)
		if err != nil || pass == raw {
			return ids, err
		}
		// An export of a ferry that kept the variable's line ending (before
		// 25c86cc) opens with the passphrase as it was.
		old, err := transfer.PassphraseIdentity(raw)
		return append(ids, old...), err
	}
	return nil, nil
}

// envSecret returns the value of environment variable name, which holds a
// secret itself. A value that is, or looks like, a path is refused: the
// operator meant a file (flag reads it), perhaps one not mounted yet, and
// the path would otherwise silently become the secret.
func envSecret(name, value, flag string) (string, error) {
	_, err := os.Stat(value)
	pathLike := err == nil || strings.HasPrefix(value, "file:")
	for _, p := range []string{"/", "./", "../", "~/"} {
		pathLike = pathLike || strings.HasPrefix(value, p)
	}
	if pathLike && !strings.ContainsAny(value, "\n") {
		return "", usageErrorf("%s holds the secret itself, not a file's path, and its value is (or looks like) a path: to read the secret from a file, give %s FILE instead", name, flag)
	}
	return value, nil
}

// readSecretFile reads a one-line secret (its trailing newline dropped).
func readSecretFile(path, flag string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", usageError{fmt.Errorf("%s: %w (it takes the path of a file holding the passphrase, never the passphrase itself)", flag, fileError(err))}
	}
	pass := strings.TrimRight(string(b), "\r\n")
	if pass == "" {
		return "", usageErrorf("%s %s is empty", flag, path)
	}
	return pass, nil
}

// fileError is err of a file that could not be opened without its path:
// a secret typed where its file's path belongs is not repeated.
func fileError(err error) error {
	if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// envPassphrase is the passphrase environment variable name holds, its
// line ending trimmed as a file's is (a Kubernetes secret mounted as a
// variable keeps the file's newline): the same passphrase opens the
// export whichever way it came.
func envPassphrase(name, value string) (string, error) {
	pass, err := envSecret(name, value, "--passphrase-file")
	if err != nil {
		return "", err
	}
	if pass = strings.TrimRight(pass, "\r\n"); pass == "" {
		return "", usageErrorf("%s holds only a line ending", name)
	}
	return pass, nil
}

func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func (a *app) exportCmd() *cobra.Command {
	var to, encrypt, recipientsFile, passphraseFile, compress string
	var pauseSelect, pause, resume string
	var resumeSource bool
	var tables, exclude, sensitive []string
	var since string
	var timeColumns map[string]string
	var jobs int
	var chunkSize int64
	c := &cobra.Command{
		Use:   "export [--to STORE]",
		Short: "Export every table's rows to a store, consistent, while the service runs",
		Long: `Export the configured database's tables into a new export in the store
(a directory, or object storage) and print its id.

All tables are read in one snapshot, so the export is consistent while the
service keeps writing: PostgreSQL workers (--jobs) share one exported
snapshot; MySQL/MariaDB read in one consistent-snapshot transaction (MariaDB
workers in several, begun while BACKUP STAGE BLOCK_COMMIT holds commits for a
few milliseconds; that needs the RELOAD privilege); SQLite in one read
transaction (writers go on in WAL mode). ferry's migration lock is
held throughout, so no upgrade changes the schema meanwhile.

Each table goes into compressed JSON Lines chunks: S2 by default, the
fastest. --compress gzip writes an archive about two fifths smaller, for
more CPU, in the format (manifest format 1) that ferry releases from before
S2 can also import, unless encrypted; they refuse an S2 export. manifest.json, written last,
records the source's schema version and the checksums of its applied
migrations, every table's columns, keys, foreign keys, sequence values, row
count and row checksum, and every chunk's size and sha256. ferry's own tables
(history, lock, import ledger) are not exported. An export that fails or is
killed leaves no manifest and is never imported.

--encrypt all encrypts every chunk, --encrypt sensitive the chunks of the
tables named by --sensitive (a table, or table.column: its table), with age:
to the public keys in --recipients-file (age1..., as age-keygen prints them),
or to a passphrase read from --passphrase-file; or from FERRY_EXPORT_RECIPIENTS
or FERRY_EXPORT_PASSPHRASE. Keys never come from the command line.

--pause-select, --pause and --resume quiesce the service's other workloads
(jobs, schedules, DAGs): the select returns one row per running workload;
before the snapshot, --pause runs once per row with the row's values as its
arguments ($1.. on PostgreSQL, ? on MySQL and SQLite), all in one
transaction; the list and --resume go into the manifest, and "ferry import
--resume-recorded" runs --resume for each in the new environment once the
data is verified (an import runs no SQL read from an export unless told to). The
source stays paused (it is being moved) unless --resume-source; it is
resumed when the export fails. A killed export leaves the list in the
store: "ferry export resume STORE/ID --resume-recorded" resumes the source.

--since 30d (or 2w, 36h, or a date: 2026-10-01) exports only recent rows: in
each table with a time column (--time-column runs=created_at, repeatable, or
export_time_columns in ferry.yaml), the rows at or after the cutoff; closed
under foreign keys, so the export imports with every constraint on: the
parents of kept rows are kept, the rows of other tables whose parents were
dropped are dropped (the logs of an old run), and tables that reference
nothing windowed are exported whole.

Import it into an empty database with "ferry import --from STORE/ID"; see
docs/transfer.md.`,
		Example: "  ferry export\n  ferry export --to /var/exports --exclude audit_log\n  ferry export --to s3://acme-exports/ferry?region=eu-west-1 --jobs 4 --json\n  ferry export --since 30d --time-column runs=created_at --time-column task_instances=started_at",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if jobs < 1 {
				return usageErrorf("--jobs must be at least 1, got %d", jobs)
			}
			if chunkSize < 1024 {
				return usageErrorf("--chunk-size must be at least 1024 bytes, got %d", chunkSize)
			}
			compressFrom := "--compress"
			if !cmd.Flags().Changed("compress") && a.getenv("FERRY_EXPORT_COMPRESS") != "" {
				// A fleet whose importers are older than S2 sets gzip once.
				compress, compressFrom = a.getenv("FERRY_EXPORT_COMPRESS"), "FERRY_EXPORT_COMPRESS"
			}
			// Names are case-insensitive, as an operator types them (GZIP);
			// an unknown one is quoted as it was given.
			given := compress
			compress = strings.ToLower(strings.TrimSpace(compress))
			if compress != transfer.CompressS2 && compress != transfer.CompressGzip {
				return usageErrorf("%s %q: use s2 or gzip", compressFrom, given)
			}
			opts := transfer.ExportOptions{Options: a.transferOptions(), Tables: tables, Exclude: exclude, Jobs: jobs, ChunkBytes: chunkSize, Compression: compress}
			encryptFrom := "--encrypt"
			if !cmd.Flags().Changed("encrypt") && a.getenv("FERRY_EXPORT_ENCRYPT") != "" {
				encrypt, encryptFrom = a.getenv("FERRY_EXPORT_ENCRYPT"), "FERRY_EXPORT_ENCRYPT"
			}
			if encrypt != "" {
				given := encrypt
				if encrypt = strings.ToLower(strings.TrimSpace(encrypt)); encrypt != transfer.EncryptAll && encrypt != transfer.EncryptSensitive {
					return usageErrorf("%s %q: use all or sensitive", encryptFrom, given)
				}
				if len(sensitive) == 0 && a.getenv("FERRY_EXPORT_SENSITIVE") != "" {
					for _, name := range strings.Split(a.getenv("FERRY_EXPORT_SENSITIVE"), ",") {
						if name = strings.TrimSpace(name); name != "" {
							sensitive = append(sensitive, name)
						}
					}
				}
				if encrypt == transfer.EncryptSensitive && len(sensitive) == 0 {
					return usageErrorf("--encrypt sensitive needs --sensitive TABLE[.COLUMN],... (or FERRY_EXPORT_SENSITIVE)")
				}
				rs, err := a.recipients(recipientsFile, passphraseFile)
				if err != nil {
					return err
				}
				opts.Encrypt, opts.Sensitive, opts.Recipients = encrypt, sensitive, rs
			} else if len(sensitive) > 0 || recipientsFile != "" || passphraseFile != "" {
				return usageErrorf("--sensitive, --recipients-file and --passphrase-file need --encrypt all or --encrypt sensitive")
			} else {
				// Set for encryption, and nothing encrypts: the export
				// would hold in the clear what they name.
				var set []string
				for _, env := range []string{"FERRY_EXPORT_SENSITIVE", "FERRY_EXPORT_RECIPIENTS", "FERRY_EXPORT_PASSPHRASE"} {
					if a.getenv(env) != "" {
						set = append(set, env)
					}
				}
				if len(set) > 0 {
					vars, is := strings.Join(set, " and "), "is"
					if len(set) > 1 {
						is = "are"
					}
					if a.getenv("FERRY_EXPORT_ENCRYPT") != "" {
						// --encrypt '' turned the variable's mode off.
						return usageErrorf("%s %s set, but --encrypt \"\" turns off the encryption FERRY_EXPORT_ENCRYPT asks for, and this export would be in the clear: unset %[1]s to export in the clear, or drop --encrypt \"\"", vars, is)
					}
					return usageErrorf("%s %s set, but nothing encrypts this export, which would be in the clear: give --encrypt all or --encrypt sensitive (or set FERRY_EXPORT_ENCRYPT), or unset %[1]s", vars, is)
				}
			}
			w, err := a.window(cmd, since, timeColumns, tables, exclude)
			if err != nil {
				return err
			}
			opts.Window = w
			if pauseSelect != "" || pause != "" || resume != "" {
				if pauseSelect == "" || pause == "" || resume == "" {
					return usageErrorf("quiescing needs all three of --pause-select, --pause and --resume")
				}
				opts.Quiesce = &transfer.Quiesce{Select: pauseSelect, Pause: pause, Resume: resume, ResumeSource: resumeSource}
			} else if resumeSource {
				return usageErrorf("--resume-source needs --pause-select, --pause and --resume")
			}
			st, err := a.exportStore(ctx, to)
			if err != nil {
				return err
			}
			defer st.Close()
			// Read-only: a mistyped SQLite path is not created. The
			// export reads the history table, not the migration files.
			db, mig, err := a.historyMigrator(ctx)
			if err != nil {
				return err
			}
			defer db.Close()
			m, err := transfer.Export(ctx, st, db, mig, opts)
			if transferUsage(err) {
				return usageError{err}
			}
			var notResumed error // the export stands; the source is still paused
			if errors.Is(err, transfer.ErrSourceNotResumed) && m != nil {
				notResumed, err = err, nil
			}
			if err != nil {
				return err
			}
			if a.json {
				if notResumed != nil {
					return a.printOutcome(map[string]any{"ok": false, "store": st.String(), "export": m}, notResumed)
				}
				return a.printJSON(map[string]any{"ok": true, "store": st.String(), "export": m})
			}
			a.printf("export %s created in %s\n", m.ID, st)
			a.printf("  %d tables, %d rows, %s stored, schema version %d, %s\n", len(m.Tables), m.Rows(), fmtSize(m.Size()),
				m.Source.SchemaVersion, fmtDuration(time.Duration(m.DurationMS)*time.Millisecond))
			if w := m.Window; w != nil {
				var filtered []string
				for _, t := range m.Tables {
					if t.Filter != "" {
						filtered = append(filtered, t.Name)
					}
				}
				a.printf("  rows since %s only, in %s (closed under foreign keys)\n", w.Cutoff.Format(time.RFC3339), strings.Join(filtered, ", "))
			}
			if q := m.Quiesce; q != nil && q.Count() == 0 {
				a.printf("  no workloads paused: --pause-select returned no row\n")
			} else if q != nil {
				state := "left paused on the source; ferry import --resume-recorded resumes them in the target"
				switch {
				case q.ResumedOnSource:
					state = "resumed on the source"
				case notResumed != nil:
					state = "still paused on the source, where --resume failed (see below); give the import the corrected statement too: ferry import --resume SQL"
				}
				a.printf("  %d workloads paused for the snapshot, %s\n", q.Count(), state)
			}
			key := ""
			if m.Encryption != nil {
				key = " --identity FILE" // the identity of a recipient
				if passphraseFile != "" || (recipientsFile == "" && a.getenv("FERRY_EXPORT_RECIPIENTS") == "") {
					key = " --passphrase-file FILE"
				}
			}
			if q := m.Quiesce; q != nil && q.Count() > 0 && notResumed != nil {
				key += " --resume SQL" // the recorded statement failed on the source
			} else if q != nil && q.Count() > 0 {
				key += " --resume-recorded" // or --resume SQL, or --keep-paused
			}
			a.printf("import it with: ferry import --from %s --database URL%s\n", st.At(m.ID), key)
			return notResumed
		},
	}
	c.Flags().StringVar(&to, "to", "", exportStoreHelp)
	c.Flags().StringSliceVar(&tables, "tables", nil, "export only these tables (comma-separated)")
	c.Flags().StringSliceVar(&exclude, "exclude", nil, "leave these tables out (comma-separated)")
	c.Flags().IntVar(&jobs, "jobs", 1, "connections reading at once, in one snapshot: tables in parallel, and a large table with an integer key in key ranges (PostgreSQL, and MariaDB with the RELOAD privilege; MySQL and SQLite read through one connection)")
	c.Flags().StringVar(&since, "since", "", "export only the rows of the last 30d, 2w, 36h... (or since a date) in the tables with a time column, closed under foreign keys")
	c.Flags().StringToStringVar(&timeColumns, "time-column", nil, "TABLE=COLUMN: a table's time column, for --since (repeatable; ferry.yaml export_time_columns)")
	c.Flags().StringVar(&pauseSelect, "pause-select", "", "SQL selecting the workloads to pause, one row each")
	c.Flags().StringVar(&pause, "pause", "", "SQL pausing one workload, run per selected row with its values as arguments")
	c.Flags().StringVar(&resume, "resume", "", "SQL resuming one workload, recorded in the manifest (ferry import --resume-recorded runs it in the target)")
	c.Flags().BoolVar(&resumeSource, "resume-source", false, "resume the paused workloads on the source too, once the export is taken")
	c.Flags().Int64Var(&chunkSize, "chunk-size", transfer.DefaultChunkBytes, "bytes of rows (before compression) per chunk file")
	c.Flags().StringVar(&compress, "compress", transfer.CompressS2, "chunk compression: s2 (fastest) or gzip (about two fifths smaller, more CPU; also imported by ferry releases before S2); env FERRY_EXPORT_COMPRESS")
	c.Flags().StringVar(&encrypt, "encrypt", "", "encrypt with age: all (every table) or sensitive (the --sensitive tables); env FERRY_EXPORT_ENCRYPT")
	c.Flags().StringSliceVar(&sensitive, "sensitive", nil, "sensitive tables or table.columns, for --encrypt sensitive (env FERRY_EXPORT_SENSITIVE)")
	c.Flags().StringVar(&recipientsFile, "recipients-file", "", "file of age recipients (public keys) to encrypt to (env FERRY_EXPORT_RECIPIENTS holds them instead)")
	c.Flags().StringVar(&passphraseFile, "passphrase-file", "", "file holding the passphrase to encrypt with (env FERRY_EXPORT_PASSPHRASE holds the passphrase itself instead)")
	jsonFlag(c)
	a.jsonArgs(c)
	c.RunE = a.jsonFailures(c.RunE)
	for _, sub := range []*cobra.Command{a.exportListCmd(), a.exportVerifyCmd(), a.exportResumeCmd(), a.exportDeleteCmd(), a.exportPruneCmd()} {
		a.jsonArgs(sub)
		sub.RunE = a.jsonFailures(sub.RunE)
		c.AddCommand(sub)
	}
	return c
}

func (a *app) transferOptions() transfer.Options {
	return transfer.Options{Logger: a.log, FerryVersion: version, Progress: a.transferProgress()}
}

func (a *app) exportListCmd() *cobra.Command {
	var loc string
	c := &cobra.Command{
		Use:   "list [--store STORE]",
		Short: "List the exports in a store, oldest first",
		Long: `List the complete exports in the store, oldest first. An export whose manifest
was never written (it failed, was killed, or is running) is not listed; one
whose manifest cannot be read is reported on stderr.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			st, err := a.existingExportStore(ctx, loc)
			if err != nil {
				return err
			}
			defer st.Close()
			list, broken, err := st.List(ctx)
			if err != nil {
				return err
			}
			incomplete, err := st.Incomplete(ctx)
			if err != nil {
				return err
			}
			if a.json {
				if list == nil {
					list = []*transfer.Manifest{}
				}
				b := []map[string]string{}
				for _, x := range broken {
					b = append(b, map[string]string{"id": x.ID, "error": x.Err.Error()})
				}
				if incomplete == nil {
					incomplete = []string{}
				}
				return a.printJSON(map[string]any{"ok": true, "store": st.String(), "exports": list, "broken": b, "incomplete": incomplete})
			}
			for _, x := range broken {
				if errors.Is(x.Err, transfer.ErrNewerFormat) {
					a.eprintf("ferry: export %s cannot be read by this ferry: %v\n", x.ID, x.Err)
					continue
				}
				a.eprintf("ferry: export %s is broken: %v\n", x.ID, x.Err)
			}
			for _, id := range incomplete {
				msg := fmt.Sprintf("ferry: export %s has no manifest (it failed, was killed, or is still running); if none is running, `ferry export delete %s` removes it", id, st.At(id))
				if q, _ := st.Quiesce(ctx, id); q != nil && !q.ResumedOnSource {
					msg += fmt.Sprintf(", after `ferry export resume %s --resume-recorded --database %s%s` resumes the %d workloads it paused there", st.At(id), transfer.ShellQuote(q.Source), q.KeyFlags(), q.Count())
				}
				a.eprintf("%s\n", msg)
			}
			if len(list) == 0 {
				if n := len(broken) + len(incomplete); n > 0 {
					a.printf("no export in %s can be imported (%d broken or incomplete, above)\n", st, n)
					return nil
				}
				a.printf("no exports in %s\n", st)
				return nil
			}
			w := tabwriter.NewWriter(safeWriter{a.stdout}, 0, 4, 2, ' ', 0)
			fmt.Fprintf(w, "ID\tCREATED (UTC)\tSOURCE\tVERSION\tTABLES\tROWS\tSIZE\tWINDOW\tCHUNKS\n")
			for _, m := range list {
				window := "all rows"
				if m.Window != nil {
					window = "since " + m.Window.Cutoff.Format(time.DateTime)
				}
				tables := fmt.Sprint(len(m.Tables))
				if len(m.LeftOut) > 0 {
					tables = fmt.Sprintf("%d of %d", len(m.Tables), len(m.Tables)+len(m.LeftOut))
				}
				chunks := cmp.Or(m.Compression, transfer.CompressGzip)
				if m.Encryption != nil {
					chunks += ", encrypted (" + m.Encryption.Mode + ")"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%d\t%s\t%s\t%s\n", m.ID, m.CreatedAt.Format(time.DateTime), terminalSafe(m.Source.Database),
					m.Source.SchemaVersion, tables, m.Rows(), fmtSize(m.Size()), window, chunks)
			}
			return w.Flush()
		},
	}
	c.Flags().StringVar(&loc, "store", "", exportStoreHelp)
	jsonFlag(c)
	return c
}

func (a *app) exportVerifyCmd() *cobra.Command {
	var loc, identityFile, passphraseFile string
	c := &cobra.Command{
		Use:   "verify STORE/ID | ID [--store STORE]",
		Short: "Check an export: every chunk's checksum, every row, every table's count and row checksum",
		Long: `Read every chunk of an export, compare its size and sha256 with the manifest,
decode every row, and compare every table's row count and row checksum with
the manifest. No database is needed. Exits 1 naming the table and chunk of
every problem (--json: {"ok": false, "problems": [...]}).`,
		Example: "  ferry export verify ferry-exports/20261129T170000Z-ab12cd\n  ferry export verify 20261129T170000Z-ab12cd --store s3://acme-exports/ferry",
		Args:    exactArgs(1, "one export (STORE/ID, or ID with --store)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			st, id, err := a.exportAt(ctx, args[0], loc)
			if err != nil {
				return err
			}
			defer st.Close()
			ids, err := a.identities(identityFile, passphraseFile)
			if err != nil {
				return err
			}
			res, err := st.Check(ctx, id, ids)
			if a.json {
				doc := map[string]any{"store": st.String(), "id": id, "ok": err == nil, "problems": []transfer.Problem{}}
				if res != nil {
					doc["problems"], doc["rows_unchecked"] = res.Problems, res.RowsUnchecked
				}
				return a.printOutcome(doc, err)
			}
			if res != nil {
				for _, p := range res.Problems {
					a.eprintf("ferry: %s\n", p)
				}
				if errors.Is(err, transfer.ErrMismatch) && len(res.Problems) > 0 {
					// Each is said above: not the first once more.
					n := "1 problem"
					if len(res.Problems) > 1 {
						n = fmt.Sprintf("%d problems", len(res.Problems))
					}
					return fmt.Errorf("%w: export %s has %s, listed above: restore its objects from a copy of the store, or export again", transfer.ErrMismatch, id, n)
				}
			}
			if err != nil {
				return err
			}
			m := res.Manifest
			a.printf("export %s: ok (%d tables, %d rows, %s)\n", id, len(m.Tables), m.Rows(), fmtSize(m.Size()))
			if len(res.RowsUnchecked) > 0 {
				a.printf("  encrypted, no --identity: the chunks of %s match their checksums; their rows were not decrypted\n", strings.Join(res.RowsUnchecked, ", "))
			}
			return nil
		},
	}
	c.Flags().StringVar(&loc, "store", "", exportStoreHelp)
	identityFlags(c, &identityFile, &passphraseFile)
	jsonFlag(c)
	return c
}

func identityFlags(c *cobra.Command, identityFile, passphraseFile *string) {
	c.Flags().StringVar(identityFile, "identity", "", "age identity file (AGE-SECRET-KEY-1...) that opens an encrypted export (env FERRY_IMPORT_IDENTITY holds it instead)")
	c.Flags().StringVar(passphraseFile, "passphrase-file", "", "file holding the passphrase of an encrypted export (env FERRY_IMPORT_PASSPHRASE holds the passphrase itself instead)")
}

func (a *app) exportDeleteCmd() *cobra.Command {
	var loc string
	var force bool
	c := &cobra.Command{
		Use:   "delete STORE/ID | ID [--store STORE]",
		Short: "Delete an export from its store, complete or not",
		Long: `Delete an export: its manifest first (so it stops being listed and cannot be
imported), then its chunks. Also removes what an export that failed or was
killed left without a manifest. Do not delete an export that is still being
written.`,
		Args: exactArgs(1, "one export (STORE/ID, or ID with --store)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			st, id, err := a.exportAt(ctx, args[0], loc)
			if err != nil {
				return err
			}
			defer st.Close()
			if q, err := st.Quiesce(ctx, id); err != nil {
				return err
			} else if q != nil && !q.ResumedOnSource && !force {
				if _, merr := st.Manifest(ctx, id); merr != nil {
					return fmt.Errorf("export %s did not finish and paused %d workloads on %s that were not resumed; its store holds the only list: run ferry export resume %s --resume-recorded%s first (or delete with --force)", id, q.Count(), q.Source, st.At(id), q.KeyFlags())
				}
			}
			if err := st.Delete(ctx, id); err != nil {
				return err
			}
			if a.json {
				return a.printJSON(map[string]any{"ok": true, "store": st.String(), "deleted": id})
			}
			a.printf("deleted export %s from %s\n", id, st)
			return nil
		},
	}
	c.Flags().StringVar(&loc, "store", "", exportStoreHelp)
	c.Flags().BoolVar(&force, "force", false, "delete even an unfinished export whose paused workloads were not resumed")
	jsonFlag(c)
	return c
}

func (a *app) exportPruneCmd() *cobra.Command {
	var loc string
	var keep int
	var dryRun bool
	c := &cobra.Command{
		Use:   "prune --keep N [--store STORE] [--dry-run]",
		Short: "Delete all but the newest N exports of a store",
		Long: `Delete the oldest complete exports of the store, keeping the newest --keep.
Exports without a manifest are left alone (one may still be running; see
ferry export list and ferry export delete).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if keep < 1 {
				if !cmd.Flags().Changed("keep") {
					return usageErrorf("ferry export prune needs --keep N: it deletes all but the newest N complete exports")
				}
				return usageErrorf("--keep must be at least 1, got %d", keep)
			}
			st, err := a.existingExportStore(ctx, loc)
			if err != nil {
				return err
			}
			defer st.Close()
			gone, err := st.Prune(ctx, keep, dryRun)
			if a.json && err == nil {
				ids := []string{}
				for _, m := range gone {
					ids = append(ids, m.ID)
				}
				return a.printJSON(map[string]any{"ok": true, "store": st.String(), "dry_run": dryRun, "deleted": ids})
			}
			verb := "deleted"
			if dryRun {
				verb = "would delete"
			}
			for _, m := range gone {
				a.printf("%s export %s (%s)\n", verb, m.ID, m.CreatedAt.Format(time.DateTime))
			}
			return err
		},
	}
	c.Flags().StringVar(&loc, "store", "", exportStoreHelp)
	c.Flags().IntVar(&keep, "keep", 0, "how many of the newest exports to keep (at least 1)")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "print what would be deleted, delete nothing")
	jsonFlag(c)
	return c
}

func (a *app) exportResumeCmd() *cobra.Command {
	var loc, statement, identityFile, passphraseFile string
	var force, recorded bool
	c := &cobra.Command{
		Use:   "resume STORE/ID | ID [--store STORE] (--resume-recorded | --resume SQL)",
		Short: "Resume, on the source, the workloads an export paused and could not resume",
		Long: `An export run with --pause-select/--pause/--resume writes the list of the
workloads it pauses into the store before it pauses them. When the export
was killed, or failed and could not resume them, this runs --resume for each
of them on the configured database (the source): the export's statement, as
the store records it, with --resume-recorded (a store is input: ferry runs no
SQL read from it unless told to; without either flag it shows the statement
and stops), or the one given with --resume when the export's failed there.
An encrypted export seals the list with its key: give --identity or
--passphrase-file (or their environment variables) as for ferry import.`,
		Args: exactArgs(1, "one export (STORE/ID, or ID with --store)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			st, id, err := a.exportAt(ctx, args[0], loc)
			if err != nil {
				return err
			}
			defer st.Close()
			if recorded && statement != "" {
				return usageErrorf("--resume-recorded runs the statement the store records, --resume one of yours: give one")
			}
			ids, err := a.identities(identityFile, passphraseFile)
			if err != nil {
				return err
			}
			// The source: a mistyped SQLite path is not created.
			u, err := a.databaseURL()
			if err != nil {
				return err
			}
			o := a.dbOptions(false)
			o.NoCreate = true
			db, err := database.OpenURL(ctx, u, o)
			if err != nil {
				return err
			}
			defer db.Close()
			n, err := st.ResumeSource(ctx, id, db, transfer.ResumeOptions{Force: force, Statement: statement, Recorded: recorded, Identities: ids, Log: a.log})
			if errors.Is(err, transfer.ErrResumeChoice) {
				return usageError{err}
			}
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(map[string]any{"ok": true, "export": id, "resumed": n})
			}
			if n == 0 {
				a.printf("the workloads export %s paused were resumed already\n", id)
				return nil
			}
			a.printf("resumed %d workloads paused by export %s on %s\n", n, id, db.URL)
			return nil
		},
	}
	c.Flags().StringVar(&loc, "store", "", exportStoreHelp)
	c.Flags().BoolVar(&force, "force", false, "resume on this database even though the export recorded another name for its source; record the workloads as resumed even when the statement changed none of them (resumed by hand already)")
	c.Flags().BoolVar(&recorded, "resume-recorded", false, "run the export's own --resume statement, as the store records it")
	c.Flags().StringVar(&statement, "resume", "", "SQL resuming one workload, instead of the export's (its arguments are the paused row's values)")
	identityFlags(c, &identityFile, &passphraseFile)
	jsonFlag(c)
	return c
}

func (a *app) importCmd() *cobra.Command {
	var from, loc, identityFile, passphraseFile, mappingFile string
	var resume string
	var plan, keepPaused, resumeRecorded bool
	var jobs int
	c := &cobra.Command{
		Use:   "import --from STORE/ID [--plan]",
		Short: "Load an export into an empty database of any engine, through the migrations, verified",
		Long: `Import an export into the configured database, which must be empty (or hold
an import of this export that was cut short: it goes on where it stopped),
or already at the export's schema version or a newer one with empty tables:
then every table and column maps by name, new columns take their defaults,
and a renamed, dropped or retyped column is refused unless --mapping says
what to do (--plan shows the mapping).

1. Migrate the target to the export's schema version with the migrations in
   --dir; their checksums must match the ones the source applied (on the
   same engine).
2. Holding the migration lock: load every table, parents before children,
   each table (or circular group of tables) in one transaction with a row in
   the ledger table ferry_migrations_import; verify every table's row count
   and row checksum, and the foreign keys, against the manifest; set
   sequences past the loaded rows and check them.
3. Migrate the target to the latest version, so the data passes through the
   real migrations (renames, backfills, new NOT NULL columns).

The target may be another engine than the source (PostgreSQL, MySQL/MariaDB,
SQLite, any pair): --dir then holds the target engine's migrations of the
same versions (checksums are not compared), and every value is converted to
its target column's type: exactly, or checked value by value (a value that
does not fit stops the load, naming table, column, row and value); a
conversion that may round without failing (a decimal into SQLite's float) is
refused unless --mapping allows it (casts: [table.column]). The verification
compares every value in the canonical form of its target type.

--plan prints the steps and every table's column mapping and changes nothing
(exit 2 when the import would refuse). An encrypted export needs its key
(--identity, --passphrase-file, FERRY_IMPORT_IDENTITY or
FERRY_IMPORT_PASSPHRASE), except for --plan.
Exits 1 when verification fails, naming table, chunk and counts, or when a
chunk is missing or damaged (--json: the report with "problems"); exits 2,
changing nothing, for a target that is not empty, or that holds an import
whose verification failed (which running it again cannot finish).`,
		Example: "  ferry import --from ferry-exports/20261129T170000Z-ab12cd --database postgres://app@new-db/app --dir ./migrations\n  ferry import --from 20261129T170000Z-ab12cd --store s3://acme-exports/ferry --plan",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if from == "" {
				return usageErrorf("ferry import needs --from STORE/ID (see `ferry export list`)")
			}
			if n := btoi(keepPaused) + btoi(resumeRecorded) + btoi(resume != ""); n > 1 {
				return usageErrorf("--keep-paused, --resume-recorded and --resume each say what to do with the workloads the export paused: give one")
			}
			if jobs < 1 {
				return usageErrorf("--jobs must be at least 1, got %d", jobs)
			}
			ids, err := a.identities(identityFile, passphraseFile)
			if err != nil {
				return err
			}
			mapping, err := readMapping(mappingFile)
			if err != nil {
				return err
			}
			st, id, err := a.exportAt(ctx, from, loc)
			if err != nil {
				return err
			}
			defer st.Close()
			db, mig, unmake, err := a.targetMigrator(ctx, plan)
			if err != nil {
				return err
			}
			defer db.Close()
			// What a run after a cut needs besides --from, for ferry
			// status to say (paths and SQL, never a secret): the database
			// first, whose password is the operator's to give.
			target := db.URL.String()
			if db.URL.HasSecrets() {
				target = "URL-WITH-PASSWORD"
			}
			again := []string{"--database", target}
			if a.cfg.Table != "" && a.cfg.Table != "ferry_migrations" {
				again = append(again, "--table", a.cfg.Table)
			}
			if a.cfg.Schema != "" {
				again = append(again, "--schema", a.cfg.Schema)
			}
			for _, f := range []struct{ flag, file string }{{"--dir", a.cfg.Dir}, {"--mapping", mappingFile}, {"--identity", identityFile}, {"--passphrase-file", passphraseFile}} {
				if f.file == "" || (f.flag == "--dir" && f.file == "migrations") {
					continue
				}
				if abs, err := filepath.Abs(f.file); err == nil {
					f.file = abs
				}
				again = append(again, f.flag, f.file)
			}
			if keepPaused {
				again = append(again, "--keep-paused")
			}
			if resumeRecorded {
				again = append(again, "--resume-recorded")
			}
			if resume != "" {
				again = append(again, "--resume", resume)
			}
			keyEnv := "" // a key from the environment: a run again needs it set
			for _, env := range []string{"FERRY_IMPORT_IDENTITY", "FERRY_IMPORT_PASSPHRASE"} {
				if identityFile == "" && passphraseFile == "" && a.getenv(env) != "" {
					keyEnv = env
				}
			}
			rep, err := transfer.Import(ctx, st, id, db, mig, transfer.ImportOptions{Options: a.transferOptions(), Plan: plan, Identities: ids, KeepPaused: keepPaused,
				Resume: resume, ResumeRecorded: resumeRecorded, Jobs: jobs, Mapping: mapping, Flags: again, KeyEnv: keyEnv})
			unmake(err)
			if a.json && rep != nil {
				return a.transferOutcome(rep, err)
			}
			if rep != nil {
				a.printImport(rep)
			}
			if err != nil {
				if transferUsage(err) {
					return usageError{err} // the target or the mapping to change: exit 2
				}
				return err
			}
			return nil
		},
	}
	c.Flags().StringVar(&from, "from", "", "the export: STORE/ID (a directory or URL, then the id), or an id with --store")
	c.Flags().StringVar(&loc, "store", "", exportStoreHelp)
	c.Flags().BoolVar(&plan, "plan", false, "print what the import would do, and change nothing")
	c.Flags().StringVar(&mappingFile, "mapping", "", "YAML file saying what to do where a target at a newer version differs from the export (renamed or dropped tables and columns, allowed casts), or, into another engine, which lossy conversions it allows (casts); see docs/transfer.md")
	c.Flags().IntVar(&jobs, "jobs", 2, "connections loading and verifying at once: tables in parallel, each once the tables it references are in (SQLite loads through one); a large table with an integer key verified in key ranges")
	c.Flags().BoolVar(&keepPaused, "keep-paused", false, "leave the workloads the export paused paused in the target")
	c.Flags().BoolVar(&resumeRecorded, "resume-recorded", false, "resume the workloads the export paused, once the data is verified, with the export's own --resume statement (shown by --plan): ferry runs no SQL read from an export unless told to")
	c.Flags().StringVar(&resume, "resume", "", "SQL resuming one workload in the target, instead of the export's --resume (its arguments are the paused row's values; for a target of another engine, or a statement that failed)")
	identityFlags(c, &identityFile, &passphraseFile)
	jsonFlag(c)
	a.jsonArgs(c)
	c.RunE = a.jsonFailures(c.RunE)
	return c
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// targetMigrator is migrator for the target of an import or a copy, or
// readMigrator for a plan (which creates no SQLite file). When the target
// is a SQLite file that does not exist yet, unmake, given the command's
// outcome, removes the file it made if the command failed before writing
// anything into it: a mistyped path, a wrong key or a refused export
// leaves no empty database behind. A file with anything in it stays, for
// the same command to go on from.
func (a *app) targetMigrator(ctx context.Context, plan bool) (db *database.DB, mig *migrate.Migrator, unmake func(error), err error) {
	if plan {
		db, mig, err = a.readMigrator(ctx)
		return db, mig, func(error) {}, err
	}
	var made string
	if u, err := a.databaseURL(); err == nil && u.Kind == database.SQLite && u.Database != ":memory:" {
		if _, err := os.Stat(u.Database); errors.Is(err, fs.ErrNotExist) {
			made = u.Database
		}
	}
	db, mig, err = a.migrator(ctx)
	if err != nil || made == "" {
		return db, mig, func(error) {}, err
	}
	return db, mig, func(failed error) {
		if failed == nil {
			return
		}
		var n int
		// Also after Ctrl-C, which cancelled ctx.
		if err := db.QueryRowContext(context.WithoutCancel(ctx), `SELECT count(*) FROM sqlite_schema`).Scan(&n); err != nil || n > 0 {
			return
		}
		db.Close()
		for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
			os.Remove(made + suffix)
		}
	}, nil
}

// transferOutcome prints an import's or copy's report as JSON and
// returns its exit code: 2 for a target that is not empty, as without
// --json.
func (a *app) transferOutcome(rep *transfer.ImportReport, err error) error {
	perr := a.printOutcome(map[string]any{"ok": err == nil, "report": rep}, err)
	if transferUsage(err) {
		return exitError{exitUsage}
	}
	return perr
}

// jsonArgs checks c's arguments in its RunE instead of before it, so
// that jsonFailures reports a wrong argument count as JSON too.
func (a *app) jsonArgs(c *cobra.Command) {
	check, run := c.Args, c.RunE
	if check == nil {
		return
	}
	c.Args = cobra.ArbitraryArgs
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return err
		}
		return run(cmd, args)
	}
}

// jsonFailures makes a command that prints an outcome with --json print
// one when it fails before it has one too: {"ok": false, "error": ...}.
func (a *app) jsonFailures(run func(*cobra.Command, []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		err := run(cmd, args)
		var printed exitError // printOutcome's: the outcome is out
		if err == nil || !a.json || errors.As(err, &printed) {
			return err
		}
		perr := a.printOutcome(map[string]any{"ok": false}, err)
		var usage usageError
		if errors.As(err, &usage) {
			return exitError{exitUsage}
		}
		return perr
	}
}

// transferUsage says whether err is for what the operator asked (exit 2):
// a target that is not empty or holds another import, a mapping, a window
// or a table selection that does not fit, a copy onto its own source, a
// source ferry does not manage, paused workloads it was not told how to
// resume: each refused before anything changed.
func transferUsage(err error) bool {
	for _, e := range []error{transfer.ErrNotEmpty, transfer.ErrMapping, transfer.ErrWindow, transfer.ErrSelection, transfer.ErrSameDatabase, transfer.ErrResumeChoice, transfer.ErrResumeEngine, transfer.ErrOtherImport, transfer.ErrNoSource} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func (a *app) printImport(r *transfer.ImportReport) {
	if !r.Planned && !r.Verified {
		// It failed: the steps did not all happen, and the error says
		// where it stopped (and what stopped a load: not said twice).
		for _, p := range r.Problems {
			if p.What != "load" && p.What != "chunk" && p.What != "value" {
				a.eprintf("ferry: %s\n", p)
			}
		}
		return
	}
	switch {
	case r.Source != "" && r.Planned:
		a.printf("copy of %s (%s, schema version %d) into %s (version %d) would:\n", r.Source, r.Engine, r.ExportVersion, r.Target, r.StartVersion)
	case r.Source != "":
		a.printf("copy of %s into %s:\n", r.Source, r.Target)
	case r.Planned:
		a.printf("import of export %s (%s, schema version %d) into %s (version %d) would:\n", r.ExportID, r.Engine, r.ExportVersion, r.Target, r.StartVersion)
	case r.Resumed:
		a.printf("import of export %s into %s went on from where an earlier run stopped:\n", r.ExportID, r.Target)
	default:
		a.printf("import of export %s into %s:\n", r.ExportID, r.Target)
	}
	for _, s := range r.Steps {
		a.printf("  %s\n", s)
	}
	if r.Planned {
		w := tabwriter.NewWriter(safeWriter{a.stdout}, 0, 4, 2, ' ', 0)
		fmt.Fprintf(w, "STEP\tTABLE\tROWS\tCOLUMNS\n")
		for _, t := range r.Tables {
			cols := make([]string, len(t.Columns))
			for i, c := range t.Columns {
				from, to := c.From, c.To
				if from == "" {
					from = "(none)"
				}
				if to == "" {
					to = "(none)"
				}
				cols[i] = from + " -> " + to
				if c.Note != "" {
					cols[i] += " [" + c.Note + "]"
				}
			}
			name := t.Name
			if t.From != "" {
				name = t.From + " -> " + t.Name
			}
			fmt.Fprintf(w, "%d\t%s\t%s\t%s\n", t.Group, name, rowCount(t.Rows), strings.Join(cols, ", "))
		}
		w.Flush()
		if len(r.LeftOut) > 0 {
			a.printf("left out by the mapping (not loaded): %s\n", strings.Join(r.LeftOut, ", "))
		}
		return
	}
	for _, p := range r.Problems {
		a.eprintf("ferry: %s\n", p)
	}
	if r.WorkloadsResumed > 0 {
		a.printf("resumed %d workloads the export had paused\n", r.WorkloadsResumed)
	}
	if n := len(r.WorkloadsLeftPaused); n > 0 {
		rows := make([]string, n)
		for i, p := range r.WorkloadsLeftPaused {
			rows[i] = string(p)
		}
		a.printf("left paused (--keep-paused): %d workloads the export paused, to resume by hand: %s\n", n, strings.Join(rows, ", "))
	}
	if r.Verified && len(r.Tables) > 0 {
		var rows int64
		for _, t := range r.Tables {
			rows += t.Rows
		}
		what := "the export"
		if r.Source != "" {
			what = "the source's snapshot"
		}
		a.printf("verified: %d tables, %d rows match %s; the database is at version %d (%s)\n", len(r.Tables), rows, what, r.FinalVersion,
			fmtDuration(time.Duration(r.DurationMS)*time.Millisecond))
		if len(r.NotExported) > 0 {
			a.printf("not in the export (taken with --tables or --exclude), so left as the migrations made them: %s\n", strings.Join(r.NotExported, ", "))
		}
	}
}

// window is the --since window of an export or copy (nil without one):
// --time-column's columns, else ferry.yaml's for the tables it takes.
func (a *app) window(cmd *cobra.Command, since string, columns map[string]string, tables, exclude []string) (*transfer.Window, error) {
	if since == "" {
		if cmd.Flags().Changed("time-column") {
			return nil, usageErrorf("--time-column needs --since")
		}
		return nil, nil
	}
	d, at, err := transfer.ParseSince(since)
	if err != nil {
		return nil, usageError{err}
	}
	if !at.IsZero() && at.After(time.Now()) {
		return nil, usageErrorf("--since %s is in the future: every table with a time column would be exported empty; give a date before now, or a duration such as 30d", since)
	}
	if len(columns) == 0 {
		columns = map[string]string{}
		for table, col := range a.cfg.ExportTimeColumns {
			if !slices.Contains(exclude, table) && (len(tables) == 0 || slices.Contains(tables, table)) {
				columns[table] = col
			}
		}
	}
	if len(columns) == 0 && len(a.cfg.ExportTimeColumns) > 0 {
		return nil, usageErrorf("--since: none of the tables exported has a time column: export_time_columns in ferry.yaml names %s, which --tables/--exclude leave out; export without --since, or name a selected table's time column with --time-column TABLE=COLUMN", strings.Join(slices.Sorted(maps.Keys(a.cfg.ExportTimeColumns)), ", "))
	}
	if len(columns) == 0 {
		return nil, usageErrorf("--since needs the tables' time columns: --time-column TABLE=COLUMN (repeatable), or export_time_columns in ferry.yaml")
	}
	return &transfer.Window{Since: d, Cutoff: at, Reach: since, Columns: columns}, nil
}

// readMapping reads --mapping FILE (nil for "").
func readMapping(file string) (*transfer.Mapping, error) {
	if file == "" {
		return nil, nil
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, usageError{fmt.Errorf("--mapping: %w", err)}
	}
	defer f.Close()
	mapping, err := transfer.ParseMapping(f)
	if err != nil {
		return nil, usageError{fmt.Errorf("--mapping %s: %w", file, err)}
	}
	return mapping, nil
}

func (a *app) copyCmd() *cobra.Command {
	var from, to, mappingFile, since string
	var timeColumns map[string]string
	var tables, exclude []string
	var plan bool
	c := &cobra.Command{
		Use:   "copy --from URL --to URL [--plan]",
		Short: "Copy a database's tables into a new, empty database, through the migrations, verified",
		Long: `Copy the tables of --from into --to, an empty database, with no store between
them: "ferry export" piped straight into "ferry import", for cloning an
environment to a new release in one command, or a production database onto a
laptop's SQLite file.

Across engines (PostgreSQL, MySQL/MariaDB, SQLite, any pair) --dir must hold
migrations that make the same versions in the target's engine; every value is
converted to the target column's type, exactly or checked value by value; a
conversion that may round (a decimal into SQLite's float) is refused unless
--mapping allows it (casts: [table.column]). See docs/transfer.md.

Before anything is written, ferry checks that both databases are reachable
and different, that --to is empty (--plan checks it too, and changes
nothing), and that the migrations in --dir include every migration --from
applied (unchanged, when both are of one engine: across engines the files
differ by design, and only their versions are compared). Then it reads --from in one snapshot holding its migration lock, migrates --to to
--from's schema version, loads and verifies every table under --to's lock
(as "ferry import" does), and migrates --to to the latest version.

A copy that stops half way cannot be resumed (the source has moved on):
drop --to, create it empty, and run the copy again. --plan prints the steps
and changes nothing.`,
		Example: "  ferry copy --from postgres://app@prod-db/app --to postgres://app@staging-db/app_new --dir ./migrations",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if from == "" || to == "" {
				return usageErrorf("ferry copy needs --from URL and --to URL")
			}
			a.cfg.Database, a.cfg.databaseFrom = from, "--from"
			src, smig, err := a.readMigrator(ctx)
			if err != nil {
				return err
			}
			defer src.Close()
			mapping, err := readMapping(mappingFile)
			if err != nil {
				return err
			}
			window, err := a.window(cmd, since, timeColumns, tables, exclude)
			if err != nil {
				return err
			}
			a.cfg.Database, a.cfg.databaseFrom = to, "--to"
			dst, dmig, unmake, err := a.targetMigrator(ctx, plan)
			if err != nil {
				return err
			}
			defer dst.Close()
			rep, err := transfer.Copy(ctx, src, smig, dst, dmig, transfer.CopyOptions{
				Options: a.transferOptions(), Tables: tables, Exclude: exclude, Plan: plan, Mapping: mapping, Window: window,
			})
			unmake(err)
			if a.json && rep != nil {
				return a.transferOutcome(rep, err)
			}
			if rep != nil {
				a.printImport(rep)
			}
			if transferUsage(err) {
				return usageError{err}
			}
			return err
		},
	}
	c.Flags().StringVar(&since, "since", "", "copy only the rows of the last 30d, 2w, 36h... (or since a date) in the tables with a time column, closed under foreign keys (as ferry export --since)")
	c.Flags().StringToStringVar(&timeColumns, "time-column", nil, "TABLE=COLUMN: a table's time column, for --since (repeatable; ferry.yaml export_time_columns)")
	c.Flags().StringVar(&from, "from", "", "the source database URL (the password may come from ${VAR} in ferry.yaml instead)")
	c.Flags().StringVar(&to, "to", "", "the target database URL: an empty database, of any engine")
	c.Flags().StringVar(&mappingFile, "mapping", "", "YAML file allowing lossy conversions across engines (casts: [table.column]); see docs/transfer.md")
	c.Flags().StringSliceVar(&tables, "tables", nil, "copy only these tables (comma-separated)")
	c.Flags().StringSliceVar(&exclude, "exclude", nil, "leave these tables out (comma-separated)")
	c.Flags().BoolVar(&plan, "plan", false, "print what the copy would do, and change nothing")
	jsonFlag(c)
	a.jsonArgs(c)
	c.RunE = a.jsonFailures(c.RunE)
	return c
}
