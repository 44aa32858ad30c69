package main

import (
	"context"
	"fmt"

	"github.com/ferry-migrate/ferry/config"
	"github.com/ferry-migrate/ferry/examples"
	"github.com/ferry-migrate/ferry/rehearse"
)

func cmdRehearse(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "rehearse", "-f ferry.hcl [--data DIR] [--keep DIR] [--warm] [--json]")
	spec := fs.String("f", "ferry.hcl", "the migration spec")
	data := fs.String("data", "", "a `dir` holding a copy of the service's config directory (default: the bundled Overseerr example data)")
	keep := fs.String("keep", "", "leave the rehearsal's files (allocation dir, journal, backups) in this empty `dir`")
	warm := fs.Bool("warm", false, "replicate before stopping, as migrate --warm does")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	svc, err := config.Load(*spec)
	if err != nil {
		return err
	}
	opt := rehearse.Options{Service: svc, Data: *data, Keep: *keep, Warm: *warm, Log: e.log}
	if *data == "" {
		// The bundled data is Overseerr's config directory.
		if len(svc.Databases) != 1 || svc.Databases[0].Path != svc.ConfigDir+"/db/db.sqlite3" {
			return &usageError{msg: "the bundled example data is Overseerr's; for " + svc.Name + " pass --data DIR holding a copy of its config directory " + svc.ConfigDir}
		}
		opt.DataFS, opt.DataRoot = examples.OverseerrData, examples.OverseerrDataRoot
	}
	if !*asJSON {
		ui := newStepUI(e.stderr)
		opt.Observer, opt.Progress = ui, ui.Progress
	}
	res, runErr := rehearse.Run(ctx, opt)
	if *asJSON && res != nil {
		if err := printJSON(e.stdout, "rehearsal", res); err != nil {
			return err
		}
	} else if res != nil {
		printRehearsal(e, res)
	}
	return runErr
}

func printRehearsal(e *env, res *rehearse.Result) {
	if res.Verify != nil {
		fmt.Fprint(e.stdout, "\nverification:\n", res.Verify.String())
	}
	for name, src := range res.Source {
		got := res.Restored[name]
		fmt.Fprintf(e.stdout, "\ndatabase %s\n  source:   %d tables, %d rows, schema %.12s\n", name, len(src.Tables), src.Rows(), src.SchemaHash)
		if got != nil {
			fmt.Fprintf(e.stdout, "  restored: %d tables, %d rows, schema %.12s, integrity %s\n", len(got.Tables), got.Rows(), got.SchemaHash, got.Integrity)
		}
	}
	if res.Verify == nil {
		return // it stopped before there was anything to compare
	}
	fmt.Fprintf(e.stdout, "\ndowntime (container stopped -> new allocation healthy): %s\n", res.Downtime)
	if res.Parity {
		fmt.Fprintln(e.stdout, "parity: the restored data equals the source")
	} else {
		fmt.Fprintln(e.stdout, "parity: FAILED")
	}
	if res.Dir != "" {
		fmt.Fprintln(e.stdout, "kept:", res.Dir)
	}
}
