package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/backup"
	"github.com/ferry-migrate/ferry/runbook"
	"github.com/ferry-migrate/ferry/sqlite"
)

// Migration is one service's move. Dir holds the journal, the backups
// and the fingerprints; nothing in it is secret except the backed-up
// config files, which are written 0600 by the Source.
type Migration struct {
	Service  *ferry.Service
	Dir      string
	Source   Source
	Replicas map[string]Replica // by database name
	Cluster  Cluster
	// Warm, when the Source implements Warm, replicates while the service
	// still runs, so the downtime is a final sync instead of a full seed.
	Warm     bool
	Log      *slog.Logger
	Now      func() time.Time
	Progress func(step string, done, total int64)
	HTTP     *http.Client
	// VerifyOptions says which verify checks reach beyond the cluster.
	VerifyOptions VerifyOptions

	report *Report // of the verify step, when it ran in this process
}

// Report is what the verify step found, or nil when it did not run in
// this process.
func (m *Migration) Report() *Report { return m.report }

// Step names, in order. The journal refers to steps by these names.
const (
	StepPreflight   = "preflight"
	StepBackup      = "backup"
	StepWarm        = "warm-replication"
	StepStop        = "stop-container"
	StepFinalBackup = "final-backup"
	StepSeed        = "seed"
	StepProof       = "seed-proof"
	StepVolume      = "volume"
	StepConfig      = "config-files"
	StepDeploy      = "deploy"
	StepVerify      = "verify"
)

// Facts recorded in the journal.
const (
	FactStoppedAt  = "stopped_at"
	FactHealthyAt  = "healthy_at"
	FactDowntime   = "downtime"
	FactVerifiedAt = "verified_at"
	FactFinishedAt = "finished_at"
)

func (m *Migration) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

func (m *Migration) progress(step string) Progress {
	if m.Progress == nil {
		return nil
	}
	return func(done, total int64) { m.Progress(step, done, total) }
}

// JournalPath is where the migration's journal lives.
func (m *Migration) JournalPath() string { return JournalPath(m.Dir) }

// JournalPath is the journal of the migration whose state is in dir.
func JournalPath(dir string) string { return filepath.Join(dir, "journal.json") }

func (m *Migration) backupDir(kind string) string { return filepath.Join(m.Dir, "backup", kind) }

func (m *Migration) fingerprintPath(db string) string {
	return filepath.Join(m.Dir, "fingerprints", "source-"+db+".json")
}

// SourceFingerprint is the fingerprint of a database as the stopped
// source held it, recorded by the final-backup step.
func (m *Migration) SourceFingerprint(db string) (*sqlite.Fingerprint, error) {
	b, err := os.ReadFile(m.fingerprintPath(db))
	if err != nil {
		return nil, fmt.Errorf("source fingerprint of %s: %w", db, err)
	}
	var fp sqlite.Fingerprint
	if err := json.Unmarshal(b, &fp); err != nil {
		return nil, fmt.Errorf("source fingerprint of %s: %w", db, err)
	}
	return &fp, nil
}

