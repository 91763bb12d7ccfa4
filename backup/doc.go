// Package backup owns ferry's backups and restores: a store of backups
// (a local directory or object storage, see package store), one JSON
// manifest per backup, and per-database drivers that use the tools each
// database's operators trust: pg_dump and pg_restore for PostgreSQL,
// mysqldump (or mariadb-dump) and the mysql client for MySQL and MariaDB,
// and SQLite's own online backup (VACUUM INTO, and the backup API to
// restore).
//
// A backup is streamed from the tool to the store, never held whole in
// memory, compressed on the way where the tool does not compress itself,
// and checksummed (sha256) per object. Its manifest records the database
// (never a password), the schema version, the tool and server versions,
// the size and checksum of every object, and the row count of every table,
// counted in the same snapshot as the dump where the database allows it.
//
// Create takes a backup; Verify checks the checksums and restores into a
// scratch database to compare row counts; Restore replaces a database's
// contents with a backup under the migration lock; Store.Prune keeps the
// newest backups. PreUpgrade.Backup is the backup step of the engine's
// upgrade pipeline (migrate.Pipeline): it takes a backup before an upgrade
// applies anything and says how to restore it.
//
// Credentials: database passwords reach the client tools only through
// their environment (PGPASSWORD) or a private 0600 option file (MySQL),
// never their command line. Object-store credentials come from the
// environment of the process (AWS_*, GOOGLE_APPLICATION_CREDENTIALS,
// AZURE_*), as package store describes; s3:// is in every build, gs://
// and azblob:// in builds with the tags gcs and azblob.
package backup
