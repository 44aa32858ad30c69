package main

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/migrate"
	"github.com/ferry-migrate/ferry/nomad/nomadtest"
	"github.com/ferry-migrate/ferry/runbook"
	"github.com/ferry-migrate/ferry/sqlite"
)

// TestCrashMatrix: ferry killed with SIGKILL as each step starts and at a
// random point inside it, then `ferry migrate` again, always ends verified
// with no row lost; and a rollback killed midway, then run again, leaves
// the source running on untouched data.
func TestCrashMatrix(t *testing.T) {
	w := newWorld(t, nomadtest.Healthy)
	before := w.sourceFingerprint()
	steps := []string{
		migrate.StepPreflight, migrate.StepBackup, migrate.StepStop, migrate.StepFinalBackup,
		migrate.StepSeed + ":db", migrate.StepProof + ":db", migrate.StepVolume, migrate.StepConfig,
		migrate.StepDeploy, migrate.StepVerify,
	}
	journal := filepath.Join(w.dir, ".ferry", "overseerr", "journal.json")
	for _, step := range steps {
		for _, inside := range []bool{false, true} {
			where := "as it starts"
			if inside {
				where = "inside"
			}
			// Each kill starts a migration from scratch: a new journal
			// (the last one kept aside), seeding over the last replica.
			if err := os.Rename(filepath.Dir(journal), filepath.Dir(journal)+"-"+step+where); err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			killed := w.killMigrateAt(journal, step, inside)
			t.Logf("killed during %s (%s %s)", killed, where, step)

			code, out, errOut := w.ferry("migrate", "-f", w.spec, "--force-seed")
			if code != 0 {
				t.Fatalf("migrate after a kill %s %s: exit %d\n%s%s", where, step, code, out, errOut)
			}
			j := w.journal()
			if j.Facts[migrate.FactVerifiedAt] == "" {
				t.Fatalf("after a kill %s %s: not verified", where, step)
			}
			src, err := (&migrate.Migration{Dir: filepath.Dir(journal)}).SourceFingerprint("db")
			if err != nil {
				t.Fatal(err)
			}
			if d := sqlite.DiffTables(before, src, userTables); len(d) > 0 {
				t.Fatalf("after a kill %s %s: rows lost: %v", where, step, d)
			}

			// Back to the start for the next kill: the compose service
			// runs again on its own data.
			if code, out, errOut := w.ferry("rollback", "-f", w.spec, "--force"); code != 0 {
				t.Fatalf("rollback: exit %d\n%s%s", code, out, errOut)
			}
			if !w.running() {
				t.Fatal("the compose container does not run after rollback")
			}
		}
	}

	// A rollback killed midway, then run again.
	if code, out, errOut := w.ferry("migrate", "-f", w.spec, "--force-seed"); code != 0 {
		t.Fatalf("migrate: exit %d\n%s%s", code, out, errOut)
	}
	cmd := w.ferryProcess("rollback", "-f", w.spec, "--force")
	time.Sleep(time.Duration(rand.IntN(150)) * time.Millisecond)
	cmd.Process.Kill()
	cmd.Wait()
	if code, out, errOut := w.ferry("rollback", "-f", w.spec, "--force"); code != 0 {
		t.Fatalf("rollback after a killed rollback: exit %d\n%s%s", code, out, errOut)
	}
	if !w.running() {
		t.Fatal("the compose container does not run after the rollback")
	}
	if d := sqlite.Diff(before, w.sourceFingerprint()); len(d) > 0 {
		t.Fatalf("the source's data changed: %v", d)
	}
}

var userTables = []string{"user", "user_settings", "media", "media_request", "season_request", "issue", "issue_comment"}

// ferryProcess starts ferry as its own process (the test binary, which
// testscript put on PATH as "ferry").
func (w *world) ferryProcess(args ...string) *exec.Cmd {
	w.t.Helper()
	cmd := exec.Command("ferry", args...)
	cmd.Env = append(os.Environ(), w.env...)
	if err := cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	return cmd
}

// killMigrateAt runs ferry migrate and SIGKILLs it once the journal shows
// step running (at once, or after a random part of a second when inside),
// or whatever step it reached if it finished first. It returns the step
// the journal showed running at the kill.
func (w *world) killMigrateAt(journal, step string, inside bool) string {
	w.t.Helper()
	cmd := w.ferryProcess("migrate", "-f", w.spec, "--force-seed")
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return "nothing: migrate finished first"
		default:
		}
		if running := runningStep(journal); running == step {
			if inside {
				time.Sleep(time.Duration(rand.IntN(400)) * time.Millisecond)
			}
			cmd.Process.Kill()
			<-exited
			return runningStep(journal)
		}
		time.Sleep(time.Millisecond)
	}
	cmd.Process.Kill()
	<-exited
	w.t.Fatalf("step %s never started", step)
	return ""
}

// runningStep is the step the journal on disk shows running, if any.
func runningStep(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	var j runbook.Journal
	if json.Unmarshal(b, &j) != nil {
		return ""
	}
	for _, r := range j.Steps {
		if r.State == runbook.StateRunning {
			return r.Name
		}
	}
	return ""
}