// Steps returns the migration's steps in the task list's order. j is the
// journal the steps read facts from and record facts in.
func (m *Migration) Steps(j *runbook.Journal) []runbook.Step {
	steps := []runbook.Step{
		{
			Name:  StepPreflight,
			What:  "check the cluster can take the job (agent, ACL, region, datacenters, CSI plugin, image architectures); changes nothing",
			Check: func(ctx context.Context, rec *runbook.Record) (bool, error) { return rec.Facts["passed"] != "", nil },
			Apply: func(ctx context.Context, rec *runbook.Record) error {
				if err := m.Cluster.Preflight(ctx); err != nil {
					return err
				}
				rec.Set("passed", m.now().UTC().Format(time.RFC3339))
				return nil
			},
		},
		{
			Name: StepBackup,
			What: "copy the databases (with -wal/-shm) and config files of the running service to " + m.backupDir("pre") + " with a sha256 manifest (task T012)",
			Check: func(ctx context.Context, rec *runbook.Record) (bool, error) {
				_, err := backup.Verify(m.backupDir("pre"))
				return err == nil, nil
			},
			Apply: func(ctx context.Context, rec *runbook.Record) error {
				b, err := m.Source.Backup(ctx, m.backupDir("pre"), m.progress(StepBackup))
				if err != nil {
					return err
				}
				rec.Set("files", strconv.Itoa(len(b.Files)))
				rec.Set("bytes", strconv.FormatInt(b.Size(), 10))
				return nil
			},
		},
	}
	warm, canWarm := m.Source.(Warm)
	if m.Warm && canWarm {
		steps = append(steps, runbook.Step{
			Name:  StepWarm,
			What:  "replicate the live databases to the object store while the service still serves, so the stop waits only for a final sync",
			Check: func(ctx context.Context, rec *runbook.Record) (bool, error) { return rec.Facts["started"] != "", nil },
			Apply: func(ctx context.Context, rec *runbook.Record) error {
				if err := warm.StartWarm(ctx); err != nil {
					return err
				}
				rec.Set("started", m.now().UTC().Format(time.RFC3339))
				return nil
			},
		})
	}
	steps = append(steps,
		runbook.Step{
			Name: StepStop,
			What: "stop the compose container (task T013); undo starts it again",
			Check: func(ctx context.Context, rec *runbook.Record) (bool, error) {
				running, err := m.Source.Running(ctx)
				return err == nil && !running && rec.Facts[FactStoppedAt] != "", err
			},
			Apply: func(ctx context.Context, rec *runbook.Record) error {
				if rec.Facts[FactStoppedAt] == "" {
					rec.Set(FactStoppedAt, m.now().UTC().Format(time.RFC3339Nano))
				}
				return m.Source.Stop(ctx)
			},
			Undo: func(ctx context.Context, rec *runbook.Record) error {
				if err := m.Source.Start(ctx); err != nil {
					return err
				}
				delete(rec.Facts, FactStoppedAt)
				return nil
			},
		},
		runbook.Step{
			Name: StepFinalBackup,
			What: "copy the stopped service's files to " + m.backupDir("final") + " and fingerprint each database: the state every later proof compares with",
			Check: func(ctx context.Context, rec *runbook.Record) (bool, error) {
				if _, err := backup.Verify(m.backupDir("final")); err != nil {
					return false, nil
				}
				for _, db := range m.Service.Databases {
					if _, err := m.SourceFingerprint(db.Name); err != nil {
						return false, nil
					}
				}
				return true, nil
			},
			Apply: func(ctx context.Context, rec *runbook.Record) error {
				if running, err := m.Source.Running(ctx); err != nil || running {
					return errors.Join(errors.New("the service is running; its files would not be consistent"), err)
				}
				b, err := m.Source.Backup(ctx, m.backupDir("final"), m.progress(StepFinalBackup))
				if err != nil {
					return err
				}
				for _, db := range m.Service.Databases {
					fp, err := m.fingerprintBackup(ctx, m.backupDir("final"), b, db)
					if err != nil {
						return err
					}
					if !fp.OK() {
						return fmt.Errorf("database %s fails its integrity check in the stopped source: %s", db.Name, fp.Integrity)
					}
					if missing := missingTables(fp, db.UserTables); len(missing) > 0 {
						return &EmptySourceError{Database: db.Name, Path: db.Path, Missing: missing}
					}
					out, _ := json.MarshalIndent(fp, "", "  ")
					if err := runbook.WriteFileAtomic(m.fingerprintPath(db.Name), out, 0o600); err != nil {
						return err
					}
					rec.Set(db.Name+".tables", strconv.Itoa(len(fp.Tables)))
					rec.Set(db.Name+".rows", strconv.FormatInt(fp.Rows(), 10))
				}
				return nil
			},
			// A later migration must fingerprint the source again: the
			// service runs (and writes) after a rollback. The superseded
			// backup is kept, renamed, never deleted.
			Undo: func(ctx context.Context, rec *runbook.Record) error {
				for _, db := range m.Service.Databases {
					if err := os.Remove(m.fingerprintPath(db.Name)); err != nil && !errors.Is(err, os.ErrNotExist) {
						return err
					}
				}
				dir := m.backupDir("final")
				if _, err := os.Stat(dir); err != nil {
					return nil
				}
				return os.Rename(dir, dir+"-superseded-"+m.now().UTC().Format("20060102T150405.000000000Z"))
			},
		},
	)
	for _, db := range m.Service.Databases {
		steps = append(steps, m.seedStep(db, warm, m.Warm && canWarm), m.proofStep(db, j))
	}
	steps = append(steps,
		runbook.Step{
			Name:  StepVolume,
			What:  "create the " + m.Service.Storage.Kind + " volume " + m.Service.Storage.VolumeID + " for the config files (task T016); never deleted by ferry",
			Check: func(ctx context.Context, rec *runbook.Record) (bool, error) { return m.Cluster.VolumeReady(ctx) },
			Apply: func(ctx context.Context, rec *runbook.Record) error { return m.Cluster.EnsureVolume(ctx) },
		},
		runbook.Step{
			Name: StepConfig,
			What: fmt.Sprintf("copy %d config file(s) onto the volume and compare their sha256 with the backup (tasks T017, T018)", len(m.Service.ConfigFiles)),
			Check: func(ctx context.Context, rec *runbook.Record) (bool, error) {
				b, err := backup.Verify(m.backupDir("final"))
				if err != nil {
					return false, nil
				}
				for _, p := range m.Service.ConfigFiles {
					f, ok := b.Lookup(p)
					if ok && rec.Facts[p] != f.SHA256 {
						return false, nil
					}
				}
				return true, nil
			},
			Apply: func(ctx context.Context, rec *runbook.Record) error { return m.writeConfig(ctx, rec) },
		},
		runbook.Step{
			Name: StepDeploy,
			What: "register the job and wait until it is healthy (tasks T048-T053); undo stops the job",
			Check: func(ctx context.Context, rec *runbook.Record) (bool, error) {
				st, err := m.Cluster.Status(ctx)
				if err != nil {
					return false, err
				}
				return st.Running && st.Healthy && rec.Facts[FactHealthyAt] != "", nil
			},
			Apply: func(ctx context.Context, rec *runbook.Record) error {
				if err := m.Cluster.Deploy(ctx, func(msg string) { m.Log.Info("deploy", "event", msg) }); err != nil {
					return err
				}
				healthy := m.now().UTC()
				rec.Set(FactHealthyAt, healthy.Format(time.RFC3339Nano))
				if stop := j.Lookup(StepStop); stop != nil {
					if t, err := time.Parse(time.RFC3339Nano, stop.Facts[FactStoppedAt]); err == nil {
						j.SetFact(FactDowntime, healthy.Sub(t).Round(time.Millisecond).String())
					}
				}
				return nil
			},
			Undo: func(ctx context.Context, rec *runbook.Record) error {
				if err := m.Cluster.Stop(ctx); err != nil {
					return err
				}
				delete(rec.Facts, FactHealthyAt)
				return nil
			},
		},
		runbook.Step{
			Name: StepVerify,
			What: "prove the deployed service is healthy and holds the same user data (tasks T052-T061)",
			Check: func(ctx context.Context, rec *runbook.Record) (bool, error) {
				return rec.Facts[FactVerifiedAt] != "", nil
			},
			Apply: func(ctx context.Context, rec *runbook.Record) error {
				rep, err := m.Verify(ctx)
				if err != nil {
					return err
				}
				m.report = rep
				if !rep.OK() {
					return &VerifyError{Report: rep}
				}
				at := m.now().UTC().Format(time.RFC3339Nano)
				rec.Set(FactVerifiedAt, at)
				j.SetFact(FactVerifiedAt, at)
				return nil
			},
			Undo: func(ctx context.Context, rec *runbook.Record) error {
				delete(rec.Facts, FactVerifiedAt)
				delete(j.Facts, FactVerifiedAt)
				return nil
			},
		},
	)
	return steps
}

