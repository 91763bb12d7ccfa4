package migrate

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/ferrydb/ferry/dialect"
)

// LoadError lists every problem found while loading migrations, one error
// per file problem, so that all of them can be fixed in one pass.
type LoadError struct {
	Errs []error
}

func (e *LoadError) Error() string {
	msgs := make([]string, len(e.Errs))
	for i, err := range e.Errs {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "\n")
}

// Unwrap returns the individual errors, for errors.Is and errors.As.
func (e *LoadError) Unwrap() []error { return e.Errs }

// newLoadError sorts errs for a stable report, or returns nil.
func newLoadError(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	slices.SortStableFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return &LoadError{Errs: errs}
}

// fileSource is where a migration's SQL is read from, until it is parsed.
type fileSource struct {
	fsys     fs.FS
	up, down string // names in fsys; down is "" without a .down.sql file
	display  string // directory shown in messages
	kind     fileKind
	syn      dialect.Syntax
	env      LookupEnv // for goose's ENVSUB

	once sync.Once
	err  error
}

func (s *fileSource) show(name string) string {
	if s.display == "" || s.display == "." {
		return name
	}
	return path.Join(s.display, name)
}

// parse reads and parses the migration's file(s), once; it fills the
// migration's parsed fields.
func (m *Migration) parse() error {
	s := m.src
	if s == nil {
		return nil
	}
	s.once.Do(func() { s.err = m.parseFiles(s) })
	return s.err
}

func (m *Migration) parseFiles(s *fileSource) error {
	read := func(name string, kind fileKind) (*parsedFile, error) {
		data, err := fs.ReadFile(s.fsys, name)
		if err != nil {
			return nil, &FileError{File: s.show(name), Msg: fmt.Sprintf("cannot read: %v", err)}
		}
		if msg := notText(data); msg != "" {
			return nil, &FileError{File: s.show(name), Msg: msg}
		}
		// A file re-saved by a Windows editor starts with a UTF-8
		// byte-order mark: it is not SQL, and not part of the checksum.
		src := strings.TrimPrefix(string(data), "\ufeff")
		return parseFileEnv(s.show(name), src, s.syn, kind, s.env)
	}
	pf, err := read(s.up, s.kind)
	if err != nil {
		return err
	}
	m.Format, m.Up, m.Down, m.NoTransaction, m.Contract, m.Checksum = pf.format, pf.up, pf.down, pf.noTx, pf.contract, pf.checksum
	m.DDLLockTimeout = pf.lockWait
	m.Directives = pf.directives
	m.secrets, m.downErr = pf.secrets, pf.downErr
	if s.down != "" {
		df, err := read(s.down, migrateDown)
		if err != nil {
			return err
		}
		m.Down = df.down
		m.NoTransaction = m.NoTransaction || df.noTx
	}
	return nil
}

// notText says why data cannot be a migration file's SQL: a UTF-16 file
// (as some Windows editors save) or one with NUL bytes, which no database
// takes in SQL text. It returns "" for text.
func notText(data []byte) string {
	if bytes.HasPrefix(data, []byte{0xFF, 0xFE}) || bytes.HasPrefix(data, []byte{0xFE, 0xFF}) {
		return "the file is UTF-16 text: save it as UTF-8"
	}
	if i := bytes.IndexByte(data, 0); i >= 0 {
		line := 1 + bytes.Count(data[:i], []byte("\n"))
		return fmt.Sprintf("line %d: the file has a NUL byte, so it is not UTF-8 text (UTF-16 without a byte-order mark, or not a text file): save it as UTF-8", line)
	}
	return ""
}

// parseAll parses the given migrations, in parallel, and reports every
// problem at once.
func parseAll(migs []*Migration) error {
	var todo []*Migration
	for _, m := range migs {
		if m.src != nil {
			todo = append(todo, m)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	errs := make([]error, len(todo))
	workers := min(runtime.GOMAXPROCS(0)*2, len(todo))
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				errs[i] = todo[i].parse()
			}
		}()
	}
	for i := range todo {
		next <- i
	}
	close(next)
	wg.Wait()
	var out []error
	for _, err := range errs {
		if err != nil {
			out = append(out, err)
		}
	}
	return newLoadError(out)
}

