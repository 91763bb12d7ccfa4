package transfer

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"filippo.io/age"
)

// Problem is one thing an import's verification, or a check of an
// export, found wrong.
type Problem struct {
	Table string `json:"table"`
	// Chunk is the chunk's name when the problem is in one.
	Chunk string `json:"chunk,omitempty"`
	// What: "rows", "row_checksum", "chunk", "foreign_key", "sequence",
	// "key" (an encrypted export's key), "mapping", "resume" (a plan's
	// statement that resumes paused workloads, which does not prepare).
	What string `json:"what"`
	Want string `json:"want,omitempty"`
	Got  string `json:"got,omitempty"`
	// Detail says more, in words.
	Detail string `json:"detail,omitempty"`
	// keyColumns are the columns of a "foreign_key" problem's key, joined
	// by commas (a string keeps a Problem comparable).
	keyColumns string
}

func (p Problem) String() string {
	s := "table " + p.Table
	switch {
	case p.Table != "":
	case p.What == "key":
		s = "the export"
	case p.What == "mapping":
		return "mapping: " + p.Detail // the detail names its table and column
	case p.What == "resume":
		return p.Detail
	default:
		s = "the schema" // a sequence no column owns
	}
	if p.Chunk != "" {
		s += ", " + p.Chunk
	}
	s += ": " + p.What
	if p.Want != "" || p.Got != "" {
		s += fmt.Sprintf(": want %s, got %s", p.Want, p.Got)
	}
	if p.Detail != "" {
		s += ": " + p.Detail
	}
	return s
}

// ErrMismatch is wrapped by the error of an import or a check whose
// verification found problems; the report lists them.
var ErrMismatch = errors.New("verification failed")

// mismatch is the error for problems.
func mismatch(problems []Problem) error {
	if len(problems) == 0 {
		return nil
	}
	s := problems[0].String()
	if len(problems) > 1 {
		s += fmt.Sprintf(" (and %d more)", len(problems)-1)
	}
	return fmt.Errorf("%w: %s", ErrMismatch, s)
}

// CheckResult is what Check found.
type CheckResult struct {
	Manifest *Manifest `json:"manifest"`
	Problems []Problem `json:"problems"`
	// RowsUnchecked are encrypted tables whose chunks were checked
	// against their sha256 but not decrypted: no identity was given.
	RowsUnchecked []string `json:"rows_unchecked,omitempty"`
}

// Check reads every chunk of export id, checking each chunk's size and
// sha256, decoding every row, and comparing each table's row count and
// row checksum with the manifest. It needs no database. The chunks of an
// encrypted table are decrypted with identities; without any, only their
// sizes and checksums are checked. The error wraps ErrCorrupt or
// ErrMismatch when the export is bad (the problems name table and chunk),
// ErrKey when identities cannot open it.
func (s *Store) Check(ctx context.Context, id string, identities []age.Identity) (*CheckResult, error) {
	m, err := s.Manifest(ctx, id)
	if err != nil {
		return nil, err
	}
	res := &CheckResult{Manifest: m, Problems: []Problem{}}
	var key age.Identity
	switch {
	case m.Encryption != nil && len(identities) > 0:
		if key, err = s.exportKey(ctx, m, identities); err != nil {
			return res, err
		}
		if err := m.unseal(key); err != nil {
			return res, err
		}
	case m.Encryption != nil:
		// Without an identity the key cannot be opened, but it must be
		// there, as exported: without it, no one can.
		if _, err := s.readKey(ctx, m.ID, m.Encryption); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				return res, err
			}
			detail := err.Error()
			if !errors.Is(err, errKeyLost) {
				detail += "; the export cannot be decrypted without it"
			}
			res.Problems = append(res.Problems, Problem{What: "key", Detail: detail})
		}
	}
	for _, t := range m.Tables {
		encrypted := m.Encryption.encrypts(t.Name)
		if encrypted && key == nil {
			res.RowsUnchecked = append(res.RowsUnchecked, t.Name)
			for _, c := range t.Chunks {
				if err := s.drainChunk(ctx, id, c); err != nil {
					if !errors.Is(err, ErrCorrupt) {
						return res, err
					}
					res.Problems = append(res.Problems, Problem{Table: t.Name, Chunk: c.Name, What: "chunk", Detail: err.Error()})
				}
			}
			continue
		}
		var ck age.Identity
		if encrypted {
			ck = key
		}
		var sum rowSum
		var rows int64
		unread := false // a chunk's rows could not all be read
		for _, c := range t.Chunks {
			n, err := s.scanChunk(ctx, id, c, ck, len(t.Columns), sum.addHash)
			rows += n
			if err != nil {
				if !errors.Is(err, ErrCorrupt) && !errors.Is(err, errFormat) {
					return res, err
				}
				res.Problems = append(res.Problems, Problem{Table: t.Name, Chunk: c.Name, What: "chunk", Detail: err.Error()})
				unread = true
				continue
			}
			if n != c.Rows {
				res.Problems = append(res.Problems, Problem{Table: t.Name, Chunk: c.Name, What: "rows", Want: fmt.Sprint(c.Rows), Got: fmt.Sprint(n)})
			}
		}
		if unread {
			// The table's count and checksum would only repeat the
			// chunk's problem, as rows missing that are only unread.
			continue
		}
		if rows != t.Rows {
			res.Problems = append(res.Problems, Problem{Table: t.Name, What: "rows", Want: fmt.Sprint(t.Rows), Got: fmt.Sprint(rows)})
		}
		if got := sum.String(); got != t.RowChecksum {
			res.Problems = append(res.Problems, Problem{Table: t.Name, What: "row_checksum", Want: t.RowChecksum, Got: got})
		}
	}
	return res, mismatch(res.Problems)
}

// drainChunk reads chunk c's stored bytes and checks size and sha256.
func (s *Store) drainChunk(ctx context.Context, id string, c Chunk) error {
	r, err := s.s.OpenChecked(ctx, id+"/"+c.Name, c.Size, c.SHA256)
	if err != nil {
		return err
	}
	defer r.Close()
	_, err = io.Copy(io.Discard, r)
	return err
}

// scanChunk calls fn with the sha256 of every row line of chunk c, after
// checking that it decodes into ncol values, and returns the number of
// rows. A row too long to hold is decoded and summed as it is read.
func (s *Store) scanChunk(ctx context.Context, id string, c Chunk, key age.Identity, ncol int, fn func([sha256.Size]byte)) (int64, error) {
	r, err := s.openChunk(ctx, id, c, key)
	if err != nil {
		return 0, err
	}
	defer r.close()
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		line, sr, err := r.next(max(ncol, 1))
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		if sr != nil {
			h := sha256.New()
			sr.h = h
			if err := drainRow(sr); err != nil {
				return n, r.failed(fmt.Errorf("%s/%s row %d: %w", id, c.Name, n+1, err))
			}
			var sum [sha256.Size]byte
			fn([sha256.Size]byte(h.Sum(sum[:0])))
			n++
			continue
		}
		if _, err := decodeRow(line, ncol); err != nil {
			return n, r.failed(fmt.Errorf("%s/%s row %d: %w", id, c.Name, n+1, err))
		}
		fn(sha256.Sum256(line))
		n++
	}
}

// drainRow reads a streamed row to its end.
func drainRow(sr *streamRow) error {
	for range sr.ncol {
		if _, err := sr.next(); err != nil {
			return err
		}
	}
	return sr.finish()
}
