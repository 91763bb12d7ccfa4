package transfer

import (
	"context"
	"sort"

	"github.com/ferrydb/ferry/database"
)

// Unfinished is an import into a database that started and has not
// finished: running now, or cut short and waiting to be run again.
type Unfinished struct {
	ExportID string `json:"export_id"`
	// Tables are the tables loaded so far.
	Tables []string `json:"tables_loaded"`
	// Verified says the load was verified and only the final migrations
	// are left.
	Verified bool `json:"verified"`
}

// Unfinished returns the imports into db (whose history table is
// history) that started and did not finish, from the import ledger. A
// database that never had an import has none. Until they finish, the
// database's data is incomplete: no release should start on it.
func UnfinishedImports(ctx context.Context, db *database.DB, history string) ([]Unfinished, error) {
	rows, err := db.QueryContext(ctx, `SELECT export_id, step FROM `+db.Dialect.Table(ledgerTable(history)))
	if err != nil {
		if exists, xerr := tableExists(ctx, db, ledgerTable(history)); xerr == nil && !exists {
			return nil, nil
		}
		return nil, err
	}
	byID := map[string]*Unfinished{}
	done := map[string]bool{}
	for rows.Next() {
		var id, step string
		if err := rows.Scan(&id, &step); err != nil {
			rows.Close()
			return nil, err
		}
		u := byID[id]
		if u == nil {
			u = &Unfinished{ExportID: id, Tables: []string{}}
			byID[id] = u
		}
		switch {
		case step == stepDone:
			done[id] = true
		case step == stepVerified:
			u.Verified = true
		case len(step) > len(stepTable) && step[:len(stepTable)] == stepTable:
			u.Tables = append(u.Tables, step[len(stepTable):])
		}
	}
	if err := closeRows(rows); err != nil {
		return nil, err
	}
	var out []Unfinished
	for id, u := range byID {
		if !done[id] {
			sort.Strings(u.Tables)
			out = append(out, *u)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ExportID < out[j].ExportID })
	return out, nil
}

// tableExists reports whether db has table name (in its current schema).
func tableExists(ctx context.Context, db *database.DB, name string) (bool, error) {
	names, err := catalogNames(ctx, db, db.URL.Kind)
	if err != nil {
		return false, err
	}
	for _, n := range names {
		if n == name {
			return true, nil
		}
	}
	return false, nil
}
