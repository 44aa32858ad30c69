package runbook

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// world is a tiny system the steps act on: flags that steps set and clear.
type world struct {
	state   map[string]bool
	applied []string
	undone  []string
	failAt  string
}

func (w *world) steps() []Step {
	var steps []Step
	for _, name := range []string{"backup", "stop", "seed", "deploy"} {
		steps = append(steps, Step{
			Name:  name,
			Check: func(ctx context.Context, rec *Record) (bool, error) { return w.state[name], nil },
			Apply: func(ctx context.Context, rec *Record) error {
				w.applied = append(w.applied, name)
				if w.failAt == name {
					return errors.New("boom")
				}
				w.state[name] = true
				rec.Set("proof", name+"-ok")
				return nil
			},
			Undo: func(ctx context.Context, rec *Record) error {
				w.undone = append(w.undone, name)
				w.state[name] = false
				return nil
			},
		})
	}
	steps[0].Undo = nil // backups are never deleted
	return steps
}

func newRunner(t *testing.T, path string) *Runner {
	t.Helper()
	j, err := OpenJournal(path, "svc")
	if err != nil {
		t.Fatal(err)
	}
	return &Runner{Journal: j, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

func TestRunResumesAfterFailureAndUndoesInReverse(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "journal.json")
	w := &world{state: map[string]bool{}, failAt: "seed"}

	err := newRunner(t, path).Run(ctx, w.steps())
	var se *StepError
	if !errors.As(err, &se) || se.Step != "seed" {
		t.Fatalf("Run = %v, want a StepError for seed", err)
	}
	// The journal on disk says so, as a fresh process would read it.
	j, err := OpenJournal(path, "svc")
	if err != nil {
		t.Fatal(err)
	}
	if got := j.Lookup("seed"); got == nil || got.State != StateFailed || got.Error == "" {
		t.Fatalf("seed record = %+v, want failed with the error", got)
	}
	if got := j.Lookup("backup"); got.State != StateDone || got.Facts["proof"] != "backup-ok" {
		t.Fatalf("backup record = %+v", got)
	}

	// A second run resumes at seed; backup and stop are not applied again.
	w.failAt, w.applied = "", nil
	if err := newRunner(t, path).Run(ctx, w.steps()); err != nil {
		t.Fatal(err)
	}
	if want := []string{"seed", "deploy"}; !slices.Equal(w.applied, want) {
		t.Fatalf("applied %v, want %v", w.applied, want)
	}

	// Undo goes in reverse and skips the backup, which has no Undo.
	if err := newRunner(t, path).Undo(ctx, w.steps()); err != nil {
		t.Fatal(err)
	}
	if want := []string{"deploy", "seed", "stop"}; !slices.Equal(w.undone, want) {
		t.Fatalf("undone %v, want %v", w.undone, want)
	}
	// Undoing again does nothing: undone steps are skipped.
	w.undone = nil
	if err := newRunner(t, path).Undo(ctx, w.steps()); err != nil || len(w.undone) != 0 {
		t.Fatalf("second undo: %v, undid %v", err, w.undone)
	}
}

func TestRunRequiresProofAfterApply(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.json")
	liar := Step{
		Name:  "seed",
		Check: func(context.Context, *Record) (bool, error) { return false, nil },
		Apply: func(context.Context, *Record) error { return nil },
	}
	err := newRunner(t, path).Run(context.Background(), []Step{liar})
	if err == nil {
		t.Fatal("a step whose check fails after apply was reported done")
	}
}

func TestJournalRefusesOtherService(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.json")
	r := newRunner(t, path)
	if err := r.Journal.Save(); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenJournal(path, "other"); err == nil {
		t.Fatal("opened another service's journal")
	}
}

func TestWriteFileAtomicLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := WriteFileAtomic(p, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(p, []byte("two"), 0o600); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("dir holds %d entries, want 1", len(entries))
	}
	b, _ := os.ReadFile(p)
	fi, _ := os.Stat(p)
	if string(b) != "two" || fi.Mode().Perm() != 0o600 {
		t.Fatalf("content %q mode %v", b, fi.Mode())
	}
}
