package lint

import (
	"strings"
	"unicode/utf8"
)

// tokKind classifies a token of one statement.
type tokKind int

const (
	tWord   tokKind = iota // unquoted identifier or keyword
	tIdent                 // quoted identifier: "x", `x`, [x]
	tString                // '...', E'...', $tag$...$tag$, X'..'
	tNumber                // 12, 1.5
	tPunct                 // ( ) , ; . and operators
)

// token is one lexical unit of a statement.
type token struct {
	kind tokKind
	text string // the word as written, the identifier or string unquoted, the punctuation
	off  int    // byte offset in the statement
}

// is reports whether t is the unquoted keyword kw (case-insensitive).
func (t token) is(kw string) bool { return t.kind == tWord && strings.EqualFold(t.text, kw) }

// tokenize splits one statement into tokens, skipping comments and
// whitespace. It never fails: an unterminated quote runs to the end.
func tokenize(sql string, d dialectName) []token {
	var out []token
	i := 0
	for i < len(sql) {
		c := sql[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '-' && strings.HasPrefix(sql[i:], "--"), c == '#' && d == mysqlDialect:
			j := strings.IndexByte(sql[i:], '\n')
			if j < 0 {
				return out
			}
			i += j + 1
		case c == '/' && strings.HasPrefix(sql[i:], "/*"):
			if d == mysqlDialect && strings.HasPrefix(sql[i:], "/*!") {
				// A MySQL executable comment: its body is SQL.
				j := 3
				for j < len(sql)-i && sql[i+j] >= '0' && sql[i+j] <= '9' {
					j++
				}
				end := strings.Index(sql[i+j:], "*/")
				if end < 0 {
					end = len(sql) - i - j
				}
				for _, t := range tokenize(sql[i+j:i+j+end], d) {
					t.off += i + j
					out = append(out, t)
				}
				i += j + end + 2
				continue
			}
			j := strings.Index(sql[i+2:], "*/")
			if j < 0 {
				return out
			}
			i += j + 4
		case c == '\'':
			s, n := quoted(sql[i:], '\'', d == mysqlDialect)
			out = append(out, token{tString, s, i})
			i += n
		case (c == 'E' || c == 'e' || c == 'X' || c == 'x' || c == 'B' || c == 'b' || c == 'N' || c == 'n') && i+1 < len(sql) && sql[i+1] == '\'':
			s, n := quoted(sql[i+1:], '\'', true)
			out = append(out, token{tString, s, i})
			i += n + 1
		case c == '"' || c == '`':
			s, n := quoted(sql[i:], c, false)
			out = append(out, token{tIdent, s, i})
			i += n
		case c == '[' && d == sqliteDialect:
			j := strings.IndexByte(sql[i+1:], ']')
			if j < 0 {
				out = append(out, token{tIdent, sql[i+1:], i})
				return out
			}
			out = append(out, token{tIdent, sql[i+1 : i+1+j], i})
			i += j + 2
		case c == '$' && d == postgresDialect:
			if tag, ok := dollarTag(sql[i:]); ok {
				end := strings.Index(sql[i+len(tag):], tag)
				if end < 0 {
					end = len(sql) - i - len(tag)
					out = append(out, token{tString, sql[i+len(tag):], i})
					return out
				}
				out = append(out, token{tString, sql[i+len(tag) : i+len(tag)+end], i})
				i += len(tag) + end + len(tag)
				continue
			}
			j := i + 1
			for j < len(sql) && sql[j] >= '0' && sql[j] <= '9' {
				j++
			}
			out = append(out, token{tPunct, sql[i:j], i})
			i = j
		case c >= '0' && c <= '9':
			j := i
			for j < len(sql) && (sql[j] >= '0' && sql[j] <= '9' || sql[j] == '.') {
				j++
			}
			out = append(out, token{tNumber, sql[i:j], i})
			i = j
		case isWordStart(c):
			j := i
			for j < len(sql) && isWordByte(sql[j]) {
				j++
			}
			out = append(out, token{tWord, sql[i:j], i})
			i = j
		case c >= utf8.RuneSelf:
			// A non-ASCII letter starts an identifier.
			j := i
			for j < len(sql) && (sql[j] >= utf8.RuneSelf || isWordByte(sql[j])) {
				j++
			}
			out = append(out, token{tWord, sql[i:j], i})
			i = j
		default:
			// Operators: the two-character ones the rules care about.
			n := 1
			if i+1 < len(sql) {
				switch sql[i : i+2] {
				case "::", "<>", "!=", ">=", "<=", "||", ":=", "=>":
					n = 2
				}
			}
			out = append(out, token{tPunct, sql[i : i+n], i})
			i += n
		}
	}
	return out
}

func isWordStart(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isWordByte(c byte) bool {
	return isWordStart(c) || c >= '0' && c <= '9' || c == '$'
}

// quoted reads a quoted run starting at s[0] == q, doubling q to escape
// it (and backslash escapes when backslash is set). It returns the
// unquoted text and the bytes consumed.
func quoted(s string, q byte, backslash bool) (string, int) {
	var b strings.Builder
	i := 1
	for i < len(s) {
		c := s[i]
		switch {
		case backslash && c == '\\' && i+1 < len(s):
			b.WriteByte(s[i+1])
			i += 2
		case c == q && i+1 < len(s) && s[i+1] == q:
			b.WriteByte(q)
			i += 2
		case c == q:
			return b.String(), i + 1
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String(), len(s)
}

// dollarTag returns the $tag$ that starts s, if it does.
func dollarTag(s string) (string, bool) {
	for j := 1; j < len(s); j++ {
		c := s[j]
		if c == '$' {
			return s[:j+1], true
		}
		if !(isWordStart(c) || j > 1 && c >= '0' && c <= '9') {
			return "", false
		}
	}
	return "", false
}
