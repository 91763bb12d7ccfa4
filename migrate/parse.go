package migrate

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/ferrydb/ferry/dialect"
	"github.com/ferrydb/ferry/internal/redact"
)

// fileKind says how a migration file is laid out.
type fileKind int

const (
	annotated   fileKind = iota // <version>_<name>.sql with ferry or goose annotations
	migrateUp                   // golang-migrate <version>_<name>.up.sql
	migrateDown                 // golang-migrate <version>_<name>.down.sql
)

// parsedFile is what one SQL file contributes to a migration.
type parsedFile struct {
	format         Format
	up, down       *Section
	noTx, contract bool
	allowEmpty     bool
	// lockWait is the -- +ferry ddl-lock-timeout annotation's value (nil
	// without one).
	lockWait *time.Duration
	checksum string // of the up section, when the file has one
	// secrets are values of secret-named environment variables that
	// ENVSUB put into the statements.
	secrets []string
	// directives are the file's -- ferry: comments.
	directives []Directive
	// downLine is the line of the down annotation (0 without one);
	// downErr a substitution error in the down part, reported when the
	// migration is reverted.
	downLine int
	downErr  error
}

// Annotation names, as written after "-- +ferry".
var ferryAnnotations = []string{"up", "down", "no-transaction", "contract", "ddl-lock-timeout DURATION", "allow-empty", "statement-begin", "statement-end"}

// goose annotations, as written after "-- +goose" (compared case-insensitively).
var gooseAnnotations = []string{"Up", "Down", "StatementBegin", "StatementEnd", "NO TRANSACTION", "ENVSUB ON", "ENVSUB OFF"}

// parser holds the state of parsing one file.
type parser struct {
	file string
	src  string
	kind fileKind
	out  parsedFile

	section   *Section
	upLine    int
	downLine  int
	blockLine int // line of an open statement-begin, 0 if none
	first     int // index of the first significant piece of the open statement, -1 if none
	last      int
	pieces    []piece
	sum       strings.Builder
	upStmts   int
	upTODO    bool // the up section holds TODOMarker
}

// TODOMarker is the comment a new migration's up section starts with. An
// up section that holds it and no statement has not been written yet, in
// any file format.
const TODOMarker = "-- TODO: write the migration's SQL here (an up section left empty is refused)"

// parseFile reads one migration file, with ENVSUB taking variables from
// the process's environment. Every error names the file and, when it can,
// the line.
func parseFile(file, src string, syn dialect.Syntax, kind fileKind) (*parsedFile, error) {
	return parseFileEnv(file, src, syn, kind, os.LookupEnv)
}

// parseFileEnv is parseFile with ENVSUB variables from env.
func parseFileEnv(file, src string, syn dialect.Syntax, kind fileKind, env LookupEnv) (*parsedFile, error) {
	if kind != annotated || !hasEnvsub(src) {
		return parseSource(file, src, syn, kind)
	}
	// goose substitutes before it splits statements: so does ferry, so that
	// a value may hold a dollar quote or whole statements. The checksum is
	// that of the file as written, the same in every environment.
	if env == nil {
		env = os.LookupEnv
	}
	sub := substituteEnv(file, src, env)
	pf, err := parseSource(file, sub.src, syn, kind)
	if err != nil {
		if line := errorLine(err); sub.lineErrs[line] != nil {
			return nil, sub.lineErrs[line]
		}
		return nil, err
	}
	pf.checksum = rawChecksum(file, src, syn, kind)
	// A line that could not be substituted is an error where it is needed:
	// at once in the up part, when reverting in the down part (goose reads
	// only the part it runs).
	for line, lerr := range sub.lineErrs {
		switch {
		case pf.down != nil && line > pf.downLine:
			if pf.downErr == nil || line < errorLine(pf.downErr) {
				pf.downErr = lerr
			}
		default:
			return nil, firstLineError(sub.lineErrs, pf)
		}
	}
	pf.secrets = sub.secrets
	if len(sub.secrets) > 0 {
		for _, sec := range []*Section{pf.up, pf.down} {
			if sec == nil {
				continue
			}
			for i, st := range sec.Statements {
				if shown := redact.Secrets(st.SQL, sub.secrets...); shown != st.SQL {
					sec.Statements[i].shown = shown
				}
			}
		}
	}
	return pf, nil
}

