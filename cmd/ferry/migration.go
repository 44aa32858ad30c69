package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/compose"
	"github.com/ferry-migrate/ferry/config"
	"github.com/ferry-migrate/ferry/internal/atomicfile"
	"github.com/ferry-migrate/ferry/migrate"
	"github.com/ferry-migrate/ferry/runbook"
)

// migrationFlags are the flags every migration command shares.
type migrationFlags struct {
	spec    *string
	asJSON  *bool
	sides   sideFlags
	verify  migrate.VerifyOptions
	timeout *time.Duration
}

func addMigrationFlags(fs *flag.FlagSet, withJSON bool) *migrationFlags {
	f := &migrationFlags{spec: fs.String("f", "ferry.hcl", "the migration spec")}
	if withJSON {
		f.asJSON = fs.Bool("json", false, "print JSON")
	} else {
		f.asJSON = new(bool)
	}
	f.sides.add(fs)
	f.timeout = fs.Duration("deploy-timeout", 15*time.Minute, "how long to wait for the deployment to become healthy")
	fs.BoolVar(&f.verify.Ingress, "ingress", false, "also fetch the health path through the Traefik host")
	fs.BoolVar(&f.verify.Integrations, "integrations", false, "also call the status APIs of the integrations in the settings (Sonarr, Radarr, Plex)")
	return f
}

// open loads the spec and connects every side of the migration.
func (f *migrationFlags) open(ctx context.Context, e *env) (*session, error) {
	svc, err := config.Load(*f.spec)
	if err != nil {
		return nil, err
	}
	sess, err := f.sides.connect(ctx, e, svc, *f.spec, *f.timeout)
	if err != nil {
		return nil, err
	}
	sess.m.VerifyOptions = f.verify
	return sess, nil
}

// stateDir is where a migration keeps its journal and backups: beside
// the spec, so the spec and its migration travel together.
func stateDir(specPath string, svc *ferry.Service) string {
	return filepath.Join(filepath.Dir(specPath), ".ferry", svc.Name)
}

type planItem struct {
	Step    string `json:"step"`
	Pending bool   `json:"pending"`
	State   string `json:"state"`
	What    string `json:"what"`
}

func cmdPlan(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "plan", "-f ferry.hcl [--json]")
	f := addMigrationFlags(fs, true)
	if err := parse(fs, args); err != nil {
		return err
	}
	sess, err := f.open(ctx, e)
	if err != nil {
		return err
	}
	defer sess.close()
	m, j := sess.m, sess.j
	if err := m.Cluster.Preflight(ctx); err != nil {
		return fmt.Errorf("preflight: %w", err)
	}
	steps := m.Steps(j)
	runner := &runbook.Runner{Journal: j, Log: e.log}
	pending, err := runner.Pending(ctx, steps)
	if err != nil {
		return err
	}
	var items []planItem
	left := 0
	for i, s := range steps {
		state := runbook.StatePending
		if r := j.Lookup(s.Name); r != nil {
			state = r.State
		}
		items = append(items, planItem{Step: s.Name, Pending: pending[i], State: state, What: s.What})
		if pending[i] {
			left++
		}
	}
	if *f.asJSON {
		if err := printJSON(e.stdout, "plan", items); err != nil {
			return err
		}
	} else {
		for _, it := range items {
			mark := "done"
			if it.Pending {
				mark = "todo"
			}
			fmt.Fprintf(e.stdout, "%s  %-22s %s\n", mark, it.Step, it.What)
		}
		fmt.Fprintf(e.stdout, "\n%d of %d steps pending; journal: %s\n", left, len(items), j.Path())
	}
	if left > 0 {
		return errPending
	}
	return nil
}

