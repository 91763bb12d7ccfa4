package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ferrydb/ferry/server/api"
)

// ferry's own API:
//
//	GET  /v1/status   api.Status (the `ferry status --json` document)
//	POST /v1/upgrade  optional api.UpgradeRequest; answers api.Upgrade[api.Status]
//	GET  /v1/history  every row of the history table

func (s *Server) v1Status(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := s.statusContext(r)
	defer cancel()
	snap, err := s.snaps.get(ctx)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, api.Error{Detail: err.Error()})
		return
	}
	serveDoc(w, r, snap.v1, snap.v1Tag)
}

// statusContext bounds a status request's reads of the database, so that
// a database that stopped answering does not pile up requests.
func (s *Server) statusContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), s.cfg.StatusTimeout)
}

// History pages: GET /v1/history?after=ID&limit=N returns up to N rows
// (default 100, at most 1000) with an id above ID, and a Link header to
// the next page when the page is full. Without either parameter, every
// row (the original answer, kept for older clients).
const (
	historyPageDefault = 100
	historyPageMax     = 1000
)

func (s *Server) v1History(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := s.statusContext(r)
	defer cancel()
	q := r.URL.Query()
	if q.Has("after") || q.Has("limit") {
		after, limit := int64(0), historyPageDefault
		var err error
		if v := q.Get("after"); v != "" {
			if after, err = strconv.ParseInt(v, 10, 64); err != nil || after < 0 {
				writeJSON(w, http.StatusBadRequest, api.Error{Detail: fmt.Sprintf("after=%q: want the id of a history row (0 or more)", v)})
				return
			}
		}
		if v := q.Get("limit"); v != "" {
			if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > historyPageMax {
				writeJSON(w, http.StatusBadRequest, api.Error{Detail: fmt.Sprintf("limit=%q: want 1 to %d", v, historyPageMax)})
				return
			}
		}
		recs, err := s.m.HistoryPage(ctx, after, limit)
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, api.Error{Detail: err.Error()})
			return
		}
		if len(recs) == limit {
			w.Header().Set("Link", fmt.Sprintf("</v1/history?after=%d&limit=%d>; rel=\"next\"", recs[len(recs)-1].ID, limit))
		}
		writeJSON(w, http.StatusOK, api.FromRecords(recs))
		return
	}
	recs, err := s.m.History(ctx)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, api.Error{Detail: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, api.FromRecords(recs))
}

func (s *Server) v1Upgrade(w http.ResponseWriter, r *http.Request) {
	to, msg, code := s.decodeUpgrade(r)
	if msg != "" {
		writeJSON(w, code, api.Error{Detail: msg})
		return
	}
	s.extendWrite(w)
	c := r.Context().Value(callerKey{}).(caller)
	start := time.Now()
	before, berr := s.statusDoc(r.Context())
	res, notes, err := s.upgrade(c, to)
	s.audit(c, "POST /v1/upgrade", start, res, notes, err)
	after, aerr := s.statusDoc(context.WithoutCancel(r.Context()))
	doc := api.Upgrade[*api.Status]{InitStatus: before, FinalStatus: after, Applied: applied(res), DurationMS: time.Since(start).Milliseconds()}
	doc.UpgradeResult, doc.Error, doc.BackupID, doc.LockWait = api.UpgradeSuccess, errText(err, berr, aerr), notes.BackupID, api.FromLockWait(err)
	code = http.StatusOK
	if err != nil {
		code, doc.UpgradeResult = http.StatusInternalServerError, api.UpgradeFailed
	}
	writeJSON(w, code, doc)
}

// decodeUpgrade reads the body of POST /v1/upgrade: empty, or an
// api.UpgradeRequest with nothing else in it. It returns the target (0:
// everything), or a message and status code saying what is wrong.
func (s *Server) decodeUpgrade(r *http.Request) (to int64, msg string, code int) {
	req, err := decodeUpgradeRequest(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return 0, "request body too large", http.StatusRequestEntityTooLarge
		}
		return 0, err.Error(), http.StatusBadRequest
	}
	if req.To == nil {
		return 0, "", 0
	}
	if err := s.m.CheckTarget(*req.To); err != nil {
		return 0, fmt.Sprintf("\"to\": %v", err), http.StatusBadRequest
	}
	return *req.To, "", 0
}

// decodeUpgradeRequest reads the body of POST /v1/upgrade: empty, or one
// JSON object with only the fields of api.UpgradeRequest, and a "to" that
// is a positive version. The error says what is wrong, naming an unknown
// field.
func decodeUpgradeRequest(body io.Reader) (api.UpgradeRequest, error) {
	var req api.UpgradeRequest
	// Read once as raw fields, to tell "to": null (an unset variable in
	// the client's script) from an absent "to", and a body of null from
	// an object.
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	err := dec.Decode(&raw)
	if err == nil {
		switch {
		case raw == nil:
			return req, errors.New(`request body is null: send {} or nothing to apply every pending migration, or {"to": VERSION}`)
		case string(raw["to"]) == "null":
			return req, errors.New(`"to" is null: give the version of a migration, or leave "to" out to apply every pending migration`)
		}
		b, _ := json.Marshal(raw)
		strict := json.NewDecoder(strings.NewReader(string(b)))
		strict.DisallowUnknownFields()
		err = strict.Decode(&req)
	}
	switch {
	case errors.Is(err, io.EOF):
		return api.UpgradeRequest{}, nil
	case err != nil:
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return req, err
		}
		if field, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return req, fmt.Errorf("unknown field %s in the request body: it takes only \"to\" (the version to upgrade to), or nothing to apply every pending migration", field)
		}
		return req, fmt.Errorf("request body must be JSON like {\"to\": 20261121000000} or empty: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return req, errors.New("request body must hold one JSON object, like {\"to\": 20261121000000}, and nothing after it")
	}
	if req.To != nil && *req.To <= 0 {
		return req, fmt.Errorf("\"to\" is %d: give the version of a migration (a positive number), or leave \"to\" out to apply every pending migration", *req.To)
	}
	return req, nil
}
