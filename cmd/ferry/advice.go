package main

import (
	"errors"
	"fmt"

	"github.com/ferrydb/ferry/database"
)

// advice is what the operator should do about err, as a clause to append
// to its message ("" when there is nothing to add). The library's errors
// say what happened; the CLI knows the commands, flags and variables.
func (a *app) advice(err error) string {
	switch {
	case errors.Is(err, database.ErrUnreachable):
		from := a.cfg.databaseFrom
		if from == "" {
			from = "--database or FERRY_DATABASE_URL"
		}
		return fmt.Sprintf(" (check that the server is running and that the database URL, from %s, is right)", from)
	}
	return ""
}
