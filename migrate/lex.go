package migrate

import (
	"fmt"
	"strings"

	"github.com/ferrydb/ferry/dialect"
)

// pieceKind classifies a run of SQL text.
type pieceKind int

const (
	pCode         pieceKind = iota // unquoted SQL, whitespace included
	pQuoted                        // string, quoted identifier, dollar-quoted body, /*! */ hint
	pLineComment                   // -- ... or # ... (without the newline)
	pBlockComment                  // /* ... */
	pSemicolon                     // a statement terminator
)

// piece is a run of source text of one kind.
type piece struct {
	kind       pieceKind
	start, end int  // byte offsets in the source
	line       int  // line of start (1-based)
	bol        bool // only whitespace precedes it on its line
}

// lexError is a lexing error at a line.
type lexError struct {
	line int
	msg  string
}

func (e *lexError) Error() string { return e.msg }

// lex splits SQL source text into pieces. It knows single-quoted strings
// (with ” and, where the syntax says so, backslash escapes), double-quoted
// and backquoted identifiers, PostgreSQL dollar quotes, line and block
// comments. An unterminated quote or comment is an error at the line where
// it starts.
func lex(src string, syn dialect.Syntax) ([]piece, error) {
	var out []piece
	line := 1
	bol := true
	codeStart, codeLine, codeBol := 0, 1, true
	i := 0
	flushCode := func(end int) {
		if end > codeStart {
			out = append(out, piece{kind: pCode, start: codeStart, end: end, line: codeLine, bol: codeBol})
		}
	}
	emit := func(kind pieceKind, start, end, startLine int, startBol bool) {
		out = append(out, piece{kind: kind, start: start, end: end, line: startLine, bol: startBol})
	}
	// advance counts newlines in src[from:to] and updates line and bol.
	advance := func(from, to int) {
		for j := from; j < to; j++ {
			switch src[j] {
			case '\n':
				line++
				bol = true
			case ' ', '\t', '\r', '\f', '\v':
			default:
				bol = false
			}
		}
	}
	for i < len(src) {
		c := src[i]
		startLine, startBol := line, bol
		var end int
		var kind pieceKind
		switch {
		case c == '-' && strings.HasPrefix(src[i:], "--"), c == '#' && syn.HashComments:
			end = strings.IndexByte(src[i:], '\n')
			if end < 0 {
				end = len(src)
			} else {
				end += i
			}
			kind = pLineComment
		case c == '/' && strings.HasPrefix(src[i:], "/*"):
			if strings.HasPrefix(src[i:], "/*!") || strings.HasPrefix(src[i:], "/*+") {
				kind = pQuoted // MySQL executable comment or optimizer hint: it is SQL
			} else {
				kind = pBlockComment
			}
			end = blockCommentEnd(src, i, syn.NestedComments)
			if end < 0 {
				return nil, &lexError{startLine, fmt.Sprintf("unterminated /* comment starting at line %d", startLine)}
			}
		case c == '\'':
			backslash := syn.BackslashEscapes || isEString(src, i)
			end = quoteEnd(src, i, '\'', backslash)
			if end < 0 {
				return nil, &lexError{startLine, fmt.Sprintf("unterminated string starting at line %d", startLine)}
			}
			kind = pQuoted
		case c == '"':
			end = quoteEnd(src, i, '"', syn.BackslashEscapes)
			if end < 0 {
				return nil, &lexError{startLine, fmt.Sprintf("unterminated double-quoted name or string starting at line %d", startLine)}
			}
			kind = pQuoted
		case c == '`':
			end = quoteEnd(src, i, '`', false)
			if end < 0 {
				return nil, &lexError{startLine, fmt.Sprintf("unterminated `quoted` name starting at line %d", startLine)}
			}
			kind = pQuoted
		case c == '$' && syn.DollarQuotes && (i == 0 || !isIdentByte(src[i-1])):
			tag, ok := dollarTag(src, i)
			if !ok {
				i++
				advance(i-1, i)
				continue
			}
			close := strings.Index(src[i+len(tag):], tag)
			if close < 0 {
				return nil, &lexError{startLine, fmt.Sprintf("unterminated dollar-quoted string %s starting at line %d", tag, startLine)}
			}
			end = i + len(tag) + close + len(tag)
			kind = pQuoted
		case c == ';':
			end = i + 1
			kind = pSemicolon
		default:
			advance(i, i+1)
			i++
			continue
		}
		flushCode(i)
		emit(kind, i, end, startLine, startBol)
		advance(i, end)
		i = end
		codeStart, codeLine, codeBol = i, line, bol
	}
	flushCode(len(src))
	return out, nil
}

