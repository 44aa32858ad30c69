package rehearse

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/adapt"
	"github.com/ferry-migrate/ferry/backup"
	"github.com/ferry-migrate/ferry/migrate"
)

// dirSource plays the compose host: a directory holding a copy of the
// service's config directory, as the container saw it at ConfigDir. The
// "container" is stopped and started by a flag: no app runs on this side.
type dirSource struct {
	svc      *ferry.Service
	dir      string // the config directory's copy
	replicas map[string]migrate.Replica

	mu      sync.Mutex
	running bool
	warm    map[string]*warmRun
}

var (
	_ migrate.Source = (*dirSource)(nil)
	_ migrate.Warm   = (*dirSource)(nil)
)

// newDirSource copies the rehearsal's data into dir, so the rehearsal
// never touches the data it was given.
func newDirSource(ctx context.Context, svc *ferry.Service, dir string, opt Options) (*dirSource, error) {
	from := opt.DataFS
	root := opt.DataRoot
	if opt.Data != "" {
		from, root = os.DirFS(opt.Data), "."
	}
	if from == nil {
		return nil, fmt.Errorf("no data to rehearse with")
	}
	sub, err := fs.Sub(from, root)
	if err != nil {
		return nil, err
	}
	if err := os.CopyFS(dir, sub); err != nil {
		return nil, fmt.Errorf("copy the data: %w", err)
	}
	for _, db := range svc.Databases {
		local, err := localPath(svc, dir, db.Path)
		if err != nil {
			return nil, err
		}
		if _, err := os.Stat(local); err != nil {
			return nil, fmt.Errorf("database %s: %w (the data directory must hold the config directory %s as on the compose host)", db.Name, err, svc.ConfigDir)
		}
	}
	return &dirSource{svc: svc, dir: dir, running: true}, nil
}

// localPath maps a container path below the config dir into dir.
func localPath(svc *ferry.Service, dir, p string) (string, error) {
	rel, ok := strings.CutPrefix(p, svc.ConfigDir+"/")
	if !ok {
		return "", fmt.Errorf("%s is not below the config dir %s", p, svc.ConfigDir)
	}
	return filepath.Join(dir, filepath.FromSlash(rel)), nil
}

func (s *dirSource) Backup(ctx context.Context, dir string, progress migrate.Progress) (*backup.Manifest, error) {
	fetch := backup.DirFetcher(func(p string) (string, error) { return localPath(s.svc, s.dir, p) })
	return backup.Write(ctx, dir, fetch, adapt.BackupRequest(s.svc), backup.Options{Progress: progress})
}

func (s *dirSource) Stop(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running = false
	return nil
}

func (s *dirSource) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running = true
	return nil
}

func (s *dirSource) Running(ctx context.Context) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running, nil
}

// warmRun is a seed taken while the source "runs", finished by a second
// seed pass after the stop.
type warmRun struct {
	pos migrate.Position
}

// StartWarm seeds every database while the source runs. In a rehearsal
// nothing writes to the source, so the final sync after the stop has
// nothing left to ship; the downtime saved is the seed's.
func (s *dirSource) StartWarm(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.warm = map[string]*warmRun{}
	for _, db := range s.svc.Databases {
		local, err := localPath(s.svc, s.dir, db.Path)
		if err != nil {
			return err
		}
		pos, err := s.replicas[db.Name].Seed(ctx, local, nil)
		if err != nil {
			return fmt.Errorf("warm replication of %s: %w", db.Name, err)
		}
		s.warm[db.Name] = &warmRun{pos: pos}
	}
	return nil
}

// FinishWarm checks each replica still holds the warm seed: nothing
// writes to a rehearsal's source, so there is nothing left to ship.
func (s *dirSource) FinishWarm(ctx context.Context) error {
	for _, db := range s.svc.Databases {
		w := s.warm[db.Name]
		if w == nil {
			continue // no warm replication in this run
		}
		pos, err := s.replicas[db.Name].Latest(ctx)
		if err != nil {
			return err
		}
		if pos.TXID < w.pos.TXID {
			return fmt.Errorf("replica of %s is at txid %d, behind the warm seed's %d", db.Name, pos.TXID, w.pos.TXID)
		}
	}
	return nil
}
