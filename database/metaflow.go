package database

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// FromMetaflowEnv builds a PostgreSQL URL from the environment variables
// Metaflow deployments use to configure the metadata database, so that ferry
// is a drop-in for Metaflow's migration service:
//
//	MF_METADATA_DB_DSN       a libpq DSN ("dbname=... user=... host=..."), used as is when set
//	MF_METADATA_DB_HOST      default localhost
//	MF_METADATA_DB_PORT      default 5432
//	MF_METADATA_DB_USER      default postgres
//	MF_METADATA_DB_PSWD      default postgres
//	MF_METADATA_DB_NAME      default postgres
//	MF_METADATA_DB_SSL_MODE, MF_METADATA_DB_SSL_CERT_PATH, MF_METADATA_DB_SSL_KEY_PATH,
//	MF_METADATA_DB_SSL_ROOT_CERT (or MF_METADATA_DB_SSL_ROOT_CERT_PATH)
//	DB_SCHEMA_NAME           the schema
//
// The defaults are Metaflow's (in a DSN, only what the DSN leaves out of
// host, port, user and database; never a password: libpq then finds it in
// PGPASSWORD or .pgpass). A DSN may also be a postgres:// or
// postgresql:// URL, as libpq accepts. ok is false when none of the
// MF_METADATA_DB_ variables is set; err says why a DSN cannot be read.
// The URL carries the password: never print it.
func FromMetaflowEnv(getenv func(string) string) (raw string, ok bool, err error) {
	const p = "MF_METADATA_DB_"
	set := false
	for _, k := range []string{"DSN", "HOST", "PORT", "USER", "PSWD", "NAME", "SSL_MODE"} {
		if getenv(p+k) != "" {
			set = true
		}
	}
	if !set {
		return "", false, nil
	}
	params := map[string]string{}
	host, port, user, pass, name := "localhost", "5432", "postgres", "postgres", "postgres"
	if dsn := strings.TrimSpace(getenv(p + "DSN")); dsn != "" {
		if lower := strings.ToLower(dsn); strings.HasPrefix(lower, "postgres://") || strings.HasPrefix(lower, "postgresql://") {
			return withSchema(dsn, getenv("DB_SCHEMA_NAME")), true, nil
		}
		kv, err := parseDSN(dsn)
		if err != nil {
			return "", true, fmt.Errorf("%sDSN: %w (use key=value pairs, such as \"host=db dbname=metaflow user=mf\", or a postgresql:// URL)", p, err)
		}
		pass = ""
		for k, v := range kv {
			switch k {
			case "host":
				host = v
			case "port":
				port = v
			case "user":
				user = v
			case "password":
				pass = v
			case "dbname":
				name = v
			default:
				params[k] = v
			}
		}
	} else {
		pick := func(k, def string) string {
			if v := getenv(p + k); v != "" {
				return v
			}
			return def
		}
		host, port, user, pass, name = pick("HOST", host), pick("PORT", port), pick("USER", user), pick("PSWD", pass), pick("NAME", name)
	}
	for env, param := range map[string]string{
		"SSL_MODE": "sslmode", "SSL_CERT_PATH": "sslcert", "SSL_KEY_PATH": "sslkey",
		"SSL_ROOT_CERT_PATH": "sslrootcert", "SSL_ROOT_CERT": "sslrootcert",
	} {
		if v := getenv(p + env); v != "" {
			params[param] = v
		}
	}
	if s := getenv("DB_SCHEMA_NAME"); s != "" {
		params["schema"] = s
	}
	q := url.Values{}
	for k, v := range params {
		q.Set(k, v)
	}
	ui := url.User(user)
	if pass != "" {
		ui = url.UserPassword(user, pass)
	}
	u := url.URL{Scheme: "postgres", User: ui, Host: net.JoinHostPort(host, port), Path: "/" + name, RawQuery: q.Encode()}
	return u.String(), true, nil
}

// withSchema adds schema=s to a URL's query when s is set.
func withSchema(raw, s string) string {
	if s == "" {
		return raw
	}
	sep := "?"
	if strings.Contains(raw, "?") {
		sep = "&"
	}
	return raw + sep + "schema=" + url.QueryEscape(s)
}

// parseDSN reads libpq's key=value connection strings, with values
// optionally single-quoted and backslash-escaped. Anything else (a word
// without =, an unterminated quote) is an error naming where.
func parseDSN(dsn string) (map[string]string, error) {
	out := map[string]string{}
	s := strings.TrimSpace(dsn)
	for s != "" {
		eq := strings.IndexByte(s, '=')
		if sp := strings.IndexAny(s, " \t"); eq < 0 || (sp >= 0 && sp < eq) {
			word := s
			if sp >= 0 {
				word = s[:sp]
			}
			return nil, fmt.Errorf("%q is not key=value", strings.SplitN(word, "=", 2)[0])
		}
		key := strings.TrimSpace(s[:eq])
		s = strings.TrimLeft(s[eq+1:], " \t")
		var val strings.Builder
		if strings.HasPrefix(s, "'") {
			i := 1
			for ; i < len(s) && s[i] != '\''; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				val.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("the value of %s has no closing quote", key)
			}
			s = s[i+1:]
		} else {
			end := strings.IndexAny(s, " \t")
			if end < 0 {
				end = len(s)
			}
			val.WriteString(s[:end])
			s = s[end:]
		}
		out[key] = val.String()
		s = strings.TrimLeft(s, " \t")
	}
	return out, nil
}
