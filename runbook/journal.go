package runbook

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ferry-migrate/ferry/internal/atomicfile"
)

// Step states in the journal.
const (
	StatePending = "pending"
	StateRunning = "running" // started; a crash leaves it here
	StateDone    = "done"
	StateFailed  = "failed"
	StateUndone  = "undone"
)

// journalVersion is bumped when the file's meaning changes.
const journalVersion = 1

// Journal is the durable record of one migration. It holds outcomes,
// timings, checksums and positions, never secrets: Facts are written by
// steps, which must only record non-secret values.
type Journal struct {
	Version int                 `json:"version"`
	Service string              `json:"service"`
	Steps   []*Record           `json:"steps"`
	Events  []Event             `json:"events,omitempty"`
	Facts   map[string]string   `json:"facts,omitempty"` // migration-wide facts (downtime, verified_at)
	Drills  []map[string]string `json:"drills,omitempty"`

	path string
}

// Record is one step's outcome.
type Record struct {
	Name     string            `json:"name"`
	State    string            `json:"state"`
	Started  time.Time         `json:"started,omitzero"`
	Finished time.Time         `json:"finished,omitzero"`
	Attempts int               `json:"attempts,omitempty"`
	Error    string            `json:"error,omitempty"`
	Facts    map[string]string `json:"facts,omitempty"`
}

// Set records a fact about the step (a checksum, a position, a count).
func (r *Record) Set(key, value string) {
	if r.Facts == nil {
		r.Facts = map[string]string{}
	}
	r.Facts[key] = value
}

// Event is a line of the migration's history: a rollback, a resume.
type Event struct {
	Time time.Time `json:"time"`
	What string    `json:"what"`
}

// OpenJournal reads the journal at path, or starts an empty one for
// service when none exists. A journal of another service is refused.
func OpenJournal(path, service string) (*Journal, error) {
	j := &Journal{Version: journalVersion, Service: service, path: path}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return j, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	if err := json.Unmarshal(b, j); err != nil {
		return nil, fmt.Errorf("open journal %s: %w", path, err)
	}
	if j.Version != journalVersion {
		return nil, fmt.Errorf("open journal %s: version %d, this ferry reads %d", path, j.Version, journalVersion)
	}
	if j.Service != service {
		return nil, fmt.Errorf("open journal %s: it belongs to service %q, not %q", path, j.Service, service)
	}
	j.path = path
	return j, nil
}

// Path is where the journal is saved.
func (j *Journal) Path() string { return j.path }

// Record returns the record of the named step, adding a pending one.
func (j *Journal) Record(name string) *Record {
	for _, r := range j.Steps {
		if r.Name == name {
			return r
		}
	}
	r := &Record{Name: name, State: StatePending}
	j.Steps = append(j.Steps, r)
	return r
}

// Lookup returns the named step's record, or nil.
func (j *Journal) Lookup(name string) *Record {
	for _, r := range j.Steps {
		if r.Name == name {
			return r
		}
	}
	return nil
}

// SetFact records a migration-wide fact.
func (j *Journal) SetFact(key, value string) {
	if j.Facts == nil {
		j.Facts = map[string]string{}
	}
	j.Facts[key] = value
}

// Log appends an event.
func (j *Journal) Log(now time.Time, format string, args ...any) {
	j.Events = append(j.Events, Event{Time: now, What: fmt.Sprintf(format, args...)})
}

// Save writes the journal atomically: a crash leaves either the old or
// the new file, never a torn one.
func (j *Journal) Save() error {
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return fmt.Errorf("save journal: %w", err)
	}
	if err := WriteFileAtomic(j.path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("save journal: %w", err)
	}
	return nil
}

// WriteFileAtomic creates path's directory and writes data to path
// atomically (see atomicfile.WriteFile).
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, data, perm)
}
