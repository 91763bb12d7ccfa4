package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/ferrydb/ferry/migrate"
	"github.com/ferrydb/ferry/server/api"
	"github.com/ferrydb/ferry/transfer"
)

// DefaultStatusMaxAge is how old a served status may be by default: a
// change another process makes shows within it.
const DefaultStatusMaxAge = 250 * time.Millisecond

// recentApplied is how many of the most recently applied migrations
// GET /v1/status lists; /v1/history pages through the rest.
const recentApplied = 20

// snapshot is the status of the database at one moment, with the
// documents the status routes answer, rendered once.
type snapshot struct {
	at  time.Time
	gen uint64
	st  *migrate.Status
	// imports are the imports into the database that have not finished:
	// its data is incomplete until they do.
	imports []transfer.Unfinished
	// importsErr is the failure to read the import ledger: the status
	// is known, whether the data is complete is not. It fails only what
	// depends on it (/db_schema_status, /readyz), not every status route.
	importsErr error
	doc        *api.Status // GET /v1/status
	// rendered answers and their ETags
	schema, v1       []byte
	schemaTag, v1Tag string
}

// snapshots serves status documents from memory. A snapshot is read again
// when it is older than maxAge (so that a change made by another process,
// a `ferry up` from a shell, shows within that), and at once after an
// upgrade this service ran (invalidate). Requests that arrive while one
// is read share it: a fleet polling the service costs the database one
// status read per maxAge, whatever the request rate.
type snapshots struct {
	s      *Server
	maxAge time.Duration

	mu      sync.Mutex
	cur     *snapshot
	gen     uint64        // bumped by invalidate
	reading chan struct{} // closed when the read in progress ends; nil when none
	readErr error         // the outcome of the read that just ended
	// failed is the last read's error while the database cannot be read:
	// it is served like a snapshot, for maxAge, so that a database that is
	// down is not read again by every request.
	failed *failedRead
	// changed is closed and replaced when a new snapshot's documents
	// differ from the previous one's (server-sent events wait on it).
	changed chan struct{}
	// watchers counts event streams; while there is one, a poller reads
	// the status every maxAge so that changes reach them.
	watchers int
	stopPoll func()
}

// changes returns a channel closed at the next change of the documents.
func (c *snapshots) changes() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}

// watch keeps the status read every maxAge until the returned function is
// called; any number of streams share one poller.
func (c *snapshots) watch() (stop func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.watchers++
	if c.watchers == 1 {
		ctx, cancel := context.WithCancel(c.s.base)
		c.stopPoll = cancel
		go func() {
			t := time.NewTicker(c.maxAge)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					// An error reaches the streams through their own get.
					_, _ = c.get(ctx)
				}
			}
		}()
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.watchers--
			if c.watchers == 0 {
				c.stopPoll()
			}
		})
	}
}

func newSnapshots(s *Server, maxAge time.Duration) *snapshots {
	return &snapshots{s: s, maxAge: maxAge, changed: make(chan struct{})}
}

// invalidate makes the next get read the database again, and wait for it.
func (c *snapshots) invalidate() {
	c.mu.Lock()
	c.gen++
	c.mu.Unlock()
}

// failedRead is a read of the status that failed.
type failedRead struct {
	err error
	at  time.Time
	gen uint64
}

