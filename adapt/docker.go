package adapt

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/backup"
	"github.com/ferry-migrate/ferry/docker"
	"github.com/ferry-migrate/ferry/migrate"
)

// DockerSource is the compose service on a Docker host.
type DockerSource struct {
	Host        *docker.Host
	Service     *ferry.Service
	StopTimeout time.Duration
	// WarmImage is the image of the warm replication helper: the pinned
	// litestream image (the spec's), which must be present on the host.
	WarmImage string
	// WarmEnv holds the helper's credentials (LITESTREAM_ACCESS_KEY_ID,
	// LITESTREAM_SECRET_ACCESS_KEY); never logged.
	WarmEnv []string
	// WarmNetwork is the helper's network mode ("host" to reach the object
	// store as the host does).
	WarmNetwork string
	// WarmSettled, called after the service stopped and before the
	// helpers are stopped, returns once the replicas stopped advancing:
	// litestream's own shutdown is not relied on for the last frames.
	WarmSettled func(ctx context.Context) error

	mu    sync.Mutex
	c     *docker.Container
	warms []*docker.Warm
}

var (
	_ migrate.Source = (*DockerSource)(nil)
	_ migrate.Warm   = (*DockerSource)(nil)
)

// Container finds the service's container (once) and checks that every
// database and config path lies in one of its mounts: a path outside
// every mount is lost with the container and cannot be backed up.
func (s *DockerSource) Container(ctx context.Context) (*docker.Container, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.c != nil {
		return s.c, nil
	}
	c, err := s.Host.Find(ctx, s.Service.Source.Project, s.Service.Source.Service)
	if err != nil {
		return nil, err
	}
	if _, err := c.Map(s.Service); err != nil {
		return nil, err
	}
	s.c = c
	return c, nil
}

// BackupRequest is what a backup of svc copies: its databases (with their
// -wal and -shm) and its config files.
func BackupRequest(svc *ferry.Service) backup.Request {
	req := backup.Request{Files: svc.ConfigFiles}
	for _, db := range svc.Databases {
		req.Databases = append(req.Databases, db.Path)
	}
	return req
}

func (s *DockerSource) Backup(ctx context.Context, dir string, progress migrate.Progress) (*backup.Manifest, error) {
	c, err := s.Container(ctx)
	if err != nil {
		return nil, err
	}
	return s.Host.Backup(ctx, c, dir, BackupRequest(s.Service), progress)
}

func (s *DockerSource) Stop(ctx context.Context) error {
	c, err := s.Container(ctx)
	if err != nil {
		return err
	}
	timeout := s.StopTimeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	return s.Host.Stop(ctx, c.ID, timeout)
}

func (s *DockerSource) Start(ctx context.Context) error {
	c, err := s.Container(ctx)
	if err != nil {
		return err
	}
	return s.Host.Start(ctx, c.ID)
}

func (s *DockerSource) Running(ctx context.Context) (bool, error) {
	c, err := s.Container(ctx)
	if err != nil {
		return false, err
	}
	st, err := s.Host.State(ctx, c.ID)
	return st.Running, err
}

// Remove removes the service's container (ferry finish). Its volumes stay.
func (s *DockerSource) Remove(ctx context.Context) error {
	c, err := s.Container(ctx)
	if err != nil {
		return err
	}
	return s.Host.Remove(ctx, c.ID)
}

// StartWarm starts one litestream helper per database, replicating the
// live database from the service's volumes. Helpers an interrupted run
// left are adopted instead: two replicators on one replica corrupt it.
func (s *DockerSource) StartWarm(ctx context.Context) error {
	c, err := s.Container(ctx)
	if err != nil {
		return err
	}
	if s.WarmImage == "" {
		return errors.New("warm replication needs the litestream image on the compose host")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	left, err := s.Host.Helpers(ctx, c, s.warmOptions(""))
	if err != nil {
		return err
	}
	if len(left) > 0 {
		s.warms = left
		return nil
	}
	for _, db := range s.Service.Databases {
		w, err := s.Host.StartWarm(ctx, c, s.warmOptions(db.Path, ReplicaURL(s.Service.ObjectStore, db)))
		if err != nil {
			return errors.Join(err, s.removeWarms(ctx))
		}
		s.warms = append(s.warms, w)
	}
	return nil
}

func (s *DockerSource) warmOptions(args ...string) docker.WarmOptions {
	return docker.WarmOptions{
		Image:   s.WarmImage,
		Cmd:     append([]string{"replicate"}, args...),
		Env:     s.WarmEnv,
		Network: s.WarmNetwork,
	}
}

// FinishWarm runs the final sync of every replication helper of the
// service, including ones an interrupted run left (the service must be
// stopped); with none running it does nothing.
func (s *DockerSource) FinishWarm(ctx context.Context) error {
	c, err := s.Container(ctx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.warms) == 0 {
		if s.warms, err = s.Host.Helpers(ctx, c, s.warmOptions()); err != nil {
			return err
		}
	}
	if len(s.warms) > 0 && s.WarmSettled != nil {
		if err := s.WarmSettled(ctx); err != nil {
			return errors.Join(fmt.Errorf("wait for the final sync: %w", err), s.removeWarms(ctx))
		}
	}
	var errs []error
	for _, w := range s.warms {
		if err := w.Finish(ctx); err != nil {
			errs = append(errs, fmt.Errorf("final sync: %w", err))
		}
	}
	s.warms = nil
	return errors.Join(errs...)
}

func (s *DockerSource) removeWarms(ctx context.Context) error {
	var errs []error
	for _, w := range s.warms {
		errs = append(errs, w.Remove(context.WithoutCancel(ctx)))
	}
	s.warms = nil
	return errors.Join(errs...)
}

// ReplicaURL is the litestream replica URL of db in store, with the
// endpoint and addressing in its query, as `litestream replicate DB URL`
// reads it. It holds no credentials.
func ReplicaURL(store ferry.ObjectStore, db ferry.Database) string {
	q := url.Values{}
	if store.Endpoint != "" {
		q.Set("endpoint", store.Endpoint)
	}
	q.Set("region", store.Region)
	q.Set("forcePathStyle", fmt.Sprint(store.PathStyle))
	return (&url.URL{Scheme: "s3", Host: store.Bucket, Path: "/" + db.ReplicaPath, RawQuery: q.Encode()}).String()
}