// Load reads and parses the migrations in the top directory of fsys: ferry
// and goose files (<version>_<name>.sql) and golang-migrate pairs
// (<version>_<name>.up.sql and .down.sql), plus the Go migrations given.
// display is prefixed to file names in messages (for example the directory
// the FS was opened from). syn says how to split statements. goose's ENVSUB
// reads the process's environment. Every problem is reported at once, as a
// *LoadError.
func Load(fsys fs.FS, display string, syn dialect.Syntax, goMigrations ...*GoMigration) ([]*Migration, error) {
	migs, errs := scanAll(fsys, display, syn, os.LookupEnv, goMigrations...)
	var le *LoadError
	if err := parseAll(migs); errors.As(err, &le) {
		errs = append(errs, le.Errs...)
	}
	if err := newLoadError(errs); err != nil {
		return nil, err
	}
	return migs, nil
}

// scan lists the migrations of fsys from their file names alone, checking
// names, versions and pairs; their SQL is parsed when it is needed.
func scan(fsys fs.FS, display string, syn dialect.Syntax, env LookupEnv, goMigrations ...*GoMigration) ([]*Migration, error) {
	migs, errs := scanAll(fsys, display, syn, env, goMigrations...)
	if err := newLoadError(errs); err != nil {
		return nil, err
	}
	return migs, nil
}

// scanAll is scan returning the migrations it could list along with the
// problems it found.
func scanAll(fsys fs.FS, display string, syn dialect.Syntax, env LookupEnv, goMigrations ...*GoMigration) ([]*Migration, []error) {
	var entries []fs.DirEntry
	if fsys != nil {
		var err error
		entries, err = readDir(fsys)
		if err != nil {
			return nil, []error{fmt.Errorf("read migrations directory %s: %w", displayDir(display), err)}
		}
	}
	var errs []error
	n := len(entries) + len(goMigrations)
	byVersion := make(map[int64]*Migration, n)
	// origin names where a migration came from, for duplicate errors.
	origin := func(m *Migration) string {
		if m.Source != "" {
			return m.Source
		}
		return fmt.Sprintf("Go migration %d (%s)", m.Version, m.Name)
	}
	goFiles := map[int64]string{}
	// The directory as shown in errors, joined to each name by hand:
	// path.Join for each of ten thousand files is measurable.
	prefix := ""
	if display != "" && display != "." {
		prefix = strings.TrimSuffix(path.Clean(display), "/") + "/"
	}
	show := func(name string) string { return prefix + name }
	dup := func(v int64, file, prev string) error {
		// Name the files in a stable order, whatever order the directory gave.
		if prev > file {
			file, prev = prev, file
		}
		return &FileError{File: file, Msg: fmt.Sprintf("duplicate version %d: %s has it too", v, prev)}
	}
	add := func(m *Migration, file string) bool {
		if prev, ok := byVersion[m.Version]; ok {
			errs = append(errs, dup(m.Version, file, origin(prev)))
			return false
		}
		byVersion[m.Version] = m
		return true
	}

	pairs := map[int64]*Migration{} // golang-migrate migrations by version
	type downFile struct {
		v          int64
		name, file string
		mname      string
	}
	var downs []downFile
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") {
			continue
		}
		if strings.HasSuffix(name, ".go") {
			file := show(name)
			if v, _, ok := splitVersion(strings.TrimSuffix(name, ".go")); ok && !strings.HasSuffix(name, "_test.go") {
				goFiles[v] = file
			}
			continue
		}
		if !strings.HasSuffix(name, ".sql") {
			// A versioned file ending in .SQL or .Sql is a migration
			// someone meant to run: refuse it rather than skip it.
			if ext := path.Ext(name); strings.EqualFold(ext, ".sql") {
				if _, _, reason := parseVersionPrefix(strings.TrimSuffix(name, ext)); reason == "" {
					errs = append(errs, &FileError{File: show(name), Msg: fmt.Sprintf("extension %s: ferry reads migration files ending in .sql, in lower case; rename the file", ext)})
				}
			}
			continue
		}
		file := show(name)
		base := strings.TrimSuffix(name, ".sql")
		kind := annotated
		switch {
		case strings.HasSuffix(base, ".up"):
			kind, base = migrateUp, strings.TrimSuffix(base, ".up")
		case strings.HasSuffix(base, ".down"):
			kind, base = migrateDown, strings.TrimSuffix(base, ".down")
		}
		v, mname, reason := parseVersionPrefix(base)
		if reason != "" {
			errs = append(errs, &FileError{File: file, Msg: reason})
			continue
		}
		if kind == migrateDown {
			downs = append(downs, downFile{v: v, name: name, file: file, mname: mname})
			continue
		}
		m := &Migration{Version: v, Name: mname, Source: file, src: &fileSource{fsys: fsys, up: name, display: display, kind: kind, syn: syn, env: env}}
		if kind == migrateUp {
			m.Format = FormatMigrate
		}
		if add(m, file) && kind == migrateUp {
			pairs[v] = m
		}
	}
	for _, d := range downs {
		m, ok := pairs[d.v]
		if !ok {
			if prev, taken := byVersion[d.v]; taken {
				errs = append(errs, dup(d.v, d.file, origin(prev)))
			} else {
				up := strings.TrimSuffix(d.name, ".down.sql") + ".up.sql"
				errs = append(errs, &FileError{File: d.file, Msg: fmt.Sprintf("down migration without an up part: add %s", up)})
			}
			continue
		}
		m.src.down = d.name
	}
	for _, g := range goMigrations {
		if g == nil {
			continue
		}
		src := fmt.Sprintf("Go migration %d (%s)", g.Version, g.Name)
		switch {
		case g.Version <= 0:
			errs = append(errs, fmt.Errorf("%s: version must be positive", src))
			continue
		case g.Up == nil:
			errs = append(errs, fmt.Errorf("%s: Up function is missing", src))
			continue
		}
		delete(goFiles, g.Version)
		add(&Migration{
			Version: g.Version, Name: g.Name, Format: FormatGo,
			UpFunc: g.Up, DownFunc: g.Down, NoTransaction: g.NoTransaction, Contract: g.Contract,
		}, src)
	}
	for v, file := range goFiles {
		if _, ok := byVersion[v]; ok {
			continue
		}
		errs = append(errs, &FileError{File: file, Msg: fmt.Sprintf("Go migration file for version %d, but no Go migration %d is registered: ferry cannot compile it; register it with migrate.WithGoMigrations or convert it to SQL", v, v)})
	}
	out := make([]*Migration, 0, len(byVersion))
	for _, m := range byVersion {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b *Migration) int { return cmp.Compare(a.Version, b.Version) })
	return out, errs
}

