package release_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/ferrydb/ferry/internal/testdb"
	"github.com/ferrydb/ferry/migrate"
	"github.com/ferrydb/ferry/release"
)

// BenchmarkNewestCompatible: choosing among 50 releases over 10,000
// migrations, one in ten a contract migration (what GET /version does
// after reading the status).
func BenchmarkNewestCompatible(b *testing.B) {
	var ms []*migrate.Migration
	for v := int64(1); v <= 10000; v++ {
		ms = append(ms, &migrate.Migration{Version: v, Contract: v%10 == 0})
	}
	man := &release.Manifest{}
	for i := range 50 {
		man.Releases = append(man.Releases, release.Release{Name: fmt.Sprint("r", i), Schema: int64(9500 + 10*i)})
	}
	for b.Loop() {
		if _, err := man.NewestCompatible(release.Database{Version: 9995}, ms); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLive: reading 100 live instances, which the contract gate does
// once per run that holds a contract migration.
func BenchmarkLive(b *testing.B) {
	for _, kind := range testdb.Kinds() {
		b.Run(kind, func(b *testing.B) {
			db := testdb.New(b, kind)
			ctx := context.Background()
			for i := range 100 {
				r, err := release.Register(ctx, db.DB.DB, db.Dialect, release.Instance{Release: fmt.Sprint("r", i%3), Schema: 1})
				if err != nil {
					b.Fatal(err)
				}
				defer r.Close(ctx)
			}
			for b.Loop() {
				l, err := release.Live(ctx, db, db.Dialect)
				if err != nil || len(l) != 100 {
					b.Fatal(len(l), err)
				}
			}
		})
	}
}
