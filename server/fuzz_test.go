package server

import (
	"bufio"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/server/api"
)

// FuzzDecodeUpgradeRequest: a body the decoder takes is empty, or one
// JSON value with no field but "to" (json matches names without regard to
// case), and its "to", when given, is positive and is the value the body
// holds.
func FuzzDecodeUpgradeRequest(f *testing.F) {
	for _, s := range []string{
		``, ` `, `{}`, `{"to": 1}`, `{"to": 20261121000000}`, `{"to": null}`, `{"To": 3}`,
		`{"to": 0}`, `{"to": -1}`, `{"version": 1}`, `{"to": 1, "force": true}`,
		`{"to": 1} {"to": 3}`, `{"to": 1}x`, `[1]`, `{"to": "1"}`, `{"to": 1.5}`, `{"to": 1e3}`,
		`{"to": 9223372036854775808}`, `{"to": -1, "to": 2}`, `{"to": 2, "to": -1}`, `null`, `"to"`, `{`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		req, err := decodeUpgradeRequest(strings.NewReader(body))
		if err != nil {
			if req.To != nil && *req.To > 0 && strings.HasPrefix(err.Error(), `"to" is`) {
				t.Fatalf("decodeUpgradeRequest(%q): refused a positive \"to\" %d: %v", body, *req.To, err)
			}
			return
		}
		if req.To != nil && *req.To <= 0 {
			t.Fatalf("decodeUpgradeRequest(%q): took \"to\" %d", body, *req.To)
		}
		if strings.Trim(body, " \t\r\n") == "" {
			if req.To != nil {
				t.Fatalf("decodeUpgradeRequest(%q): an empty body gave \"to\" %d", body, *req.To)
			}
			return
		}
		if !json.Valid([]byte(body)) {
			t.Fatalf("decodeUpgradeRequest(%q): took a body that is not one JSON value", body)
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal([]byte(body), &fields); err != nil {
			t.Fatalf("decodeUpgradeRequest(%q): took a body that is not a JSON object: %v", body, err)
		}
		// A top-level null unmarshals into a nil map: the decoder takes it
		// as it takes an empty body.
		if fields == nil && req.To != nil {
			t.Fatalf("decodeUpgradeRequest(%q): null gave \"to\" %d", body, *req.To)
		}
		for k := range fields {
			if !strings.EqualFold(k, "to") {
				t.Fatalf("decodeUpgradeRequest(%q): took the field %q", body, k)
			}
		}
		var plain api.UpgradeRequest
		if err := json.Unmarshal([]byte(body), &plain); err != nil {
			t.Fatalf("decodeUpgradeRequest(%q): took a body json.Unmarshal refuses: %v", body, err)
		}
		if (plain.To == nil) != (req.To == nil) || plain.To != nil && *plain.To != *req.To {
			t.Fatalf("decodeUpgradeRequest(%q) = %v, json.Unmarshal gives %v", body, req.To, plain.To)
		}
	})
}

// FuzzParseTokens: every token has a secret of 16+ bytes on one line, and
// an error never quotes a line of 16+ bytes (a token is never echoed)
// unless that line is also the name of a NAME:SECRET line, which errors
// do show.
func FuzzParseTokens(f *testing.F) {
	for _, s := range []string{
		"",
		"# deploy tokens\n\n0123456789abcdef0123456789abcdef\n",
		"deploy:0123456789abcdef0123456789abcdef\nci:fedcba9876543210fedcba9876543210\n",
		"short\n",
		"deploy:short\n",
		"0123456789abcdef0123456789abcdef:short\n",
		"bad name!:0123456789abcdef0123456789abcdef\n",
		"deploy:\n",
		"  spaced:0123456789abcdef  \r\n",
		"a:b:0123456789abcdef\n",
		"x\x00y:0123456789abcdef\n",
		strings.Repeat("k", 64*1024+1) + "\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		toks, err := ParseTokens(strings.NewReader(in))
		if err != nil {
			lines, names := tokenLines(in)
			msg := err.Error()
			for _, l := range lines {
				if len(l) >= 16 && !names[l] && !strings.Contains(tooShort, l) && strings.Contains(msg, l) {
					t.Fatalf("ParseTokens(%q): the error quotes the line %q: %v", in, l, err)
				}
			}
			// What an error can say: the scanner's own message, or a
			// line number and a token's name, never more of the line.
			if msg == bufio.ErrTooLong.Error() {
				return
			}
			m := tooShortError.FindStringSubmatch(msg)
			if m == nil {
				t.Fatalf("ParseTokens(%q): unexpected error %v", in, err)
			}
			if !names[m[1]] && !strings.HasPrefix(m[1], "token-") {
				t.Fatalf("ParseTokens(%q): the error names %q, which is no token's name: %v", in, m[1], err)
			}
			return
		}
		for i, tok := range toks {
			if len(tok.Secret) < 16 || strings.ContainsAny(tok.Secret, "\n") {
				t.Fatalf("ParseTokens(%q): token %d (%s) has the secret %q", in, i, tok.Name, tok.Secret)
			}
			if tok.Name == "" || !strings.Contains(in, tok.Secret) {
				t.Fatalf("ParseTokens(%q): token %d is %+v", in, i, tok)
			}
		}
	})
}

// tooShort is the fixed part of ParseTokens's error, and tooShortError
// the whole of it.
const tooShort = " is too short: use at least 16 random characters (for example `openssl rand -hex 32`)"

var tooShortError = regexp.MustCompile(`^line [0-9]+: token "([A-Za-z0-9_.@-]{1,64})"` + regexp.QuoteMeta(tooShort) + `$`)

// tokenLines splits a token file as ParseTokens reads it, into its
// trimmed lines and the names of its NAME:SECRET lines.
func tokenLines(in string) (lines []string, names map[string]bool) {
	names = map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(in))
	sc.Buffer(nil, len(in)+1)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		lines = append(lines, l)
		if name, secret, ok := strings.Cut(l, ":"); ok && tokenName().MatchString(name) && secret != "" {
			names[name] = true
		}
	}
	return lines, names
}
