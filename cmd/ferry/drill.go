package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/ferry-migrate/ferry/config"
	"github.com/ferry-migrate/ferry/drill"
	"github.com/ferry-migrate/ferry/litestream"
	"github.com/ferry-migrate/ferry/migrate"
	"github.com/ferry-migrate/ferry/runbook"
)

func cmdDrill(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return &usageError{msg: "want a drill: restore or failover"}
	}
	switch args[0] {
	case "restore":
		return cmdDrillRestore(ctx, e, args[1:])
	case "failover":
		return cmdDrillFailover(ctx, e, args[1:])
	}
	return &usageError{msg: fmt.Sprintf("unknown drill %q: want restore or failover", args[0])}
}

func cmdDrillRestore(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "drill restore", "-f ferry.hcl [--json]")
	spec := fs.String("f", "ferry.hcl", "the migration spec")
	asJSON := fs.Bool("json", false, "print JSON")
	tmp := fs.String("tmp", os.TempDir(), "where to restore (a scratch `dir`; needs room for every database)")
	var sides sideFlags
	sides.add(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	svc, err := config.Load(*spec)
	if err != nil {
		return err
	}
	replicas, _, err := sides.replicas(ctx, e, svc)
	if err != nil {
		return err
	}
	at := time.Now().UTC()
	results, runErr := drill.Restore(ctx, svc, replicas, *tmp, time.Now)
	if runErr != nil && !errors.Is(runErr, drill.ErrFailed) {
		return runErr
	}
	// Record the outcome where ferry status shows it.
	if j, err := runbook.OpenJournal(migrate.JournalPath(stateDir(*spec, svc)), svc.Name); err == nil {
		for _, r := range results {
			rec := map[string]string{"kind": "restore", "at": at.Format(time.RFC3339), "database": r.Database,
				"age": r.Age.Round(time.Second).String(), "restore_time": r.RestoreTime.Round(time.Millisecond).String(),
				"size": strconv.FormatInt(r.Size, 10), "txid": strconv.FormatUint(r.TXID, 10), "result": "passed"}
			if !r.OK() {
				rec["result"] = "FAILED: " + r.Problems[0]
			}
			j.Drills = append(j.Drills, rec)
		}
		if err := j.Save(); err != nil {
			e.log.Warn("record the drill in the journal", "err", err)
		}
	}
	if *asJSON {
		if err := printJSON(e.stdout, "restore-drill", results); err != nil {
			return err
		}
	} else {
		for _, r := range results {
			status := "passed"
			if !r.OK() {
				status = "FAILED"
			}
			fmt.Fprintf(e.stdout, "database %s (%s): %s\n  latest write %s (%s ago), txid %d, %s restored in %s\n",
				r.Database, r.Replica, status, r.LatestWrite.Format(time.RFC3339), r.Age.Round(time.Second), r.TXID, byteSize(r.Size), r.RestoreTime.Round(time.Millisecond))
			for _, p := range r.Problems {
				fmt.Fprintf(e.stdout, "  problem: %s\n", p)
			}
		}
	}
	return runErr
}

// cmdRestore is a point-in-time restore to a local file, for inspection;
// it never touches the live service.
func cmdRestore(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "restore", "-f ferry.hcl --to FILE [--db NAME] [--at TIME | --txid N]")
	spec := fs.String("f", "ferry.hcl", "the migration spec")
	to := fs.String("to", "", "the `file` to restore into (must not exist)")
	dbName := fs.String("db", "", "which database (default: the only one)")
	at := fs.String("at", "", "restore the state as of this `time` (RFC 3339)")
	txid := fs.Uint64("txid", 0, "restore the state as of this transaction id")
	var sides sideFlags
	sides.add(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *to == "" {
		return &usageError{msg: "--to is required"}
	}
	var opt litestream.RestoreOptions
	if *at != "" {
		t, err := time.Parse(time.RFC3339Nano, *at)
		if err != nil {
			return &usageError{msg: fmt.Sprintf("--at %q: want RFC 3339, e.g. 2026-11-27T08:00:00Z", *at)}
		}
		opt.Timestamp = t
	}
	if *txid != 0 {
		if *at != "" {
			return &usageError{msg: "give --at or --txid, not both"}
		}
		opt.TXID = *txid
	}
	svc, err := config.Load(*spec)
	if err != nil {
		return err
	}
	name := *dbName
	if name == "" {
		if len(svc.Databases) != 1 {
			return &usageError{msg: "the service has several databases: pick one with --db"}
		}
		name = svc.Databases[0].Name
	}
	replicas, _, err := sides.replicas(ctx, e, svc)
	if err != nil {
		return err
	}
	r, ok := replicas[name]
	if !ok {
		return fmt.Errorf("restore: the spec has no database %q", name)
	}
	pos, err := r.Restore(ctx, *to, opt)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "restored %s at txid %d (%s) to %s; integrity check passed\n", name, pos.TXID, pos.Time.UTC().Format(time.RFC3339), *to)
	return nil
}

func cmdDrillFailover(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "drill failover", "-f ferry.hcl [--json]")
	f := addMigrationFlags(fs, true)
	if err := parse(fs, args); err != nil {
		return err
	}
	sess, err := f.open(ctx, e)
	if err != nil {
		return err
	}
	defer sess.close()
	j := sess.j
	at := time.Now().UTC()
	fo := &drill.Failover{Service: sess.m.Service, Nomad: sess.nomad, Replicas: sess.replicas, Migration: sess.m, Journal: j, Tmp: os.TempDir()}
	res, runErr := fo.Run(ctx)
	if res != nil {
		rec := map[string]string{"kind": "failover", "at": at.Format(time.RFC3339), "from": res.From, "to": res.To,
			"rto": res.RTO.Round(time.Millisecond).String(), "rpo_zero": strconv.FormatBool(res.RPOZero), "result": "passed"}
		if runErr != nil {
			rec["result"] = "FAILED: " + firstLine(runErr.Error())
		}
		j.Drills = append(j.Drills, rec)
		if err := j.Save(); err != nil {
			runErr = errors.Join(runErr, err)
		}
		if *f.asJSON {
			if err := printJSON(e.stdout, "failover-drill", res); err != nil {
				return err
			}
		} else {
			fmt.Fprintf(e.stdout, "drained %s; replacement healthy on %s after %s (RTO); no replicated write lost: %t; node eligible again: %t\n",
				res.From, res.To, res.RTO.Round(time.Millisecond), res.RPOZero, res.Eligible)
			if res.Verify != nil {
				fmt.Fprint(e.stdout, res.Verify.String())
			}
			for _, p := range res.Problems {
				fmt.Fprintln(e.stdout, "problem:", p)
			}
		}
	}
	return runErr
}
