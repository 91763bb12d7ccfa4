package release

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ferrydb/ferry/dialect"
	"github.com/ferrydb/ferry/migrate"
)

// ErrContractBlocked is wrapped by *ContractBlockedError.
var ErrContractBlocked = errors.New("contract migration would break live instances")

// Blocked is one contract migration and one release with live instances
// that it would break.
type Blocked struct {
	Migration *migrate.Migration
	// Release and Schema name the release and the schema version it was
	// built against, as its instances registered them.
	Release   string
	Schema    int64
	Instances []LiveInstance
}

// ContractBlockedError is Gate's reason for holding back a contract
// migration that would break a release that still has live instances
// (and so migrate.Migrator.Upgrade's error): the migrations before it
// were applied, it and the ones after it were not.
type ContractBlockedError struct {
	// Blocked lists, per contract migration of the plan (in version order)
	// and release, the live instances it would break.
	Blocked []Blocked
	// Before are the migrations of the plan below the first blocked one;
	// applying them breaks nobody, and Upgrade applies them.
	Before []*migrate.Migration
}

func (e *ContractBlockedError) Error() string {
	var b strings.Builder
	var last *migrate.Migration
	for _, bl := range e.Blocked {
		if bl.Migration != last {
			if last != nil {
				b.WriteString("\n")
			}
			fmt.Fprintf(&b, "refusing to apply contract migration %s: it breaks", bl.Migration)
			last = bl.Migration
		} else {
			b.WriteString("; and")
		}
		n := len(bl.Instances)
		noun := "instances"
		if n == 1 {
			noun = "instance"
		}
		parts := make([]string, n)
		for i, l := range bl.Instances {
			parts[i] = l.String()
		}
		fmt.Fprintf(&b, " release %s (built against schema %d), which still has %d live %s: %s", bl.Release, bl.Schema, n, noun, strings.Join(parts, "; "))
	}
	b.WriteString("\nThe contract migration was not applied. Stop those instances or upgrade them to a release built against the contract migration's version or later " +
		"(an instance leaves the registry when it exits, or when it misses its heartbeats for its TTL), then upgrade again.")
	return b.String()
}

func (e *ContractBlockedError) Unwrap() error { return ErrContractBlocked }

// Gate returns a migrate.Gate for migrate.Migrator.Upgrade that holds
// back a contract migration that would break a release with live instances
// in the fleet registry: by the compatibility rule, a contract migration at
// version C breaks every release built against a schema below C. The
// migrations of the plan below the first such contract migration break
// nobody and go ahead; the gate's *ContractBlockedError names the
// migration, the release and its instances. Plans of expand migrations
// only are never checked, so they never wait. With WithForce(true) the
// gate logs what it would have held back and lets the plan through.
//
// It reads the registry on the run's own connection, under the migration
// lock.
func Gate(d dialect.Dialect, opts ...Option) migrate.Gate {
	return func(ctx context.Context, run *migrate.PreflightRun) (int64, error) {
		all := run.Migrations[len(run.Migrations)-1].Version
		o, err := buildOptions(opts)
		if err != nil {
			return 0, err
		}
		var contracts []*migrate.Migration
		for _, m := range run.Migrations {
			if m.Contract {
				contracts = append(contracts, m)
			}
		}
		if len(contracts) == 0 {
			return all, nil
		}
		live, err := Live(ctx, run.Conn, d, opts...)
		if err != nil {
			return 0, fmt.Errorf("contract gate: %w", err)
		}
		e := &ContractBlockedError{}
		for _, c := range contracts {
			for _, group := range ByRelease(live) {
				var broken []LiveInstance
				for _, l := range group.Instances {
					if l.Schema < c.Version {
						broken = append(broken, l)
					}
				}
				if len(broken) > 0 {
					e.Blocked = append(e.Blocked, Blocked{Migration: c, Release: group.Release, Schema: broken[0].Schema, Instances: broken})
				}
			}
		}
		if len(e.Blocked) == 0 {
			return all, nil
		}
		if o.force {
			for _, bl := range e.Blocked {
				o.log.Warn("applying a contract migration that breaks live instances (forced)",
					"migration", bl.Migration.Version, "release", bl.Release, "instances", len(bl.Instances))
			}
			return all, nil
		}
		first := e.Blocked[0].Migration.Version
		var upTo int64
		for _, m := range run.Migrations {
			if m.Version < first {
				e.Before = append(e.Before, m)
				upTo = m.Version
			}
		}
		return upTo, e
	}
}
