#!/usr/bin/env python3
"""Plays the Metaflow metadata service's migration client (migration_tools.py)
against a migration service, using only the standard library.

Usage: metaflow_migration_client.py BASE_URL

BASE_URL may carry credentials, as Metaflow deployments write it:
http://ferry:TOKEN@host:8082. The script reads /db_schema_status, upgrades
with PATCH /upgrade when the schema is not up to date, and checks
is_up_to_date afterwards. It exits 0 when the schema ends up to date.
"""
import base64
import json
import sys
import urllib.error
import urllib.parse
import urllib.request


def request(base, method, path):
    parts = urllib.parse.urlsplit(base)
    netloc = parts.hostname + (":%d" % parts.port if parts.port else "")
    url = urllib.parse.urlunsplit((parts.scheme, netloc, path, "", ""))
    req = urllib.request.Request(url, method=method)
    if parts.password is not None:
        creds = "%s:%s" % (urllib.parse.unquote(parts.username or ""), urllib.parse.unquote(parts.password))
        req.add_header("Authorization", "Basic " + base64.b64encode(creds.encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def db_schema_status(base):
    code, body = request(base, "GET", "/db_schema_status")
    if code != 200:
        raise SystemExit("db_schema_status: %d %s" % (code, body))
    status = json.loads(body)
    for key, typ in (("is_up_to_date", bool), ("current_version", str), ("migration_in_progress", bool),
                     ("db_schema_versions", list), ("unapplied_migrations", list)):
        if not isinstance(status.get(key), typ):
            raise SystemExit("db_schema_status: %s is %r, want %s" % (key, status.get(key), typ.__name__))
    return status


def main():
    base = sys.argv[1]
    status = db_schema_status(base)
    print("before:", json.dumps(status, sort_keys=True))
    if status["is_up_to_date"]:
        print("schema is up to date")
        return 0
    code, body = request(base, "PATCH", "/upgrade")
    print("upgrade:", code, body)
    if code != 200 or body != "upgrade success":
        return 1
    status = db_schema_status(base)
    print("after:", json.dumps(status, sort_keys=True))
    return 0 if status["is_up_to_date"] and not status["unapplied_migrations"] else 1


if __name__ == "__main__":
    sys.exit(main())