func (m *Migration) seedStep(db ferry.Database, warm Warm, isWarm bool) runbook.Step {
	name := StepSeed + ":" + db.Name
	what := "replicate " + db.Path + " from the final backup into s3://" + m.Service.ObjectStore.Bucket + "/" + db.ReplicaPath + " until the replica covers its last transaction (task T014)"
	if isWarm {
		what = "final sync of the warm replication of " + db.Path + " (task T014)"
	}
	return runbook.Step{
		Name: name,
		What: what,
		Check: func(ctx context.Context, rec *runbook.Record) (bool, error) {
			want, err := strconv.ParseUint(rec.Facts["txid"], 10, 64)
			if err != nil || rec.Facts["source_sha256"] == "" {
				return false, nil
			}
			b, err := backup.Verify(m.backupDir("final"))
			if err != nil {
				return false, nil
			}
			if f, ok := b.Lookup(db.Path); !ok || f.SHA256 != rec.Facts["source_sha256"] {
				return false, nil // the source changed since: seed again
			}
			pos, err := m.Replicas[db.Name].Latest(ctx)
			if err != nil {
				return false, nil
			}
			return pos.TXID >= want, nil
		},
		Apply: func(ctx context.Context, rec *runbook.Record) error {
			b, err := backup.Verify(m.backupDir("final"))
			if err != nil {
				return err
			}
			f, ok := b.Lookup(db.Path)
			if !ok {
				return fmt.Errorf("the final backup has no copy of %s", db.Path)
			}
			// Nothing else may write to the replica: whatever replication
			// is left running (this run's, or an interrupted warm run's)
			// syncs one last time and stops first.
			if warm != nil {
				if err := warm.FinishWarm(ctx); err != nil {
					return err
				}
			}
			var pos Position
			if isWarm {
				// The final sync's position is read back from the store;
				// the proof step then shows it equals the stopped source.
				if pos, err = m.Replicas[db.Name].Latest(ctx); err != nil {
					return err
				}
			} else {
				// Seed reads the backup's copy (with its -wal) and never
				// writes to it.
				if pos, err = m.Replicas[db.Name].Seed(ctx, f.Local(m.backupDir("final")), m.progress(name)); err != nil {
					return err
				}
			}
			rec.Set("txid", strconv.FormatUint(pos.TXID, 10))
			rec.Set("source_sha256", f.SHA256)
			return nil
		},
	}
}