func blockCommentEnd(src string, i int, nested bool) int {
	depth := 0
	for j := i; j < len(src)-1; j++ {
		switch {
		case src[j] == '/' && src[j+1] == '*':
			if depth == 0 || nested {
				depth++
			}
			j++
		case src[j] == '*' && src[j+1] == '/':
			depth--
			j++
			if depth == 0 {
				return j + 1
			}
		}
	}
	return -1
}

// quoteEnd returns the offset just past the quote that closes the one at i.
// A doubled quote is an escaped quote; with backslash, so is \q.
func quoteEnd(src string, i int, q byte, backslash bool) int {
	for j := i + 1; j < len(src); j++ {
		switch src[j] {
		case '\\':
			if backslash {
				j++
			}
		case q:
			if j+1 < len(src) && src[j+1] == q {
				j++
				continue
			}
			return j + 1
		}
	}
	return -1
}

// isEString reports whether the quote at i opens a PostgreSQL E'...' string.
func isEString(src string, i int) bool {
	return i > 0 && (src[i-1] == 'E' || src[i-1] == 'e') && (i == 1 || !isIdentByte(src[i-2]))
}

// dollarTag returns the $tag$ that opens a dollar-quoted string at i.
func dollarTag(src string, i int) (string, bool) {
	for j := i + 1; j < len(src); j++ {
		c := src[j]
		switch {
		case c == '$':
			return src[i : j+1], true
		case c == '_' || c >= 0x80 || (c|0x20 >= 'a' && c|0x20 <= 'z'):
		case c >= '0' && c <= '9' && j > i+1:
		default:
			return "", false
		}
	}
	return "", false
}

func isIdentByte(c byte) bool {
	return c == '_' || c == '$' || c >= 0x80 || (c >= '0' && c <= '9') || (c|0x20 >= 'a' && c|0x20 <= 'z')
}

// normalize appends the checksum form of one statement's pieces to b:
// comments dropped, whitespace outside quotes dropped except for one space
// between two words (where it matters). Cosmetic edits to a migration, such
// as re-indenting or adding comments, do not change it.
func normalize(b *strings.Builder, src string, pieces []piece) {
	space := false
	var prev byte // last byte written, 0 at the start
	put := func(c byte, quoted bool) {
		if space && prev != 0 && (isIdentByte(prev) || prev == '\'' || prev == '"' || prev == '`' || prev == '$') && (isIdentByte(c) || quoted) {
			b.WriteByte(' ')
		}
		space = false
		b.WriteByte(c)
		prev = c
	}
	for _, p := range pieces {
		switch p.kind {
		case pLineComment, pBlockComment:
			space = true
		case pSemicolon:
			put(';', false)
		case pQuoted:
			text := src[p.start:p.end]
			put(text[0], true)
			b.WriteString(text[1:])
			prev = text[len(text)-1]
		case pCode:
			text := src[p.start:p.end]
			for j := 0; j < len(text); j++ {
				switch c := text[j]; c {
				case ' ', '\t', '\n', '\r', '\f', '\v':
					space = true
				default:
					put(c, false)
				}
			}
		}
	}
}