// firstLineError returns the first substitution error outside the down
// part.
func firstLineError(errs map[int]error, pf *parsedFile) error {
	first := 0
	for line := range errs {
		if (pf.down == nil || line <= pf.downLine) && (first == 0 || line < first) {
			first = line
		}
	}
	return errs[first]
}

// errorLine is the line of a *FileError, 0 for other errors.
func errorLine(err error) int {
	var fe *FileError
	if errors.As(err, &fe) {
		return fe.Line
	}
	return 0
}

// rawChecksum is the checksum of a file's up part before ENVSUB. A file
// that only parses once substituted (a dollar quote written $$$$) is
// hashed whole.
func rawChecksum(file, src string, syn dialect.Syntax, kind fileKind) string {
	if pf, err := parseSource(file, src, syn, kind); err == nil && pf.up != nil {
		return pf.checksum
	}
	h := sha256.Sum256([]byte(src))
	return hex.EncodeToString(h[:])
}

// parseSource parses a file's text as it is.
func parseSource(file, src string, syn dialect.Syntax, kind fileKind) (*parsedFile, error) {
	pieces, err := lex(src, syn)
	if err != nil {
		le := err.(*lexError)
		return nil, &FileError{File: file, Line: le.line, Msg: le.msg}
	}
	p := &parser{file: file, src: src, kind: kind, pieces: pieces, first: -1}
	switch kind {
	case migrateUp:
		p.out.format = FormatMigrate
		p.out.up = &Section{File: file}
		p.section = p.out.up
	case migrateDown:
		p.out.format = FormatMigrate
		p.out.down = &Section{File: file}
		p.section = p.out.down
	}
	for i, pc := range pieces {
		switch pc.kind {
		case pLineComment:
			if p.section != nil && p.section == p.out.up && strings.TrimSpace(src[pc.start:pc.end]) == TODOMarker {
				p.upTODO = true
			}
			if d, ok := directive(src, pc); ok && (p.section == nil || p.section == p.out.up) {
				p.out.directives = append(p.out.directives, d)
			}
			if pc.bol {
				if err := p.annotation(i, pc); err != nil {
					return nil, err
				}
			}
		case pBlockComment:
		case pSemicolon:
			if p.blockLine > 0 {
				p.mark(i)
				continue
			}
			if err := p.flush(); err != nil {
				return nil, err
			}
		case pQuoted:
			p.mark(i)
		case pCode:
			if strings.TrimSpace(src[pc.start:pc.end]) != "" {
				p.mark(i)
			}
		}
	}
	if p.blockLine > 0 {
		return nil, p.errorf(p.blockLine, "statement-begin has no matching statement-end")
	}
	if err := p.flush(); err != nil {
		return nil, err
	}
	if kind == annotated && p.out.up == nil {
		switch p.out.format {
		case FormatGoose:
			return nil, p.errorf(0, "no -- +goose Up section: a migration needs an up part")
		default:
			return nil, p.errorf(0, "no -- +ferry up section: a migration needs an up part (start the file with a line \"-- +ferry up\", or \"-- +goose Up\" for goose files)")
		}
	}
	if p.out.up != nil && len(p.out.up.Statements) == 0 && !p.out.allowEmpty {
		switch {
		case p.out.format == FormatFerry:
			return nil, p.errorf(p.upLine, "the up section is empty: write the migration's SQL after -- +ferry up, or add -- +ferry allow-empty if it is meant to change nothing")
		case p.upTODO:
			return nil, p.errorf(p.upLine, "the up section is empty: the file is still the template a new migration starts with; write the migration's SQL")
		case p.kind == migrateUp:
			return nil, p.errorf(0, "the file is empty: write the migration's SQL, or add a line -- +ferry allow-empty if it is meant to change nothing")
		}
	}
	if p.out.up != nil {
		h := sha256.Sum256([]byte(p.sum.String()))
		p.out.checksum = hex.EncodeToString(h[:])
	}
	p.out.downLine = p.downLine
	return &p.out, nil
}

