package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/ferry-migrate/ferry/sqlite"
)

// jsonVersion is the version of every --json document ferry prints;
// fields are only added within a version.
const jsonVersion = 1

// printJSON writes v wrapped with the output version.
func printJSON(w io.Writer, kind string, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Version int    `json:"version"`
		Kind    string `json:"kind"`
		Data    any    `json:"data"`
	}{jsonVersion, kind, v})
}

func cmdFingerprint(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "fingerprint", "DBFILE [--json]")
	asJSON := fs.Bool("json", false, "print JSON")
	// The file comes first in the synopsis; accept flags on either side.
	var file string
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		file, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if file == "" && fs.NArg() == 1 {
		file = fs.Arg(0)
	} else if fs.NArg() > 0 || file == "" {
		return &usageError{msg: "want exactly one database file"}
	}
	fp, err := sqlite.FingerprintFile(ctx, file)
	if err != nil {
		return err
	}
	if *asJSON {
		if err := printJSON(e.stdout, "fingerprint", fp); err != nil {
			return err
		}
	} else {
		fmt.Fprint(e.stdout, fp.String())
	}
	if !fp.OK() {
		return fmt.Errorf("fingerprint: %s fails its integrity check", file)
	}
	return nil
}
