package server

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ferrydb/ferry/internal/advice"
	"github.com/ferrydb/ferry/migrate"
	"github.com/ferrydb/ferry/server/api"
)

// The Metaflow metadata service's migration service routes, with the same
// paths, methods, status codes and bodies, so that Metaflow's
// migration_tools.py and existing runbooks work unchanged:
//
//	GET   /ping              200 "pong"
//	GET   /version           200 the newest release the schema supports (text)
//	GET   /db_schema_status  200 api.SchemaStatus, or 500 {"detail": ...}
//	PATCH /upgrade           200 "upgrade success", or 500 "upgrade failed"
//
// Unlike the original, /upgrade needs a token, migration_in_progress is true
// only while an upgrade actually holds the migration lock, and PATCH
// /upgrade answers with the api.Upgrade document when the client accepts
// JSON.
func (s *Server) metaflowRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /ping", func(w http.ResponseWriter, _ *http.Request) { writeText(w, http.StatusOK, "pong") })
	mux.HandleFunc("GET /version", s.version)
	mux.HandleFunc("GET /db_schema_status", s.dbSchemaStatus)
	if s.cfg.ReadOnly {
		mux.HandleFunc("/upgrade", s.disabled)
	} else {
		mux.HandleFunc("PATCH /upgrade", s.authorized(s.metaflowUpgrade))
	}
}

// SchemaStatus converts ferry's status to Metaflow's document.
func SchemaStatus(st *migrate.Status, all []*migrate.Migration) api.SchemaStatus {
	doc := api.SchemaStatus{
		IsUpToDate:          st.IsUpToDate,
		CurrentVersion:      strconv.FormatInt(st.CurrentVersion, 10),
		MigrationInProgress: st.MigrationInProgress,
		DBSchemaVersions:    make([]string, 0, len(all)),
		UnappliedMigrations: make([]string, 0, len(st.Pending)+len(st.Failed)),
	}
	for _, m := range all {
		doc.DBSchemaVersions = append(doc.DBSchemaVersions, strconv.FormatInt(m.Version, 10))
	}
	// A failed migration is not applied either.
	unapplied := map[int64]bool{}
	for _, f := range st.Failed {
		unapplied[f.Version] = true
	}
	for _, v := range st.Pending {
		unapplied[v] = true
	}
	for _, m := range all {
		if unapplied[m.Version] {
			doc.UnappliedMigrations = append(doc.UnappliedMigrations, strconv.FormatInt(m.Version, 10))
		}
	}
	return doc
}

func (s *Server) schemaStatus(ctx context.Context) (api.SchemaStatus, error) {
	snap, err := s.snaps.get(ctx)
	if err != nil {
		// Lists stay lists (the contract's types), even when unknown.
		return api.SchemaStatus{DBSchemaVersions: []string{}, UnappliedMigrations: []string{}}, err
	}
	doc := snap.schemaStatus(s.m.Migrations())
	return doc, snap.importsErr
}

func (s *Server) dbSchemaStatus(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := s.statusContext(r)
	defer cancel()
	snap, err := s.snaps.get(ctx)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, api.Error{Detail: err.Error()})
		return
	}
	if snap.importsErr != nil {
		// Whether the data is complete is unknown: not up to date, and
		// not a document that could be taken for it.
		writeJSON(w, http.StatusInternalServerError, api.Error{Detail: snap.importsErr.Error()})
		return
	}
	serveDoc(w, r, snap.schema, snap.schemaTag)
}

func (s *Server) version(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := s.statusContext(r)
	defer cancel()
	snap, err := s.snaps.get(ctx)
	if err != nil {
		writeText(w, http.StatusInternalServerError, "cannot read the schema version: "+err.Error())
		return
	}
	st := snap.st
	if s.cfg.Version == nil {
		writeText(w, http.StatusOK, strconv.FormatInt(st.CurrentVersion, 10))
		return
	}
	v, err := s.cfg.Version(ctx, st, s.m.Migrations())
	if err != nil {
		writeText(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeText(w, http.StatusOK, v)
}

// wantsJSON reports whether the client asked for a JSON answer.
func wantsJSON(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "application/json")
}

func (s *Server) metaflowUpgrade(w http.ResponseWriter, r *http.Request) {
	s.extendWrite(w)
	c := r.Context().Value(callerKey{}).(caller)
	start := time.Now()
	before, berr := s.schemaStatus(r.Context())
	res, notes, err := s.upgrade(c, 0)
	s.audit(c, "PATCH /upgrade", start, res, notes, err)
	code, result := http.StatusOK, api.UpgradeSuccess
	if err != nil {
		code, result = http.StatusInternalServerError, api.UpgradeFailed
	}
	if !wantsJSON(r) {
		writeText(w, code, result)
		return
	}
	after, aerr := s.schemaStatus(context.WithoutCancel(r.Context()))
	doc := api.Upgrade[api.SchemaStatus]{InitStatus: before, UpgradeResult: result, FinalStatus: after, Applied: applied(res), DurationMS: time.Since(start).Milliseconds()}
	doc.Error, doc.BackupID, doc.LockWait = errText(err, berr, aerr), notes.BackupID, api.FromLockWait(err)
	writeJSON(w, code, doc)
}

func applied(res *migrate.Result) []api.Applied {
	if res == nil {
		return []api.Applied{}
	}
	return api.FromApplied(res.Migrations)
}

// errText joins the upgrade's error with any failure to read the status
// documents around it.
func errText(upgrade error, statusErrs ...error) string {
	var parts []string
	if upgrade != nil {
		parts = append(parts, advice.Explain(upgrade, nil))
	}
	for _, e := range statusErrs {
		if e != nil {
			parts = append(parts, "reading status: "+e.Error())
		}
	}
	return strings.Join(parts, "; ")
}