// get returns a snapshot no older than maxAge and taken after the last
// invalidate.
func (c *snapshots) get(ctx context.Context) (*snapshot, error) {
	for {
		c.mu.Lock()
		if f := c.failed; f != nil && f.gen == c.gen && time.Since(f.at) < c.maxAge {
			c.mu.Unlock()
			return nil, f.err
		}
		if cur := c.cur; cur != nil && c.fresh(cur) {
			c.mu.Unlock()
			return cur, nil
		}
		if c.reading != nil {
			wait := c.reading
			c.mu.Unlock()
			select {
			case <-wait:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			c.mu.Lock()
			err := c.readErr
			c.mu.Unlock()
			if err != nil {
				return nil, err
			}
			continue
		}
		done := make(chan struct{})
		c.reading = done
		gen := c.gen
		c.mu.Unlock()

		// The read is the service's, not the request's: a client that
		// goes away does not fail it for the others waiting.
		snap, err := c.read(context.WithoutCancel(ctx), gen)
		c.mu.Lock()
		c.reading, c.readErr = nil, err
		if err == nil {
			if c.failed != nil || c.cur == nil || c.cur.schemaTag != snap.schemaTag || c.cur.v1Tag != snap.v1Tag {
				close(c.changed)
				c.changed = make(chan struct{})
			}
			c.cur, c.failed = snap, nil
		} else {
			if c.failed == nil || c.failed.err.Error() != err.Error() {
				close(c.changed)
				c.changed = make(chan struct{})
			}
			c.failed = &failedRead{err: err, at: time.Now(), gen: gen}
		}
		close(done)
		c.mu.Unlock()
		if err != nil {
			return nil, err
		}
		return snap, nil
	}
}

// fresh reports whether a snapshot may still be served; c.mu is held.
func (c *snapshots) fresh(s *snapshot) bool {
	return s.gen == c.gen && time.Since(s.at) < c.maxAge
}

// read takes a new snapshot.
func (c *snapshots) read(ctx context.Context, gen uint64) (*snapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, c.s.cfg.StatusTimeout)
	defer cancel()
	start := time.Now()
	if c.s.metrics != nil {
		c.s.metrics.statusReads.Inc()
	}
	st, err := c.s.m.StatusWith(ctx, migrate.StatusOptions{Applied: recentApplied})
	if err != nil {
		return nil, err
	}
	imports, ierr := transfer.UnfinishedImports(ctx, c.s.db, c.s.m.Table())
	if ierr != nil {
		ierr = fmt.Errorf("read the import ledger: %w", ierr)
	}
	doc, err := c.s.statusDocFrom(ctx, st)
	if err != nil {
		return nil, err
	}
	doc.SetImports(ImportsInProgress(imports), ierr)
	snap := &snapshot{at: start, gen: gen, st: st, imports: imports, importsErr: ierr, doc: doc}
	// Metaflow's document cannot say "unknown": without the ledger it is
	// not served (dbSchemaStatus answers the error).
	if ierr == nil {
		if snap.schema, err = json.Marshal(snap.schemaStatus(c.s.m.Migrations())); err != nil {
			return nil, err
		}
	}
	if snap.v1, err = json.Marshal(doc); err != nil {
		return nil, err
	}
	// The v1 document says how long ago each heartbeat came and for how
	// long the lock has been held: numbers that change at every read. Its
	// tag leaves them out (a weak tag: the same status, not the same
	// bytes), so that a client polling with If-None-Match, and the event
	// streams, see a change only when the status changes.
	snap.schemaTag, snap.v1Tag = etag(snap.schema), "W/"+etag(ages().ReplaceAll(snap.v1, nil))
	return snap, nil
}

// schemaStatus is Metaflow's document of the snapshot. It has no field
// for an import, so while one has not finished the schema is not up to
// date: a Metaflow service that checks is_up_to_date before it starts
// does not start on half of the data.
func (snap *snapshot) schemaStatus(all []*migrate.Migration) api.SchemaStatus {
	doc := SchemaStatus(snap.st, all)
	doc.IsUpToDate = snap.doc.Ready // up to date, and no import unfinished or unknown
	return doc
}

// ImportsInProgress is the status documents' list of unfinished imports.
func ImportsInProgress(imports []transfer.Unfinished) []api.ImportInProgress {
	var out []api.ImportInProgress
	for _, u := range imports {
		out = append(out, api.ImportInProgress{ExportID: u.ExportID, TablesLoaded: u.Tables, Verified: u.Verified, Copy: u.Copy, VerificationFailed: u.Mismatch, ExportDamaged: u.Damaged, ValueRefused: u.Refused, From: u.From, Command: u.Command(), KeyEnv: u.KeyEnv, Advice: u.IfCutShort()})
	}
	return out
}

// ages matches the fields of the v1 document that grow with the clock.
var ages = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`"(since_heartbeat_ms|held_for_ms)":\d+,?`) })

// etag is a strong entity tag for a document.
func etag(b []byte) string {
	h := sha256.Sum256(b)
	return `"` + hex.EncodeToString(h[:12]) + `"`
}

// serveDoc writes a rendered JSON document with its ETag, or 304 Not
// Modified when the client already has it.
func serveDoc(w http.ResponseWriter, r *http.Request, body []byte, tag string) {
	h := w.Header()
	h.Set("ETag", tag)
	h.Set("Cache-Control", "no-cache")
	if match := r.Header.Get("If-None-Match"); match != "" && etagMatch(match, tag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(body)
	w.Write([]byte{'\n'})
}

// etagMatch reports whether an If-None-Match header names tag.
func etagMatch(header, tag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == strings.TrimPrefix(tag, "W/") {
			return true
		}
	}
	return false
}
