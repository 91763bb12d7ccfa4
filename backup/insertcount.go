package backup

import (
	"bytes"
	"fmt"
)

// insertCounter counts the rows of every table in a mysqldump stream as it
// goes by: each "-- Table structure for table `t`" comment registers a
// table, and each top-level parenthesised tuple of an
// "INSERT INTO `t` VALUES (...),(...);" statement is one row. It follows
// quoted strings with backslash escapes, as mysqldump writes them.
type insertCounter struct {
	counts map[string]int64

	state   int
	line    []byte // the start of the current line, up to lineKeep bytes
	table   string
	quote   byte
	escaped bool
	depth   int
	fail    error
}

const (
	stLineStart = iota // collecting the start of a line
	stSkipLine         // ignoring the rest of a line
	stValues           // inside the VALUES list of an INSERT
)

const lineKeep = 512

var (
	insertPrefix    = []byte("INSERT INTO `")
	structurePrefix = []byte("-- Table structure for table `")
)

func newInsertCounter() *insertCounter { return &insertCounter{counts: map[string]int64{}} }

func (c *insertCounter) err() error { return c.fail }

func (c *insertCounter) Write(p []byte) (int, error) {
	for i := 0; i < len(p); i++ {
		b := p[i]
		switch c.state {
		case stSkipLine:
			j := bytes.IndexByte(p[i:], '\n')
			if j < 0 {
				return len(p), nil
			}
			i += j
			c.state, c.line = stLineStart, c.line[:0]
		case stLineStart:
			if b == '\n' {
				if c.valuesHeader() {
					continue // MariaDB puts each row on a line of its own
				}
				c.lineDone()
				c.line = c.line[:0]
				continue
			}
			c.line = append(c.line, b)
			c.startOfLine()
		case stValues:
			switch {
			case c.quote != 0:
				switch {
				case c.escaped:
					c.escaped = false
				case b == '\\':
					c.escaped = true
				case b == c.quote:
					c.quote = 0
				}
			case b == '\'' || b == '"':
				c.quote = b
			case b == '(':
				if c.depth == 0 {
					c.counts[c.table]++
				}
				c.depth++
			case b == ')':
				c.depth--
			case b == ';' && c.depth == 0:
				c.state = stSkipLine
			}
		}
	}
	return len(p), nil
}

// startOfLine decides, as soon as enough of a line is known, whether it
// starts an INSERT, names a table, or can be skipped.
func (c *insertCounter) startOfLine() {
	l := c.line
	if bytes.HasPrefix(l, insertPrefix) {
		name, rest, ok := backquoted(l[len(insertPrefix)-1:])
		switch {
		case !ok:
			c.tooLong() // the name goes on
		case string(rest) == " VALUES ":
			c.table, c.state, c.depth, c.quote, c.escaped = name, stValues, 0, 0, false
		case bytes.HasPrefix([]byte(" VALUES "), rest):
			// need more of the line (" VALUES" then a newline is MariaDB's form)
		default:
			c.fail = fmt.Errorf("unexpected INSERT form for table %s", name)
			c.state = stSkipLine
		}
		return
	}
	if bytes.HasPrefix(l, structurePrefix) || bytes.HasPrefix(structurePrefix, l) || bytes.HasPrefix(insertPrefix, l) {
		return
	}
	c.state = stSkipLine
}

// valuesHeader reports whether the line collected so far is a complete
// "INSERT INTO `t` VALUES" header, and if so starts counting its rows.
func (c *insertCounter) valuesHeader() bool {
	if !bytes.HasPrefix(c.line, insertPrefix) {
		return false
	}
	name, rest, ok := backquoted(c.line[len(insertPrefix)-1:])
	if !ok || string(rest) != " VALUES" {
		return false
	}
	c.table, c.state, c.depth, c.quote, c.escaped = name, stValues, 0, 0, false
	return true
}

// lineDone handles a complete line that was being collected: a table
// structure comment.
func (c *insertCounter) lineDone() {
	if bytes.HasPrefix(c.line, structurePrefix) {
		// The newline ends the name: a final backquote is not doubled.
		if name, _, ok := backquoted(append(c.line[len(structurePrefix)-1:], '\n')); ok {
			if _, seen := c.counts[name]; !seen {
				c.counts[name] = 0
			}
		}
	}
}

func (c *insertCounter) tooLong() {
	if len(c.line) > lineKeep {
		c.fail = fmt.Errorf("table name longer than %d bytes in the dump", lineKeep)
		c.state = stSkipLine
	}
}

// backquoted reads a `quoted` identifier (with “ for a backquote) at the
// start of b and returns it and the rest of b.
func backquoted(b []byte) (string, []byte, bool) {
	if len(b) == 0 || b[0] != '`' {
		return "", nil, false
	}
	var name []byte
	for i := 1; i < len(b); i++ {
		if b[i] != '`' {
			name = append(name, b[i])
			continue
		}
		if i+1 < len(b) && b[i+1] == '`' {
			name = append(name, '`')
			i++
			continue
		}
		if i+1 == len(b) {
			return "", nil, false // might be a doubled backquote: need more
		}
		return string(name), b[i+1:], true
	}
	return "", nil, false
}
