package transfer

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"unicode/utf16"
	"unicode/utf8"
)

// streamRow decodes a row line too long to hold (one with a large value)
// value by value as it reads it: a text or binary value comes as a
// reader of its decoded bytes, which the loader copies into its load in
// pieces. The line is the format's (see format.go): any well-formed JSON
// array of the format's values.
type streamRow struct {
	pre   []byte // read from the chunk already, not decoded yet
	br    *bufio.Reader
	ncol  int
	col   int
	where string
	n     int64     // the line's bytes consumed
	open  io.Reader // the last value's reader, until it is drained
	back  int       // a byte given back (-1: none)
	// h, if set, takes the line's bytes as they are read (not its
	// newline): the row's checksum without the row.
	h hash.Hash
}

// errStream marks what a streamRow could not read or decode: the chunk's
// fault, not the loader's.
type errStream struct{ err error }

func (e *errStream) Error() string { return e.err.Error() }
func (e *errStream) Unwrap() error { return e.err }

func newStreamRow(pre []byte, br *bufio.Reader, ncol int, where string) *streamRow {
	return &streamRow{pre: pre, br: br, ncol: ncol, where: where, back: -1}
}

func (r *streamRow) fail(format string, args ...any) error {
	return &errStream{fmt.Errorf("%w: %s: %w: column %d: %s", ErrCorrupt, r.where, errFormat, r.col, fmt.Sprintf(format, args...))}
}

func (r *streamRow) readErr(err error) error {
	if errors.Is(err, io.EOF) {
		return r.fail("the chunk ends in the middle of a row")
	}
	return &errStream{err}
}

func (r *streamRow) readByte() (byte, error) {
	if r.back >= 0 {
		c := byte(r.back)
		r.back = -1
		return c, nil
	}
	r.n++
	var c byte
	if len(r.pre) > 0 {
		c, r.pre = r.pre[0], r.pre[1:]
	} else {
		var err error
		if c, err = r.br.ReadByte(); err != nil {
			return 0, r.readErr(err)
		}
	}
	if r.h != nil {
		r.h.Write([]byte{c})
	}
	return c, nil
}

// readSlice returns the bytes up to and including the next delim, or
// as many as are at hand without it (more is then true); the bytes are
// valid until the next read.
func (r *streamRow) readSlice(delim byte) (b []byte, more bool, err error) {
	b, more, err = r.slice(delim)
	if r.h != nil {
		r.h.Write(b)
	}
	return b, more, err
}

func (r *streamRow) slice(delim byte) (b []byte, more bool, err error) {
	if r.back >= 0 {
		panic("transfer: readSlice after a byte given back")
	}
	if len(r.pre) > 0 {
		i := bytes.IndexByte(r.pre, delim)
		if i < 0 {
			b, r.pre = r.pre, nil
			r.n += int64(len(b))
			return b, true, nil
		}
		b, r.pre = r.pre[:i+1], r.pre[i+1:]
		r.n += int64(len(b))
		return b, false, nil
	}
	b, err = r.br.ReadSlice(delim)
	r.n += int64(len(b))
	if errors.Is(err, bufio.ErrBufferFull) {
		return b, true, nil
	}
	if err != nil {
		return nil, false, r.readErr(err)
	}
	return b, false, nil
}