func cmdMigrate(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "migrate", "-f ferry.hcl [--warm] [--no-rollback]")
	f := addMigrationFlags(fs, false)
	noRollback := fs.Bool("no-rollback", false, "on failure, leave everything as it is instead of rolling back")
	warm := fs.Bool("warm", false, "replicate while the service still runs, so the downtime is a final sync")
	if err := parse(fs, args); err != nil {
		return err
	}
	sess, err := f.open(ctx, e)
	if err != nil {
		return err
	}
	defer sess.close()
	m, j := sess.m, sess.j
	m.Warm = *warm
	ui := newStepUI(e.stderr)
	m.Progress = ui.Progress
	runner := &runbook.Runner{Journal: j, Log: e.log, Observer: ui}
	steps := m.Steps(j)
	runErr := runner.Run(ctx, steps)
	if runErr == nil {
		fmt.Fprintf(e.stdout, "migrated %s; downtime (container stopped -> new allocation healthy): %s\n", m.Service.Name, j.Facts[migrate.FactDowntime])
		fmt.Fprintf(e.stdout, "the compose service is kept until %s; then run: ferry finish -f %s\n", holdUntil(j, m.Service).Format(time.RFC3339), *f.spec)
		return nil
	}
	if *noRollback || ctx.Err() != nil {
		return fmt.Errorf("%w (not rolled back; run ferry migrate again to resume, or ferry rollback)", runErr)
	}
	fmt.Fprintf(e.stderr, "migration failed: %v\nrolling back\n", runErr)
	if err := runner.Undo(context.WithoutCancel(ctx), steps); err != nil {
		return errors.Join(runErr, fmt.Errorf("rollback: %w", err))
	}
	j.Log(time.Now(), "rolled back after: %v", runErr)
	if err := j.Save(); err != nil {
		return err
	}
	return fmt.Errorf("%w (rolled back: the compose service runs again on its own data)", runErr)
}

func cmdRollback(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "rollback", "-f ferry.hcl [--force]")
	f := addMigrationFlags(fs, false)
	force := fs.Bool("force", false, "roll back even after a successful verify (writes made on Nomad since are not carried back)")
	if err := parse(fs, args); err != nil {
		return err
	}
	sess, err := f.open(ctx, e)
	if err != nil {
		return err
	}
	defer sess.close()
	m, j := sess.m, sess.j
	if at := j.Facts[migrate.FactVerifiedAt]; at != "" && !*force {
		return fmt.Errorf("rollback: %w", &servingError{since: at})
	}
	runner := &runbook.Runner{Journal: j, Log: e.log, Observer: newStepUI(e.stderr)}
	if err := runner.Undo(ctx, m.Steps(j)); err != nil {
		return err
	}
	j.Log(time.Now(), "rolled back by ferry rollback")
	if err := j.Save(); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "rolled back %s: the Nomad job is stopped and the compose container runs; backups, replica and volume are kept\n", m.Service.Name)
	return nil
}

// servingError refuses a rollback that would lose the new service's writes.
type servingError struct{ since string }

func (e *servingError) Error() string {
	return "the service was verified on Nomad at " + e.since + " and may have taken writes since; the compose volume does not have them"
}

func cmdVerify(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "verify", "-f ferry.hcl [--json] [--ingress] [--integrations]")
	f := addMigrationFlags(fs, true)
	if err := parse(fs, args); err != nil {
		return err
	}
	sess, err := f.open(ctx, e)
	if err != nil {
		return err
	}
	defer sess.close()
	m := sess.m
	rep, err := m.Verify(ctx)
	if err != nil {
		return err
	}
	if *f.asJSON {
		if err := printJSON(e.stdout, "verify", rep); err != nil {
			return err
		}
	} else {
		fmt.Fprint(e.stdout, rep.String())
	}
	if !rep.OK() {
		return &migrate.VerifyError{Report: rep}
	}
	return nil
}

func holdUntil(j *runbook.Journal, svc *ferry.Service) time.Time {
	at, err := time.Parse(time.RFC3339Nano, j.Facts[migrate.FactVerifiedAt])
	if err != nil {
		return time.Time{}
	}
	return at.Add(svc.Hold)
}