func (m *Migration) proofStep(db ferry.Database, j *runbook.Journal) runbook.Step {
	name := StepProof + ":" + db.Name
	return runbook.Step{
		Name: name,
		What: "restore the replica of " + db.Name + " to a temporary file and prove its fingerprint equals the stopped source's (task T015)",
		Check: func(ctx context.Context, rec *runbook.Record) (bool, error) {
			src, err := m.SourceFingerprint(db.Name)
			if err != nil {
				return false, nil
			}
			// Proved means: proved at the position the seed recorded.
			seed := j.Lookup(StepSeed + ":" + db.Name)
			return seed != nil && rec.Facts["proved_txid"] != "" && rec.Facts["proved_txid"] == seed.Facts["txid"] && rec.Facts["schema_hash"] == src.SchemaHash, nil
		},
		Apply: func(ctx context.Context, rec *runbook.Record) error {
			src, err := m.SourceFingerprint(db.Name)
			if err != nil {
				return err
			}
			got, pos, err := m.restoreAndFingerprint(ctx, db, m.progress(name))
			if err != nil {
				return err
			}
			if diffs := sqlite.Diff(src, got); len(diffs) > 0 || !got.OK() {
				return &ParityError{Database: db.Name, Diffs: diffs, Integrity: got.Integrity}
			}
			rec.Set("proved_txid", strconv.FormatUint(pos.TXID, 10))
			rec.Set("schema_hash", got.SchemaHash)
			rec.Set("rows", strconv.FormatInt(got.Rows(), 10))
			return nil
		},
	}
}

