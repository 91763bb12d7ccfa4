package main

import (
	"context"

	"github.com/ferrydb/ferry/backup"
	"github.com/ferrydb/ferry/database"
	"github.com/ferrydb/ferry/migrate"
	"github.com/ferrydb/ferry/release"
)

// upgradePipeline is the pipeline of `ferry up` and `ferry serve`: the
// contract gate, then the backup before the upgrade when the backup mode
// asks for one.
type upgradePipeline struct {
	migrate.Pipeline
	// store is the backup store, nil when no backup is taken.
	store *backup.Store
}

// close releases the backup store.
func (p *upgradePipeline) close() {
	if p.store != nil {
		p.store.Close()
	}
}

// pipeline builds the upgrade pipeline for db. force lets the gate apply a
// contract migration that breaks live instances.
func (a *app) pipeline(ctx context.Context, db *database.DB, force bool) (*upgradePipeline, error) {
	p := &upgradePipeline{}
	p.Gate = release.Gate(db.Dialect, release.WithForce(force), release.WithLogger(a.log))
	pre, store, err := a.preUpgrade(ctx)
	if err != nil {
		return nil, err
	}
	if pre != nil {
		pre.DB, p.store = db, store
		if !a.json && !a.serving {
			pre.OnBackup = func(m *backup.Manifest) {
				a.printf("backup %s taken before the upgrade (%s in %s)\n", m.ID, fmtSize(m.Size()), store)
			}
		}
		p.Backup = pre.Backup
	}
	return p, nil
}
