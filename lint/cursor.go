package lint

import "strings"

// cursor walks the tokens of one statement.
type cursor struct {
	toks []token
	i    int
}

func (c *cursor) done() bool { return c.i >= len(c.toks) }

func (c *cursor) peek() token {
	if c.done() {
		return token{kind: tPunct, off: -1}
	}
	return c.toks[c.i]
}

func (c *cursor) peekAt(n int) token {
	if c.i+n >= len(c.toks) {
		return token{kind: tPunct, off: -1}
	}
	return c.toks[c.i+n]
}

func (c *cursor) next() token {
	t := c.peek()
	if !c.done() {
		c.i++
	}
	return t
}

// accept consumes the keywords kws in sequence, or nothing.
func (c *cursor) accept(kws ...string) bool {
	for n, kw := range kws {
		if !c.peekAt(n).is(kw) {
			return false
		}
	}
	c.i += len(kws)
	return true
}

// acceptPunct consumes the punctuation p, or nothing.
func (c *cursor) acceptPunct(p string) bool {
	if t := c.peek(); t.kind == tPunct && t.text == p {
		c.i++
		return true
	}
	return false
}

// name reads a possibly qualified name (schema.table) and returns its
// last part, folded to lower case when it was not quoted.
func (c *cursor) name() (string, bool) {
	var last string
	for {
		t := c.peek()
		switch t.kind {
		case tWord:
			last = strings.ToLower(t.text)
		case tIdent:
			last = t.text
		default:
			return last, last != ""
		}
		c.i++
		if !c.acceptPunct(".") {
			return last, true
		}
	}
}

// group consumes a parenthesised group starting at "(" and returns the
// tokens inside it.
func (c *cursor) group() ([]token, bool) {
	if !c.acceptPunct("(") {
		return nil, false
	}
	start, depth := c.i, 1
	for !c.done() {
		t := c.next()
		if t.kind != tPunct {
			continue
		}
		switch t.text {
		case "(":
			depth++
		case ")":
			depth--
			if depth == 0 {
				return c.toks[start : c.i-1], true
			}
		}
	}
	return c.toks[start:], true
}

// rest returns the tokens not yet consumed.
func (c *cursor) rest() []token { return c.toks[c.i:] }

// splitTop splits tokens at commas outside parentheses.
func splitTop(toks []token) [][]token {
	var out [][]token
	depth, start := 0, 0
	for i, t := range toks {
		if t.kind != tPunct {
			continue
		}
		switch t.text {
		case "(", "[":
			depth++
		case ")", "]":
			depth--
		case ",":
			if depth == 0 {
				out = append(out, toks[start:i])
				start = i + 1
			}
		}
	}
	if start < len(toks) {
		out = append(out, toks[start:])
	}
	return out
}

// has reports whether toks hold the keyword kw outside parentheses.
func has(toks []token, kw string) bool {
	return index(toks, kw) >= 0
}

// index returns the position of the keyword kw outside parentheses, or -1.
func index(toks []token, kw string) int {
	depth := 0
	for i, t := range toks {
		if t.kind == tPunct {
			switch t.text {
			case "(":
				depth++
			case ")":
				depth--
			}
		}
		if depth == 0 && t.is(kw) {
			return i
		}
	}
	return -1
}

// hasSeq reports whether toks hold the keywords kws in a row, outside
// parentheses.
func hasSeq(toks []token, kws ...string) bool {
	depth := 0
	for i, t := range toks {
		if t.kind == tPunct {
			switch t.text {
			case "(":
				depth++
			case ")":
				depth--
			}
		}
		if depth != 0 || i+len(kws) > len(toks) {
			continue
		}
		ok := true
		for n, kw := range kws {
			if !toks[i+n].is(kw) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// words returns the first n tokens as upper-case text, for messages.
func words(toks []token, n int) string {
	var b []string
	for i := 0; i < len(toks) && i < n; i++ {
		switch toks[i].kind {
		case tWord:
			b = append(b, strings.ToUpper(toks[i].text))
		case tString:
			b = append(b, "'...'")
		case tIdent:
			b = append(b, `"`+toks[i].text+`"`)
		default:
			b = append(b, toks[i].text)
		}
	}
	return strings.Join(b, " ")
}
