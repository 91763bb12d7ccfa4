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

// goose's ENVSUB substitutes environment variables in the lines between
// -- +goose ENVSUB ON and OFF (or the end of the file) before the file is
// split into statements, as goose does, with the library goose uses: $VAR,
// ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:offset:length}; $$ and \$
// for a dollar sign. ferry differs on purpose in three ways: a variable
// that is not set is an error naming file, line and variable, instead of
// an empty string (${VAR:-} says that empty is meant); the checksum is that
// of the file before substitution; and a line of comment only that cannot
// be substituted is left as it is (it is never sent), where goose fails.

// envsubResult is a file's source after substitution.
type envsubResult struct {
	src string
	// lineErrs are the lines (1-based) that could not be substituted,
	// left as they were: an error if their statement is ever needed.
	lineErrs map[int]error
	// secrets are the values of secret-named variables put in.
	secrets []string
}

// hasEnvsub reports whether src turns goose's ENVSUB on anywhere.
func hasEnvsub(src string) bool {
	if !strings.Contains(src, "+goose") {
		return false
	}
	for line := range strings.SplitSeq(src, "\n") {
		if d, ok := gooseDirective(line); ok && d == "ENVSUB ON" {
			return true
		}
	}
	return false
}

// gooseDirective returns the directive of a goose annotation line, upper
// case with single spaces ("ENVSUB ON"), as goose recognises them: a line
// that starts with "--" and holds "+goose".
func gooseDirective(line string) (string, bool) {
	t := strings.TrimSpace(line)
	if !strings.HasPrefix(t, "--") {
		return "", false
	}
	_, after, ok := strings.Cut(t, "+goose")
	if !ok {
		return "", false
	}
	return strings.ToUpper(strings.Join(strings.Fields(after), " ")), true
}

// substituteEnv applies ENVSUB to the lines of src where it is on.
func substituteEnv(file, src string, lookup LookupEnv) *envsubResult {
	res := &envsubResult{lineErrs: map[int]error{}}
	lines := strings.Split(src, "\n")
	on := false
	for i, line := range lines {
		if d, ok := gooseDirective(line); ok {
			switch d {
			case "ENVSUB ON":
				on = true
			case "ENVSUB OFF":
				on = false
			}
			continue // annotation lines are never substituted
		}
		if !on || !strings.ContainsAny(line, `$\`) {
			continue
		}
		out, secrets, err := substituteLine(line, lookup)
		if err != nil {
			if !strings.HasPrefix(strings.TrimSpace(line), "--") {
				res.lineErrs[i+1] = &FileError{File: file, Line: i + 1, Msg: "ENVSUB: " + err.Error()}
			}
			continue
		}
		lines[i] = out
		res.secrets = append(res.secrets, secrets...)
	}
	res.src = strings.Join(lines, "\n")
	return res
}

// substituteLine substitutes one line. It returns the values of
// secret-named variables it put in.
func substituteLine(line string, lookup LookupEnv) (string, []string, error) {
	expr, err := interpolate.NewParser(line).Parse()
	if err != nil {
		msg := err.Error()
		if strings.Contains(msg, "identifier to start with a letter") {
			msg += " (write $$ for a literal dollar sign, or turn substitution off with -- +goose ENVSUB OFF)"
		}
		return "", nil, fmt.Errorf("%s", msg)
	}
	if name, ok := missingVar(expr, lookup); !ok {
		return "", nil, fmt.Errorf("environment variable %s is not set (set it, or write ${%s:-} where an empty value is meant)", name, name)
	}
	var secrets []string
	out, err := expr.Expand(envFunc(func(name string) (string, bool) {
		v, ok := lookup(name)
		if ok && v != "" && redact.IsSecretVariable(name) {
			secrets = append(secrets, v)
		}
		return v, ok
	}))
	if err != nil {
		return "", nil, err
	}
	return out, secrets, nil
}

// missingVar walks expr as Expand would and returns the first variable
// that is used without a default and is not set.
func missingVar(expr interpolate.Expression, lookup LookupEnv) (string, bool) {
	for _, item := range expr {
		switch x := item.Expansion.(type) {
		case interpolate.VariableExpansion:
			if _, ok := lookup(x.Identifier); !ok {
				return x.Identifier, false
			}
		case interpolate.SubstringExpansion:
			if _, ok := lookup(x.Identifier); !ok {
				return x.Identifier, false
			}
		case interpolate.EmptyValueExpansion:
			if v, _ := lookup(x.Identifier); v == "" {
				if name, ok := missingVar(x.Content, lookup); !ok {
					return name, false
				}
			}
		case interpolate.UnsetValueExpansion:
			if _, ok := lookup(x.Identifier); !ok {
				if name, ok := missingVar(x.Content, lookup); !ok {
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
