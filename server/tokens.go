package server

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"sync"
)

var tokenName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_.@-]{1,64}$`) })

// LoadTokens reads a token file: one token per line, as SECRET or
// NAME:SECRET (the name is recorded in the audit log and the history);
// blank lines and lines starting with # are ignored.
func LoadTokens(path string) ([]Token, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	defer f.Close()
	toks, err := ParseTokens(f)
	if err != nil {
		return nil, fmt.Errorf("token file %s: %w", path, err)
	}
	if len(toks) == 0 {
		return nil, fmt.Errorf("token file %s holds no token", path)
	}
	return toks, nil
}

// ParseTokens reads tokens in the LoadTokens format.
func ParseTokens(r io.Reader) ([]Token, error) {
	var out []Token
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		t := Token{Name: fmt.Sprintf("token-%d", len(out)+1), Secret: line}
		if name, secret, ok := strings.Cut(line, ":"); ok && tokenName().MatchString(name) && secret != "" {
			t = Token{Name: name, Secret: secret}
		}
		if len(t.Secret) < 16 {
			return nil, fmt.Errorf("line %d: token %q is too short: use at least 16 random characters (for example `openssl rand -hex 32`)", n, t.Name)
		}
		out = append(out, t)
	}
	return out, sc.Err()
}