// readDir lists the top directory of fsys in the order the file system
// gives (the migrations are sorted by version afterwards; fs.ReadDir would
// first sort ten thousand names for nothing).
func readDir(fsys fs.FS) ([]fs.DirEntry, error) {
	f, err := fsys.Open(".")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if d, ok := f.(fs.ReadDirFile); ok {
		return d.ReadDir(-1)
	}
	return fs.ReadDir(fsys, ".")
}

// splitVersion splits "00042_add_users" into 42 and "add_users".
func splitVersion(base string) (int64, string, bool) {
	v, name, reason := parseVersionPrefix(base)
	return v, name, reason == ""
}

// maxVersionDigits is the most digits a version can have: int64 holds
// every 18-digit number and some of 19.
const maxVersionDigits = 19

// parseVersionPrefix splits "00042_add_users" into 42 and "add_users", or
// says why the name does not start with a usable version.
func parseVersionPrefix(base string) (v int64, name, reason string) {
	digits := 0
	for digits < len(base) && base[digits] >= '0' && base[digits] <= '9' {
		digits++
	}
	switch {
	case digits == 0:
		return 0, "", "file name must start with a version number: <version>_<name>.sql (or .up.sql/.down.sql)"
	case digits == len(base) || base[digits] != '_':
		return 0, "", fmt.Sprintf("file name must have an underscore after the version %s: <version>_<name>.sql", base[:digits])
	}
	num := strings.TrimLeft(base[:digits], "0")
	if num == "" {
		return 0, "", "version 0 is not allowed: versions start at 1 (0 means \"no migration applied\")"
	}
	if len(num) > maxVersionDigits {
		return 0, "", fmt.Sprintf("version %s has %d digits: at most %d fit (the largest version is %d); a timestamp version such as 20261129120000 has 14", base[:digits], len(num), maxVersionDigits, int64(math.MaxInt64))
	}
	v, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		return 0, "", fmt.Sprintf("version %s is too large: the largest version is %d", base[:digits], int64(math.MaxInt64))
	}
	return v, base[digits+1:], ""
}

func displayDir(d string) string {
	if d == "" {
		return "."
	}
	return d
}

// IsLoadError reports whether err came from reading migration files.
func IsLoadError(err error) bool {
	var le *LoadError
	return errors.As(err, &le)
}

// FileVersion returns the version a migration file name carries
// ("00042_add_users.sql" -> 42), and whether the name is one ferry reads as
// a migration.
func FileVersion(filename string) (int64, bool) {
	base, ok := strings.CutSuffix(filename, ".sql")
	if !ok {
		return 0, false
	}
	base = strings.TrimSuffix(strings.TrimSuffix(base, ".up"), ".down")
	v, _, ok := splitVersion(base)
	return v, ok
}
