package lint

import (
	"fmt"
	"strings"
)

// Severity is how much a finding matters.
type Severity int

const (
	Info Severity = iota + 1
	Warning
	Error
)

func (s Severity) String() string {
	switch s {
	case Info:
		return "info"
	case Warning:
		return "warning"
	case Error:
		return "error"
	}
	return "off"
}

// ParseSeverity reads "info", "warning" (or "warn") or "error".
func ParseSeverity(s string) (Severity, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "info":
		return Info, nil
	case "warning", "warn":
		return Warning, nil
	case "error":
		return Error, nil
	}
	return 0, fmt.Errorf("severity %q: want info, warning or error", s)
}

// Rule describes one check.
type Rule struct {
	// ID names the rule in findings, suppressions and configuration.
	ID string
	// Severity is the rule's default severity.
	Severity Severity
	// Dialects are the databases the rule applies to.
	Dialects []string
	// Summary is one line on what the rule catches.
	Summary string
}

// DocPath is the rule's page, relative to the repository root.
func (r Rule) DocPath() string { return "docs/lint/" + r.ID + ".md" }

// Rule ids.
const (
	RuleIndexNotConcurrent     = "index-not-concurrent"
	RuleConcurrentInTx         = "concurrent-in-transaction"
	RuleDropIndexNotConcurrent = "drop-index-not-concurrent"
	RuleNotNullNoDefault       = "not-null-without-default"
	RuleAddColumnRewrite       = "add-column-rewrite"
	RuleCheckScan              = "check-without-not-valid"
	RuleForeignKeyScan         = "foreign-key-without-not-valid"
	RuleUniqueWithoutIndex     = "unique-without-index"
	RuleTypeRewrite            = "column-type-rewrite"
	RuleSetNotNull             = "set-not-null-scan"
	RuleRenameColumn           = "rename-column"
	RuleRenameTable            = "rename-table"
	RuleDropColumn             = "drop-column"
	RuleDropTable              = "drop-table"
	RuleBackfillInTx           = "backfill-in-ddl-transaction"
	RuleEnumValueInTx          = "enum-value-in-transaction"
	RuleTableRewrite           = "table-rewrite"
	RuleMySQLBlocksWrites      = "mysql-blocks-writes"
	RuleMySQLRebuild           = "mysql-table-rebuild"
	RuleSQLiteRebuild          = "sqlite-table-rebuild"
	RuleSQLiteUnsupported      = "sqlite-unsupported-alter"
	RuleNotAnalysed            = "not-analysed"
	RuleUnusedIgnore           = "unused-lint-ignore"
	RuleTraceDiffers           = "trace-differs"
	RuleTraceFailed            = "trace-failed"
)

var (
	pg   = []string{"postgres"}
	my   = []string{"mysql"}
	lite = []string{"sqlite"}
	all  = []string{"postgres", "mysql", "sqlite"}
)

// rules is every rule, in the order the documentation lists them.
var rules = []Rule{
	{RuleIndexNotConcurrent, Error, pg, "CREATE INDEX or REINDEX without CONCURRENTLY blocks writes to an existing table while the index builds"},
	{RuleConcurrentInTx, Error, pg, "CONCURRENTLY (or VACUUM) in a migration that runs in a transaction fails at apply time"},
	{RuleDropIndexNotConcurrent, Warning, pg, "DROP INDEX without CONCURRENTLY takes an ACCESS EXCLUSIVE lock on the index's table"},
	{RuleNotNullNoDefault, Error, all, "ADD COLUMN ... NOT NULL without a DEFAULT fails on a table with rows, or breaks the running release's inserts"},
	{RuleAddColumnRewrite, Error, pg, "ADD COLUMN with a volatile default, serial, identity or stored generated column rewrites the table under an ACCESS EXCLUSIVE lock"},
	{RuleCheckScan, Error, pg, "ADD CHECK without NOT VALID scans the table under an ACCESS EXCLUSIVE lock"},
	{RuleForeignKeyScan, Error, pg, "a foreign key without NOT VALID scans the table and blocks writes to both tables"},
	{RuleUniqueWithoutIndex, Error, pg, "ADD UNIQUE, PRIMARY KEY or EXCLUDE builds an index under an ACCESS EXCLUSIVE lock"},
	{RuleTypeRewrite, Error, pg, "ALTER COLUMN ... TYPE that is not a safe widening rewrites the table under an ACCESS EXCLUSIVE lock"},
	{RuleSetNotNull, Error, pg, "SET NOT NULL without a validated CHECK (col IS NOT NULL) scans the table under an ACCESS EXCLUSIVE lock"},
	{RuleRenameColumn, Error, all, "renaming a column breaks the running release, which still uses the old name"},
	{RuleRenameTable, Error, all, "renaming a table breaks the running release, which still uses the old name"},
	{RuleDropColumn, Error, all, "dropping a column breaks the running release, which may still read or write it"},
	{RuleDropTable, Error, all, "dropping a table breaks the running release, which may still use it"},
	{RuleBackfillInTx, Warning, pg, "UPDATE or DELETE of a whole existing table in the same transaction as DDL holds the DDL's lock for the whole backfill"},
	{RuleEnumValueInTx, Error, pg, "ALTER TYPE ... ADD VALUE inside a transaction fails before PostgreSQL 12"},
	{RuleTableRewrite, Error, pg, "VACUUM FULL, CLUSTER, SET TABLESPACE, SET LOGGED/UNLOGGED or REFRESH MATERIALIZED VIEW rewrites a table under an ACCESS EXCLUSIVE lock"},
	{RuleMySQLBlocksWrites, Error, my, "an ALTER that cannot run with LOCK=NONE on the target version (ALGORITHM=COPY or LOCK=SHARED) blocks writes for the whole copy"},
	{RuleMySQLRebuild, Warning, my, "an ALTER that is not INSTANT on the target version rebuilds the table in place: writes go on, but it takes long and replicas lag"},
	{RuleSQLiteRebuild, Warning, lite, "a table rebuild (create, copy, drop, rename) holds the database's write lock for the whole copy"},
	{RuleSQLiteUnsupported, Error, lite, "an ALTER TABLE form SQLite does not support fails at apply time"},
	{RuleNotAnalysed, Warning, all, "a statement lint cannot analyse: nobody checked it"},
	{RuleUnusedIgnore, Warning, all, "a -- ferry:lint-ignore that suppresses nothing"},
	{RuleTraceFailed, Error, all, "a statement failed when the trace ran it on a scratch copy of the schema: it will most likely fail on the database"},
	{RuleTraceDiffers, Warning, all, "the trace observed locks or rewrites that the static rules did not predict, or the reverse"},
}

// Rules returns every rule lint knows.
func Rules() []Rule { return append([]Rule(nil), rules...) }

// ruleByID returns the rule with the given id.
func ruleByID(id string) (Rule, bool) {
	for _, r := range rules {
		if r.ID == id {
			return r, true
		}
	}
	return Rule{}, false
}
