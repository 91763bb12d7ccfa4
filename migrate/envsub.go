package migrate

import (
	"fmt"
	"strings"

	"github.com/mfridman/interpolate"

	"github.com/ferrydb/ferry/internal/redact"
)

// LookupEnv finds an environment variable, as os.LookupEnv does. Goose's
// ENVSUB substitutes variables through it.
type LookupEnv func(name string) (string, bool)

// envsub substitutes environment variables in the lines of a goose file
// between -- +goose ENVSUB ON and OFF, with the library and the rules goose
// itself uses ($VAR, ${VAR}, ${VAR:-default}, ${VAR-default},
// ${VAR:?message}, ${VAR:offset:length}; $$ and \$ for a dollar sign),
// except that a variable that is not set is an error instead of an empty
// string (${VAR:-} says that empty is meant).
type envsub struct {
	file   string
	lookup LookupEnv
	// on lists the lines (1-based) of the file where substitution is on.
	on map[int]bool
	// secrets are the values of secret-named variables substituted so far,
	// hidden in errors.
	secrets []string
}

// apply substitutes the lines of one statement that lie in an ENVSUB
// region. It returns the statement to run and the statement to show (the
// values of secret-named variables masked; the same string when there are
// none).
func (e *envsub) apply(st Statement) (run, shown string, err error) {
	lines := strings.Split(st.SQL, "\n")
	var out, masked strings.Builder
	changed := false
	for i, line := range lines {
		if i > 0 {
			out.WriteByte('\n')
			masked.WriteByte('\n')
		}
		n := st.Line + i
		if !e.on[n] || !strings.ContainsAny(line, `$\`) {
			out.WriteString(line)
			masked.WriteString(line)
			continue
		}
		r, m, err := e.line(n, line)
		if err != nil {
			return "", "", err
		}
		changed = true
		out.WriteString(r)
		masked.WriteString(m)
	}
	if !changed {
		return st.SQL, st.SQL, nil
	}
	return out.String(), masked.String(), nil
}

// line substitutes one line, the line-th of the file.
func (e *envsub) line(n int, line string) (run, shown string, err error) {
	expr, err := interpolate.NewParser(line).Parse()
	if err != nil {
		return "", "", &FileError{File: e.file, Line: n, Msg: fmt.Sprintf("ENVSUB: %v (write $$ for a literal dollar sign, or turn substitution off with -- +goose ENVSUB OFF)", err)}
	}
	if name, ok := e.missing(expr); !ok {
		return "", "", &FileError{File: e.file, Line: n, Msg: fmt.Sprintf("ENVSUB: environment variable %s is not set (set it, or write ${%s:-} where an empty value is meant)", name, name)}
	}
	run, err = expr.Expand(envFunc(e.lookup))
	if err != nil {
		return "", "", &FileError{File: e.file, Line: n, Msg: fmt.Sprintf("ENVSUB: %v", err)}
	}
	masking := envFunc(func(name string) (string, bool) {
		v, ok := e.lookup(name)
		if ok && v != "" && redact.IsSecretName(name) {
			e.secrets = append(e.secrets, v)
			return redact.Mask, true
		}
		return v, ok
	})
	shown, err = expr.Expand(masking)
	if err != nil {
		return "", "", &FileError{File: e.file, Line: n, Msg: fmt.Sprintf("ENVSUB: %v", err)}
	}
	return run, shown, nil
}

// missing walks expr as Expand would and returns the first variable that
// is used without a default and is not set.
func (e *envsub) missing(expr interpolate.Expression) (string, bool) {
	for _, item := range expr {
		switch x := item.Expansion.(type) {
		case interpolate.VariableExpansion:
			if _, ok := e.lookup(x.Identifier); !ok {
				return x.Identifier, false
			}
		case interpolate.SubstringExpansion:
			if _, ok := e.lookup(x.Identifier); !ok {
				return x.Identifier, false
			}
		case interpolate.EmptyValueExpansion:
			if v, _ := e.lookup(x.Identifier); v == "" {
				if name, ok := e.missing(x.Content); !ok {
					return name, false
				}
			}
		case interpolate.UnsetValueExpansion:
			if _, ok := e.lookup(x.Identifier); !ok {
				if name, ok := e.missing(x.Content); !ok {
					return name, false
				}
			}
		}
	}
	return "", true
}

// envFunc adapts a lookup function to interpolate.Env.
type envFunc func(string) (string, bool)

func (f envFunc) Get(name string) (string, bool) { return f(name) }