// nextByte is readByte after JSON's whitespace.
func (r *streamRow) nextByte() (byte, error) {
	for {
		c, err := r.readByte()
		if err != nil || !isSpace(c) {
			return c, err
		}
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' }

// expect reads want, after whitespace.
func (r *streamRow) expect(want byte) error {
	c, err := r.nextByte()
	if err != nil {
		return err
	}
	if c != want {
		return r.fail("%q where %q belongs", c, want)
	}
	return nil
}

// drain reads what the last value's reader left.
func (r *streamRow) drain() error {
	if r.open == nil {
		return nil
	}
	_, err := io.Copy(io.Discard, r.open)
	r.open = nil
	return err
}

// next returns the row's next value; a text or binary value has a reader
// (v.r), to be read before the next call (what is left is skipped).
func (r *streamRow) next() (value, error) {
	if err := r.drain(); err != nil {
		return value{}, err
	}
	if r.col >= r.ncol {
		return value{}, r.fail("more values than the table's %d columns", r.ncol)
	}
	sep := byte(',')
	if r.col == 0 {
		sep = '['
	}
	if err := r.expect(sep); err != nil {
		return value{}, err
	}
	r.col++
	c, err := r.nextByte()
	if err != nil {
		return value{}, err
	}
	switch c {
	case '"':
		t := &jsonText{r: r}
		r.open = t
		return value{kind: kText, r: t}, nil
	case '{':
		var head [5]byte
		for i := range head {
			if head[i], err = r.readByte(); err != nil {
				return value{}, err
			}
		}
		if head[0] != '"' || head[2] != '"' || head[3] != ':' || head[4] != '"' {
			return value{}, r.fail("unknown value {%s", head[:])
		}
		switch head[1] {
		case 'b', 's':
			b := &base64Body{r: r}
			r.open = b
			if head[1] == 'b' {
				return value{kind: kBytes, r: b}, nil
			}
			return value{kind: kText, r: b}, nil
		case 'f':
			tok, more, err := r.readSlice('"')
			if err != nil {
				return value{}, err
			}
			f := string(bytes.TrimSuffix(tok, []byte{'"'}))
			if more || (f != "NaN" && f != "Infinity" && f != "-Infinity") {
				return value{}, r.fail("unknown float %.20q", f)
			}
			return value{kind: kFloat, s: f}, r.expect('}')
		}
		return value{}, r.fail("unknown value {%s", head[:])
	}
	// A number, null, true or false: short, up to the next ',' or ']'.
	tok := []byte{c}
	for {
		c, err := r.readByte()
		if err != nil {
			return value{}, err
		}
		if c == ',' || c == ']' || isSpace(c) {
			r.back = int(c)
			break
		}
		if tok = append(tok, c); len(tok) > 400 {
			return value{}, r.fail("a value too long for a number")
		}
	}
	// A number or a literal, by JSON's grammar (jsonNumber), whole.
	v, n, ok := fastValue(tok)
	if !ok || n != len(tok) {
		return value{}, r.fail("not a JSON value: %.40q", tok)
	}
	return v, nil
}

// finish reads the end of the row: every column read, then "]\n".
func (r *streamRow) finish() error {
	if err := r.drain(); err != nil {
		return err
	}
	if r.col != r.ncol {
		return r.fail("%d values, the table has %d columns", r.col, r.ncol)
	}
	if err := r.expect(']'); err != nil {
		return err
	}
	r.h = nil
	return r.expect('\n')
}

// jsonText reads a JSON string's decoded bytes, after its opening quote.
type jsonText struct {
	r    *streamRow
	out  []byte // decoded, not yet read
	done bool
	// An escape cut by the end of a slice.
	esc  []byte // from the backslash
	high rune   // a \u high surrogate waiting for its low half
	// pend is the start of a character cut by the end of a slice.
	pend []byte
}

// text appends a run of the string's own bytes; false if they are not
// UTF-8 (ferry writes such text as {"s": base64}: an export holding them
// was not written by ferry, and encoding/json would turn them into
// U+FFFD, changing the value). A character cut at the run's end waits in
// pend for the next run.
func (t *jsonText) text(out, run []byte) ([]byte, bool) {
	data := run
	if len(t.pend) > 0 {
		data = append(t.pend, run...)
	}
	cut := len(data)
	for k := 1; k <= 3 && k <= len(data); k++ {
		c := data[len(data)-k]
		if c < utf8.RuneSelf {
			break
		}
		if utf8.RuneStart(c) {
			if !utf8.FullRune(data[len(data)-k:]) {
				cut = len(data) - k
			}
			break
		}
	}
	body := data[:cut]
	if !utf8.Valid(body) {
		return out, false
	}
	out = append(out, body...)
	t.pend = append(t.pend[:0], data[cut:]...)
	return out, true
}

// flushText ends a run: false if a character is still cut short.
func (t *jsonText) flushText() bool { return len(t.pend) == 0 }

func (t *jsonText) Read(p []byte) (int, error) {
	for len(t.out) == 0 {
		if t.done {
			return 0, io.EOF
		}
		if err := t.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, t.out)
	t.out = t.out[n:]
	return n, nil
}

// fill decodes the next slice of the string into t.out.
func (t *jsonText) fill() error {
	b, more, err := t.r.readSlice('"')
	if err != nil {
		return err
	}
	out := t.out[:0]
	for i := 0; i < len(b); {
		if len(t.esc) > 0 {
			t.esc = append(t.esc, b[i])
			i++
			var ok bool
			out, ok, err = t.escape(out)
			if err != nil {
				return err
			}
			if ok {
				t.esc = t.esc[:0]
			}
			continue
		}
		j := i
		for j < len(b) && b[j] != '\\' && b[j] != '"' && b[j] >= 0x20 {
			j++
		}
		if t.high != 0 && j > i {
			out, t.high = utf8.AppendRune(out, utf8.RuneError), 0
		}
		var ok bool
		if out, ok = t.text(out, b[i:j]); !ok {
			return t.r.fail(notUTF8)
		}
		if j == len(b) {
			break
		}
		if !t.flushText() {
			return t.r.fail(notUTF8)
		}
		switch c := b[j]; {
		case c == '"':
			if j != len(b)-1 || more {
				return t.r.fail("a quote inside a string")
			}
			if t.high != 0 {
				out, t.high = utf8.AppendRune(out, utf8.RuneError), 0
			}
			t.done, t.out = true, out
			t.r.open = nil
			return nil
		case c == '\\':
			t.esc = append(t.esc[:0], c)
		default:
			return t.r.fail("a control character inside a string")
		}
		i = j + 1
	}
	t.out = out
	return nil
}

// escape decodes t.esc once it is whole (ok), appending to out.
func (t *jsonText) escape(out []byte) ([]byte, bool, error) {
	e := t.esc
	if e[1] != 'u' {
		if t.high != 0 {
			out, t.high = utf8.AppendRune(out, utf8.RuneError), 0
		}
		c, ok := map[byte]byte{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}[e[1]]
		if !ok {
			return out, false, t.r.fail("unknown escape \\%c", e[1])
		}
		return append(out, c), true, nil
	}
	if len(e) < 6 {
		return out, false, nil
	}
	var u rune
	for _, c := range e[2:6] {
		switch {
		case c >= '0' && c <= '9':
			u = u<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			u = u<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			u = u<<4 | rune(c-'A'+10)
		default:
			return out, false, t.r.fail("bad escape %s", e)
		}
	}
	switch {
	case t.high != 0 && utf16.IsSurrogate(u) && u >= 0xdc00:
		out, t.high = utf8.AppendRune(out, utf16.DecodeRune(t.high, u)), 0
	case utf16.IsSurrogate(u) && u < 0xdc00:
		if t.high != 0 {
			out = utf8.AppendRune(out, utf8.RuneError)
		}
		t.high = u
	default:
		if t.high != 0 {
			out, t.high = utf8.AppendRune(out, utf8.RuneError), 0
		}
		if utf16.IsSurrogate(u) {
			u = utf8.RuneError
		}
		out = utf8.AppendRune(out, u)
	}
	return out, true, nil
}

// base64Body reads the decoded bytes of a {"b":"..."} or {"s":"..."}
// value, after its opening quote, and its closing "}".
type base64Body struct {
	r     *streamRow
	carry []byte // fewer than 4 characters, waiting for the rest
	buf   []byte // decoded slices
	out   []byte // decoded, not yet read
	done  bool
}

func (b *base64Body) Read(p []byte) (int, error) {
	for len(b.out) == 0 {
		if b.done {
			return 0, io.EOF
		}
		if err := b.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, b.out)
	b.out = b.out[n:]
	return n, nil
}

func (b *base64Body) fill() error {
	s, more, err := b.r.readSlice('"')
	if err != nil {
		return err
	}
	end := !more
	if end {
		s = s[:len(s)-1]
	}
	in := s
	if len(b.carry) > 0 {
		in = append(b.carry, s...)
	}
	whole := len(in) / 4 * 4
	if end {
		whole = len(in)
	}
	if cap(b.buf) < base64.StdEncoding.DecodedLen(whole) {
		b.buf = make([]byte, base64.StdEncoding.DecodedLen(whole))
	}
	n, err := base64.StdEncoding.Decode(b.buf[:cap(b.buf)], in[:whole])
	if err != nil {
		var at base64.CorruptInputError
		if errors.As(err, &at) {
			return b.r.fail("bad base64 at byte %d of the row", b.r.n-int64(len(s))-int64(len(b.carry))+int64(at))
		}
		return b.r.fail("base64: %v", err)
	}
	b.out = b.buf[:n]
	b.carry = append(b.carry[:0:0], in[whole:]...)
	if end {
		b.done = true
		b.r.open = nil
		return b.r.expect('}')
	}
	return nil
}
