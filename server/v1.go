package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/ferrydb/ferry/migrate"
	"github.com/ferrydb/ferry/server/api"
)

// ferry's own API:
//
//	GET  /v1/status   api.Status (the `ferry status --json` document)
//	POST /v1/upgrade  optional api.UpgradeRequest; answers api.Upgrade[api.Status]
//	GET  /v1/history  every row of the history table

func (s *Server) v1Status(w http.ResponseWriter, r *http.Request) {
	doc, err := s.statusDoc(r.Context())
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, api.Error{Detail: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, doc)
}

// historyRow is a history record with its duration in milliseconds.
type historyRow struct {
	migrate.Record
	DurationMS int64 `json:"duration_ms"`
}

func (s *Server) v1History(w http.ResponseWriter, r *http.Request) {
	recs, err := s.m.History(r.Context())
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, api.Error{Detail: err.Error()})
		return
	}
	rows := make([]historyRow, len(recs))
	for i, rec := range recs {
		rows[i] = historyRow{rec, rec.Duration.Milliseconds()}
	}
	writeJSON(w, http.StatusOK, rows)
}

func (s *Server) v1Upgrade(w http.ResponseWriter, r *http.Request) {
	var req api.UpgradeRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil && !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeJSON(w, http.StatusRequestEntityTooLarge, api.Error{Detail: "request body too large"})
			return
		}
		writeJSON(w, http.StatusBadRequest, api.Error{Detail: "request body must be JSON like {\"to\": 20261121000000} or empty: " + err.Error()})
		return
	}
	if req.To < 0 {
		writeJSON(w, http.StatusBadRequest, api.Error{Detail: "\"to\" must not be negative"})
		return
	}
	s.extendWrite(w)
	c := r.Context().Value(callerKey{}).(caller)
	start := time.Now()
	before, berr := s.statusDoc(r.Context())
	res, notes, err := s.upgrade(c, req.To)
	s.audit(c, "POST /v1/upgrade", start, res, notes, err)
	after, aerr := s.statusDoc(context.WithoutCancel(r.Context()))
	doc := api.Upgrade[*api.Status]{InitStatus: before, FinalStatus: after, Applied: applied(res), DurationMS: time.Since(start).Milliseconds()}
	doc.UpgradeResult, doc.Error, doc.BackupID = api.UpgradeSuccess, errText(err, berr, aerr), notes.BackupID
	code := http.StatusOK
	if err != nil {
		code, doc.UpgradeResult = http.StatusInternalServerError, api.UpgradeFailed
	}
	writeJSON(w, code, doc)
}
