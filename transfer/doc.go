// Package transfer moves a service's data between environments: Export
// writes every table of a database into a store (package store: a
// directory or object storage), read in one consistent snapshot while the
// service keeps writing; Import loads an export into an empty database of
// the same engine, through the service's own migrations.
//
// An export is a directory named by its id:
//
//	20261129T170000Z-ab12cd/
//	  tables/runs/part-00001.jsonl.s2    rows, S2-compressed JSON Lines (.gz: gzip)
//	  tables/runs/part-00002.jsonl.s2
//	  ...
//	  manifest.json                      written last: the commit marker
//
// The manifest records the source (engine, server version, schema version
// and the checksum of every applied migration), the snapshot, and per
// table its columns and types, primary key, foreign keys, sequence
// values, row count, an order-independent checksum of its rows, and the
// size and sha256 of every chunk. The row format (format.go) carries
// every value exactly: NULL apart from "", bytes, decimals and floats
// digit for digit, timestamps in UTC, any Unicode.
//
// Import migrates the empty target to the export's schema version,
// checking that its migration files are the ones the source applied,
// loads every table in foreign-key order (each table, or each circular
// group of tables, in one transaction, with a ledger row that lets a
// re-run after a crash go on where it stopped), sets sequences past the
// loaded rows, verifies every table's row count, row checksum and foreign
// keys against the manifest, and only then migrates the target to its
// latest version, so that the data goes through the real migrations.
// Both hold the migration lock while they read or load, so no upgrade
// changes the schema under them.
package transfer