func cmdFinish(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "finish", "-f ferry.hcl [--now]")
	f := addMigrationFlags(fs, false)
	now := fs.Bool("now", false, "do not wait for the end of the hold period")
	keepFile := fs.Bool("keep-compose-file", false, "remove the container but leave the compose file as it is")
	if err := parse(fs, args); err != nil {
		return err
	}
	sess, err := f.open(ctx, e)
	if err != nil {
		return err
	}
	defer sess.close()
	m, j := sess.m, sess.j
	if j.Facts[migrate.FactVerifiedAt] == "" {
		return errors.New("finish: the migration has not been verified; run ferry migrate (or ferry verify) first")
	}
	if until := holdUntil(j, m.Service); time.Now().Before(until) && !*now {
		return fmt.Errorf("finish: the hold period runs until %s (%s from now); pass --now to finish earlier", until.Format(time.RFC3339), time.Until(until).Round(time.Minute))
	}
	remover, ok := m.Source.(interface{ Remove(context.Context) error })
	if !ok {
		return errors.New("finish: this source cannot remove its container")
	}
	// The compose file first: if editing it fails, nothing was removed.
	composeFile := m.Service.Source.ComposeFile
	if composeFile != "" && !filepath.IsAbs(composeFile) {
		composeFile = filepath.Join(filepath.Dir(*f.spec), composeFile)
	}
	var edited []byte
	if composeFile != "" && !*keepFile {
		src, err := os.ReadFile(composeFile)
		if err != nil {
			return fmt.Errorf("finish: %w", err)
		}
		if edited, err = compose.RemoveService(src, m.Service.Source.Service); err != nil {
			return fmt.Errorf("finish: %s: %w", composeFile, err)
		}
		// Keep the original beside it: it is the only copy of the removed
		// service's definition.
		if err := atomicfile.WriteFile(composeFile+".ferry-"+m.Service.Name+".bak", src, 0o600); err != nil {
			return fmt.Errorf("finish: %w", err)
		}
	}
	if err := remover.Remove(ctx); err != nil {
		return fmt.Errorf("finish: %w", err)
	}
	if edited != nil {
		fi, err := os.Stat(composeFile)
		if err != nil {
			return fmt.Errorf("finish: %w", err)
		}
		if err := atomicfile.WriteFile(composeFile, edited, fi.Mode().Perm()); err != nil {
			return fmt.Errorf("finish: %w", err)
		}
	}
	j.SetFact(migrate.FactFinishedAt, time.Now().UTC().Format(time.RFC3339))
	if err := j.Save(); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "finished %s: the compose container is removed and %s no longer defines it (original kept as %s.ferry-%s.bak); the backups in %s are kept\n",
		m.Service.Name, composeFile, composeFile, m.Service.Name, filepath.Join(m.Dir, "backup"))
	return nil
}

type statusOut struct {
	Service    string              `json:"service"`
	Journal    string              `json:"journal"`
	Steps      []*runbook.Record   `json:"steps"`
	Facts      map[string]string   `json:"facts,omitempty"`
	Drills     []map[string]string `json:"drills,omitempty"`
	Job        *migrate.JobStatus  `json:"job,omitempty"`
	ReplicaLag map[string]string   `json:"replica_lag,omitempty"`
}

func cmdStatus(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "status", "-f ferry.hcl [--json]")
	f := addMigrationFlags(fs, true)
	if err := parse(fs, args); err != nil {
		return err
	}
	sess, err := f.open(ctx, e)
	if err != nil {
		return err
	}
	defer sess.close()
	m, j := sess.m, sess.j
	out := statusOut{Service: m.Service.Name, Journal: j.Path(), Steps: j.Steps, Facts: j.Facts, Drills: j.Drills}
	if j.Facts[migrate.FactVerifiedAt] != "" {
		if st, err := m.Cluster.Status(ctx); err == nil {
			st.RestoreLog = "" // status reports health, not logs
			out.Job = st
		} else {
			e.log.Warn("job status", "err", err)
		}
		out.ReplicaLag = map[string]string{}
		for name, r := range m.Replicas {
			if pos, err := r.Latest(ctx); err == nil {
				out.ReplicaLag[name] = time.Since(pos.Time).Round(time.Second).String()
			} else {
				out.ReplicaLag[name] = "unknown: " + err.Error()
			}
		}
	}
	if *f.asJSON {
		return printJSON(e.stdout, "status", out)
	}
	fmt.Fprintf(e.stdout, "service %s (journal %s)\n", out.Service, out.Journal)
	if len(out.Steps) == 0 {
		fmt.Fprintln(e.stdout, "no migration has started")
	}
	for _, r := range out.Steps {
		line := fmt.Sprintf("  %-8s %-22s", r.State, r.Name)
		if !r.Finished.IsZero() && !r.Started.IsZero() {
			line += " " + r.Finished.Sub(r.Started).Round(time.Millisecond).String()
		}
		if r.Error != "" {
			line += "  " + firstLine(r.Error)
		}
		fmt.Fprintln(e.stdout, line)
	}
	for _, k := range []string{migrate.FactDowntime, migrate.FactVerifiedAt, migrate.FactFinishedAt} {
		if v := out.Facts[k]; v != "" {
			fmt.Fprintf(e.stdout, "%s: %s\n", k, v)
		}
	}
	if out.Job != nil {
		fmt.Fprintf(e.stdout, "job: running=%t healthy=%t node=%s\n", out.Job.Running, out.Job.Healthy, out.Job.Node)
	}
	for name, lag := range out.ReplicaLag {
		fmt.Fprintf(e.stdout, "replica %s: last write %s ago\n", name, lag)
	}
	for _, d := range out.Drills {
		fmt.Fprintf(e.stdout, "drill %s at %s: %s\n", d["kind"], d["at"], d["result"])
	}
	return nil
}
