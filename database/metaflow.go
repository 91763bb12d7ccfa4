package database

import (
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
// The defaults are Metaflow's. ok is false when none of the MF_METADATA_DB_
// variables is set. The URL carries the password: never print it.
func FromMetaflowEnv(getenv func(string) string) (raw string, ok bool) {
	const p = "MF_METADATA_DB_"
	set := false
	for _, k := range []string{"DSN", "HOST", "PORT", "USER", "PSWD", "NAME", "SSL_MODE"} {
		if getenv(p+k) != "" {
			set = true
		}
	}
	if !set {
		return "", false
	}
	params := map[string]string{}
	host, port, user, pass, name := "localhost", "5432", "postgres", "postgres", "postgres"
	if dsn := getenv(p + "DSN"); dsn != "" {
		for k, v := range parseDSN(dsn) {
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
	u := url.URL{Scheme: "postgres", User: url.UserPassword(user, pass), Host: net.JoinHostPort(host, port), Path: "/" + name, RawQuery: q.Encode()}
	return u.String(), true
}

// parseDSN reads libpq's key=value connection strings, with values
// optionally single-quoted and backslash-escaped.
func parseDSN(dsn string) map[string]string {
	out := map[string]string{}
	s := strings.TrimSpace(dsn)
	for s != "" {
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			break
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
			s = s[min(i+1, len(s)):]
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
	return out
}