func (m *Migration) writeConfig(ctx context.Context, rec *runbook.Record) error {
	b, err := backup.Verify(m.backupDir("final"))
	if err != nil {
		return err
	}
	files := map[string][]byte{}
	want := map[string]string{}
	for _, p := range m.Service.ConfigFiles {
		f, ok := b.Lookup(p)
		if !ok {
			m.Log.Warn("config file not found in the source; skipped", "path", p)
			continue
		}
		data, err := os.ReadFile(f.Local(m.backupDir("final")))
		if err != nil {
			return err
		}
		files[p], want[p] = data, f.SHA256
	}
	got, err := m.Cluster.WriteConfig(ctx, files)
	if err != nil {
		return err
	}
	for p, sum := range want {
		if got[p] != sum {
			return fmt.Errorf("config file %s on the volume has sha256 %s, the backup %s", p, got[p], sum)
		}
		rec.Set(p, sum)
	}
	return nil
}

func (m *Migration) fingerprintBackup(ctx context.Context, dir string, b *backup.Manifest, db ferry.Database) (*sqlite.Fingerprint, error) {
	f, ok := b.Lookup(db.Path)
	if !ok {
		return nil, fmt.Errorf("the backup has no copy of %s", db.Path)
	}
	return sqlite.FingerprintFile(ctx, f.Local(dir))
}

// restoreAndFingerprint restores the latest replica of db into a scratch
// file, fingerprints it and removes it.
func (m *Migration) restoreAndFingerprint(ctx context.Context, db ferry.Database, progress Progress) (*sqlite.Fingerprint, Position, error) {
	dir, err := os.MkdirTemp(m.Dir, "proof-"+db.Name+"-")
	if err != nil {
		return nil, Position{}, err
	}
	defer os.RemoveAll(dir)
	dst := filepath.Join(dir, db.File())
	pos, err := m.Replicas[db.Name].Restore(ctx, dst, progress)
	if err != nil {
		return nil, Position{}, err
	}
	fp, err := sqlite.FingerprintFile(ctx, dst)
	return fp, pos, err
}

func missingTables(fp *sqlite.Fingerprint, tables []string) []string {
	var missing []string
	for _, t := range tables {
		if _, ok := fp.Table(t); !ok {
			missing = append(missing, t)
		}
	}
	return missing
}

// EmptySourceError is a stopped source database that lacks the tables
// its users' data lives in: what copying an Overseerr database without
// its -wal gives. Migrating it would move an empty database.
type EmptySourceError struct {
	Database, Path string
	Missing        []string
}

func (e *EmptySourceError) Error() string {
	return fmt.Sprintf("database %s (%s) in the stopped source has no %s table(s): its rows may be in a -wal that is missing; refusing to migrate an empty database",
		e.Database, e.Path, strings.Join(e.Missing, ", "))
}

// ParityError is a replica whose restore does not equal the source.
type ParityError struct {
	Database  string
	Diffs     []sqlite.Difference
	Integrity string
}

func (e *ParityError) Error() string {
	msg := "database " + e.Database + ": the restored replica differs from the stopped source"
	if e.Integrity != "" && e.Integrity != "ok" {
		msg += "; integrity: " + e.Integrity
	}
	for _, d := range e.Diffs {
		msg += "; " + d.String()
	}
	return msg
}
