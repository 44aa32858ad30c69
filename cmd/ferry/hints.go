package main

import (
	"errors"
	"os"

	"github.com/ferry-migrate/ferry/config"
)

// hint turns an error into advice for the person at the terminal. Hints
// live only here, at the edge; packages return plain wrapped errors.
func hint(err error) string {
	var (
		cerr   *config.Error
		exists *specExistsError
	)
	switch {
	case errors.As(err, &cerr):
		return "fix the fields listed above in the spec; README.md describes every field"
	case errors.As(err, &exists):
		return "pass --force to overwrite it, or -o to write elsewhere"
	case errors.Is(err, os.ErrNotExist):
		return "check the path; run ferry from the directory holding ferry.hcl or pass -f"
	}
	return ""
}