func (p *parser) errorf(line int, format string, args ...any) error {
	return &FileError{File: p.file, Line: line, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) mark(i int) {
	if p.first < 0 {
		p.first = i
	}
	p.last = i
}

// flush ends the open statement, if any, and adds it to the current section.
func (p *parser) flush() error {
	if p.first < 0 {
		return nil
	}
	fi, li := p.first, p.last
	first, last := p.pieces[fi], p.pieces[li]
	p.first = -1
	start, line := first.start, first.line
	if first.kind == pCode {
		text := p.src[first.start:first.end]
		lead := len(text) - len(strings.TrimLeft(text, " \t\r\n\f\v"))
		start += lead
		line += strings.Count(text[:lead], "\n")
	}
	end := last.end
	if last.kind == pCode {
		end = last.start + len(strings.TrimRight(p.src[last.start:last.end], " \t\r\n\f\v"))
	}
	if p.section == nil {
		if p.out.format == FormatGoose {
			return p.errorf(line, "SQL outside a section: put statements after -- +goose Up or -- +goose Down")
		}
		return p.errorf(line, "SQL outside a section: put statements after -- +ferry up or -- +ferry down")
	}
	if isDelimiter(p.src[start:end]) {
		return p.errorf(line, "DELIMITER is a command of the mysql client, not SQL, and no server understands it: put the statement between -- +ferry statement-begin and -- +ferry statement-end (goose: -- +goose StatementBegin / StatementEnd) instead")
	}
	multi := false
	for _, pc := range p.pieces[fi : li+1] {
		multi = multi || pc.kind == pSemicolon
	}
	col := start - strings.LastIndexByte(p.src[:start], '\n')
	p.section.Statements = append(p.section.Statements, Statement{SQL: p.src[start:end], Line: line, Column: col, multi: multi})
	if p.section == p.out.up {
		if p.upStmts > 0 {
			p.sum.WriteByte(';')
		}
		p.upStmts++
		normalize(&p.sum, p.src, p.pieces[fi:li+1])
	}
	return nil
}

// directive returns a line comment of the form "-- ferry:NAME ..." as a
// Directive.
func directive(src string, pc piece) (Directive, bool) {
	text := strings.TrimSpace(strings.TrimPrefix(src[pc.start:pc.end], "--"))
	if !strings.HasPrefix(text, "ferry:") {
		return Directive{}, false
	}
	return Directive{Line: pc.line, Text: strings.TrimPrefix(text, "ferry:")}, true
}

// isDelimiter reports whether a statement is the mysql client's DELIMITER
// command.
func isDelimiter(stmt string) bool {
	const kw = "DELIMITER"
	return len(stmt) > len(kw) && strings.EqualFold(stmt[:len(kw)], kw) && (stmt[len(kw)] == ' ' || stmt[len(kw)] == '\t')
}

// annotation handles a line comment that starts a line; comments that are
// not annotations are ignored.
func (p *parser) annotation(i int, pc piece) error {
	text := strings.TrimSpace(strings.TrimPrefix(p.src[pc.start:pc.end], "--"))
	tool, rest, _ := strings.Cut(text, " ")
	tool = strings.ToLower(tool)
	if tool != "+ferry" && tool != "+goose" {
		return nil
	}
	directive := strings.TrimSpace(rest)
	switch {
	case tool == "+goose" && p.out.format == FormatFerry, tool == "+ferry" && p.out.format == FormatGoose:
		return p.errorf(pc.line, "file mixes -- +ferry and -- +goose annotations; use one format per file")
	case tool == "+goose" && p.out.format == FormatMigrate:
		return p.errorf(pc.line, "-- +goose annotations do not belong in golang-migrate .up.sql/.down.sql files")
	}
	if p.out.format == "" {
		p.out.format = FormatFerry
		if tool == "+goose" {
			p.out.format = FormatGoose
		}
	}
	name, arg := directive, ""
	if tool == "+goose" {
		name = canonicalGoose(directive)
	} else {
		name = strings.ToLower(directive)
		// Only ddl-lock-timeout takes an argument.
		if first, rest, _ := strings.Cut(name, " "); first == "ddl-lock-timeout" {
			name, arg = first, strings.TrimSpace(rest)
		}
	}
	switch name {
	case "up", "down":
		if p.kind != annotated {
			return p.errorf(pc.line, "-- %s %s does not belong in a golang-migrate file: its name (.up.sql or .down.sql) says which part it is", tool, directive)
		}
		if p.blockLine > 0 {
			return p.errorf(p.blockLine, "statement-begin has no matching statement-end before the %s section at line %d", name, pc.line)
		}
		if err := p.flush(); err != nil {
			return err
		}
		if name == "up" {
			if p.out.up != nil {
				return p.errorf(pc.line, "second up section (the first starts at line %d)", p.upLine)
			}
			p.out.up, p.upLine = &Section{File: p.file}, pc.line
			p.section = p.out.up
		} else {
			if p.out.down != nil {
				return p.errorf(pc.line, "second down section (the first starts at line %d)", p.downLine)
			}
			p.out.down, p.downLine = &Section{File: p.file}, pc.line
			p.section = p.out.down
		}
	case "no-transaction":
		p.out.noTx = true
	case "contract":
		p.out.contract = true
	case "ddl-lock-timeout":
		d, err := time.ParseDuration(arg)
		if arg == "0" {
			d, err = 0, nil
		}
		if err != nil || d < 0 {
			return p.errorf(pc.line, "-- +ferry ddl-lock-timeout takes a duration such as 30s or 2m (0: no limit), not %q", arg)
		}
		p.out.lockWait = &d
	case "allow-empty":
		p.out.allowEmpty = true
	case "statement-begin":
		if p.kind != annotated {
			break
		}
		if p.blockLine > 0 {
			return p.errorf(pc.line, "statement-begin inside the statement begun at line %d", p.blockLine)
		}
		if p.first >= 0 {
			return p.errorf(pc.line, "statement-begin after an unfinished statement (it starts at line %d and has no ';')", p.pieces[p.first].line)
		}
		p.blockLine = pc.line
	case "statement-end":
		if p.blockLine == 0 {
			return p.errorf(pc.line, "statement-end without statement-begin")
		}
		p.blockLine = 0
		return p.flush()
	case "envsub-on", "envsub-off":
		// Applied before parsing: see parseFileEnv.
	default:
		known := ferryAnnotations
		if tool == "+goose" {
			known = gooseAnnotations
		}
		return p.errorf(pc.line, "unknown annotation %q (known: %s)", "-- "+tool+" "+directive, strings.Join(known, ", "))
	}
	return nil
}

// canonicalGoose maps a goose directive to ferry's annotation name.
func canonicalGoose(d string) string {
	switch strings.ToUpper(strings.Join(strings.Fields(d), " ")) {
	case "UP":
		return "up"
	case "DOWN":
		return "down"
	case "STATEMENTBEGIN":
		return "statement-begin"
	case "STATEMENTEND":
		return "statement-end"
	case "NO TRANSACTION":
		return "no-transaction"
	case "ENVSUB ON":
		return "envsub-on"
	case "ENVSUB OFF":
		return "envsub-off"
	}
	return "?" + d
}
