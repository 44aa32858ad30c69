// Package runbook runs a migration as an ordered list of steps, each
// checked before, applied, and journaled, so that a crash resumes at the
// first unfinished step and a failure is undone in reverse order.
package runbook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Step is one unit of a migration.
//
// Check reports whether the step's effect is already in place and proved
// (for example: the backup's manifest verifies). It must not change
// anything. Apply does the step and records what it proved in rec; it
// must be safe to call again after a crash part-way through. Undo
// reverses the step's effect where reversing is safe; nil means there is
// nothing to undo (a backup, a seeded replica and a volume are never
// deleted by ferry).
type Step struct {
	Name  string
	What  string // what the step touches and why, for plan
	Check func(ctx context.Context, rec *Record) (bool, error)
	Apply func(ctx context.Context, rec *Record) error
	Undo  func(ctx context.Context, rec *Record) error
}

// Observer hears about progress; all methods may be nil-safe no-ops.
type Observer interface {
	StepStarted(name string)
	StepFinished(name string, state string, err error)
}

// Runner runs steps against a journal.
type Runner struct {
	Journal  *Journal
	Log      *slog.Logger
	Observer Observer
	Now      func() time.Time
}

// StepError is a step that failed, after its journal record was saved.
type StepError struct {
	Step string
	Err  error
}

func (e *StepError) Error() string { return "step " + e.Step + ": " + e.Err.Error() }
func (e *StepError) Unwrap() error { return e.Err }

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Pending reports, for each step, whether it still has to run, without
// changing anything. A step the journal records as done is checked again:
// the journal is a record, not proof.
func (r *Runner) Pending(ctx context.Context, steps []Step) ([]bool, error) {
	out := make([]bool, len(steps))
	for i, s := range steps {
		rec := r.Journal.Lookup(s.Name)
		if rec == nil {
			rec = &Record{Name: s.Name, State: StatePending}
		}
		done, err := s.Check(ctx, rec)
		if err != nil {
			return nil, fmt.Errorf("check %s: %w", s.Name, err)
		}
		out[i] = !done
	}
	return out, nil
}

// Run applies every step that is not done, in order, saving the journal
// before and after each. It stops at the first failure and returns a
// *StepError; the caller decides whether to roll back.
func (r *Runner) Run(ctx context.Context, steps []Step) error {
	for _, s := range steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		rec := r.Journal.Record(s.Name)
		done, err := s.Check(ctx, rec)
		if err != nil {
			return r.fail(s, rec, fmt.Errorf("check: %w", err))
		}
		if done {
			if rec.State != StateDone {
				rec.State = StateDone
				rec.Finished = r.now()
				if err := r.Journal.Save(); err != nil {
					return err
				}
			}
			r.Log.Debug("step already done", "step", s.Name)
			continue
		}
		if rec.State == StateRunning || rec.State == StateFailed {
			r.Journal.Log(r.now(), "resuming %s after %s", s.Name, rec.State)
		}
		rec.State, rec.Started, rec.Finished, rec.Error = StateRunning, r.now(), time.Time{}, ""
		rec.Attempts++
		if err := r.Journal.Save(); err != nil {
			return err
		}
		r.started(s.Name)
		r.Log.Info("step", "step", s.Name, "what", s.What)
		if err := s.Apply(ctx, rec); err != nil {
			return r.fail(s, rec, err)
		}
		// Proof after: a step is done only when its check says so.
		done, err = s.Check(ctx, rec)
		if err == nil && !done {
			err = errors.New("applied, but its check does not hold afterwards")
		}
		if err != nil {
			return r.fail(s, rec, fmt.Errorf("proof: %w", err))
		}
		rec.State, rec.Finished = StateDone, r.now()
		if err := r.Journal.Save(); err != nil {
			return err
		}
		r.finished(s.Name, StateDone, nil)
	}
	return nil
}

func (r *Runner) fail(s Step, rec *Record, err error) error {
	rec.State, rec.Finished, rec.Error = StateFailed, r.now(), err.Error()
	saveErr := r.Journal.Save()
	r.finished(s.Name, StateFailed, err)
	return errors.Join(&StepError{Step: s.Name, Err: err}, saveErr)
}

// Undo reverses, in reverse order, every step the journal shows as
// started (done, running or failed), skipping steps without an Undo. It
// goes on past a failing undo so that as much as possible is reversed,
// and returns every error. Running it again after a crash is safe: Undo
// functions are idempotent and undone steps are skipped.
func (r *Runner) Undo(ctx context.Context, steps []Step) error {
	var errs []error
	for i := len(steps) - 1; i >= 0; i-- {
		s := steps[i]
		rec := r.Journal.Lookup(s.Name)
		if rec == nil || rec.State == StatePending || rec.State == StateUndone {
			continue
		}
		if s.Undo == nil {
			continue
		}
		r.started("undo " + s.Name)
		r.Log.Info("undo", "step", s.Name)
		if err := s.Undo(ctx, rec); err != nil {
			err = &StepError{Step: "undo " + s.Name, Err: err}
			r.Journal.Log(r.now(), "%v", err)
			errs = append(errs, err)
			r.finished("undo "+s.Name, StateFailed, err)
			if err := r.Journal.Save(); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		rec.State, rec.Finished = StateUndone, r.now()
		if err := r.Journal.Save(); err != nil {
			errs = append(errs, err)
		}
		r.finished("undo "+s.Name, StateUndone, nil)
	}
	return errors.Join(errs...)
}

func (r *Runner) started(name string) {
	if r.Observer != nil {
		r.Observer.StepStarted(name)
	}
}

func (r *Runner) finished(name, state string, err error) {
	if r.Observer != nil {
		r.Observer.StepFinished(name, state, err)
	}
}
