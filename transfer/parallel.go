package transfer

import (
	"context"
	"sync"
)

// part is a unit of parallel work on the tables of an export: a whole
// table (rng nil) or one key range of it.
type part struct {
	t   int // the table's index
	rng *keyRange
}

// listParts splits tables into parts for jobs workers: a large table with
// a single integer key into one key range per job (see splitTable; rows
// gives a table's row count, or -1 for the planner's estimate), every
// other table whole. It also returns how many parts each table has.
func listParts(ctx context.Context, q querier, kind string, tables []*Table, rows func(int) int64, jobs int, minRows int64) ([]part, []int, error) {
	var parts []part
	count := make([]int, len(tables))
	for i, t := range tables {
		ranges, err := splitTable(ctx, q, kind, t, rows(i), jobs, minRows)
		if err != nil {
			return nil, nil, err
		}
		if len(ranges) == 0 {
			parts = append(parts, part{t: i})
		}
		for k := range ranges {
			parts = append(parts, part{t: i, rng: &ranges[k]})
		}
		count[i] = max(len(ranges), 1)
	}
	return parts, count, nil
}

// eachPart runs do on every part, one worker per snapshot, all reading in
// the same snapshot. The first error cancels the others' context and is
// returned.
func eachPart(ctx context.Context, snaps []*snapshot, parts []part, do func(ctx context.Context, s *snapshot, p part) error) error {
	work := make(chan part)
	errs := make(chan error, len(snaps))
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for _, s := range snaps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range work {
				if err := do(wctx, s, p); err != nil {
					errs <- err
					cancel()
					return
				}
			}
		}()
	}
feed:
	for _, p := range parts {
		select {
		case work <- p:
		case <-wctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	return ctx.Err()
}
