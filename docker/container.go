package docker

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/mount"

	"github.com/ferry-migrate/ferry"
)

// The labels docker compose (v1 and v2) sets on the containers it creates.
const (
	LabelProject = "com.docker.compose.project"
	LabelService = "com.docker.compose.service"
	LabelOneOff  = "com.docker.compose.oneoff"
)

// Container is the container of a compose service.
type Container struct {
	ID      string
	Name    string // without the leading slash
	Image   string
	Project string
	Service string
	Mounts  []Mount
}

// Mount is one volume or bind mount of a container.
type Mount struct {
	Type        string // "volume" or "bind" (or what the engine reports)
	Name        string // volume name; empty for a bind
	Source      string // path on the engine's host
	Destination string // path inside the container
	ReadOnly    bool
}

func (m Mount) String() string {
	src := m.Source
	if m.Type == string(mount.TypeVolume) {
		src = "volume " + m.Name
	}
	return m.Destination + " <- " + src
}

// ComposeService is one compose service container found on a host.
type ComposeService struct {
	Project, Service, Container, State string
}

// NotFoundError is returned by Find when no container carries the
// service's compose labels. Present lists every compose service container
// on the host, so the caller can show what is there.
type NotFoundError struct {
	Host             string
	Project, Service string
	Present          []ComposeService
}

func (e *NotFoundError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "no container of compose service %q in project %q on %s", e.Service, e.Project, e.Host)
	if len(e.Present) == 0 {
		b.WriteString("; the host runs no compose services")
		return b.String()
	}
	b.WriteString("; compose services present:")
	for _, s := range e.Present {
		fmt.Fprintf(&b, " %s/%s (%s, %s);", s.Project, s.Service, s.Container, s.State)
	}
	return strings.TrimSuffix(b.String(), ";")
}

// Find returns the one container of a compose service, running or not.
// One-off containers (docker compose run) are ignored. A project of ""
// matches any project. It returns a *NotFoundError when there is none,
// and an error when the service is scaled to more than one container.
func (h *Host) Find(ctx context.Context, project, service string) (*Container, error) {
	f := filters.NewArgs(filters.Arg("label", LabelService+"="+service))
	if project != "" {
		f.Add("label", LabelProject+"="+project)
	}
	list, err := h.api.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("docker: find %s/%s: %w", project, service, err)
	}
	list = slices.DeleteFunc(list, func(c container.Summary) bool { return strings.EqualFold(c.Labels[LabelOneOff], "true") })
	switch len(list) {
	case 0:
		present, err := h.composeServices(ctx)
		if err != nil {
			return nil, fmt.Errorf("docker: find %s/%s: %w", project, service, err)
		}
		return nil, &NotFoundError{Host: h.addr, Project: project, Service: service, Present: present}
	case 1:
	default:
		names := make([]string, len(list))
		for i, c := range list {
			names[i] = containerName(c.Names)
		}
		return nil, fmt.Errorf("docker: find %s/%s: %d containers (%s); ferry migrates a service with one", project, service, len(list), strings.Join(names, ", "))
	}
	return h.inspect(ctx, list[0].ID)
}

func (h *Host) inspect(ctx context.Context, id string) (*Container, error) {
	in, err := h.api.ContainerInspect(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("docker: inspect %s: %w", id, err)
	}
	c := &Container{
		ID:      in.ID,
		Name:    strings.TrimPrefix(in.Name, "/"),
		Image:   in.Config.Image,
		Project: in.Config.Labels[LabelProject],
		Service: in.Config.Labels[LabelService],
	}
	for _, m := range in.Mounts {
		c.Mounts = append(c.Mounts, Mount{
			Type: string(m.Type), Name: m.Name, Source: m.Source,
			Destination: m.Destination, ReadOnly: !m.RW,
		})
	}
	return c, nil
}

func (h *Host) composeServices(ctx context.Context) ([]ComposeService, error) {
	list, err := h.api.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", LabelProject))})
	if err != nil {
		return nil, err
	}
	var out []ComposeService
	for _, c := range list {
		if strings.EqualFold(c.Labels[LabelOneOff], "true") {
			continue
		}
		out = append(out, ComposeService{
			Project: c.Labels[LabelProject], Service: c.Labels[LabelService],
			Container: containerName(c.Names), State: string(c.State),
		})
	}
	slices.SortFunc(out, func(a, b ComposeService) int {
		return strings.Compare(a.Project+"/"+a.Service+"/"+a.Container, b.Project+"/"+b.Service+"/"+b.Container)
	})
	return out, nil
}

func containerName(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return strings.TrimPrefix(names[0], "/")
}

// NotInMountError is returned for a path whose data lives in the
// container's writable layer rather than in a volume or bind mount.
type NotInMountError struct {
	Path      string
	Container string
	Mounts    []Mount
}

func (e *NotInMountError) Error() string {
	if len(e.Mounts) == 0 {
		return fmt.Sprintf("%s is not in a mount of container %s: it has no mounts", e.Path, e.Container)
	}
	ms := make([]string, len(e.Mounts))
	for i, m := range e.Mounts {
		ms[i] = m.String()
	}
	return fmt.Sprintf("%s is not in a mount of container %s (mounts: %s)", e.Path, e.Container, strings.Join(ms, ", "))
}

// Located is a container path and the mount that holds it.
type Located struct {
	Path  string // inside the container
	Mount Mount
	Rel   string // Path relative to Mount.Destination; "." for the mount itself
}

// Locate returns the innermost mount holding p (an absolute path inside
// the container), or a *NotInMountError.
func (c *Container) Locate(p string) (Located, error) {
	p = path.Clean(p)
	best := -1
	for i, m := range c.Mounts {
		d := path.Clean(m.Destination)
		if p != d && !strings.HasPrefix(p, strings.TrimSuffix(d, "/")+"/") {
			continue
		}
		if best < 0 || len(d) > len(path.Clean(c.Mounts[best].Destination)) {
			best = i
		}
	}
	if best < 0 {
		return Located{}, &NotInMountError{Path: p, Container: c.Name, Mounts: c.Mounts}
	}
	m := c.Mounts[best]
	rel := strings.TrimPrefix(strings.TrimPrefix(p, path.Clean(m.Destination)), "/")
	if rel == "" {
		rel = "."
	}
	return Located{Path: p, Mount: m, Rel: rel}, nil
}

// Map locates every database and config file of s, reporting every path
// outside a mount at once (joined *NotInMountError).
func (c *Container) Map(s *ferry.Service) ([]Located, error) {
	var paths []string
	for _, d := range s.Databases {
		paths = append(paths, d.Path)
	}
	paths = append(paths, s.ConfigFiles...)
	var out []Located
	var errs []error
	for _, p := range paths {
		l, err := c.Locate(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, l)
	}
	if len(errs) > 0 {
		return nil, joinErrors(errs)
	}
	return out, nil
}

// State is what the engine reports about a container.
type State struct {
	Status     string // created, running, paused, restarting, removing, exited, dead
	Running    bool
	ExitCode   int
	StartedAt  time.Time
	FinishedAt time.Time
}

// State reports the container's state.
func (h *Host) State(ctx context.Context, id string) (State, error) {
	in, err := h.api.ContainerInspect(ctx, id)
	if err != nil {
		return State{}, fmt.Errorf("docker: state of %s: %w", id, err)
	}
	s := State{Status: in.State.Status, Running: in.State.Running, ExitCode: in.State.ExitCode}
	s.StartedAt, _ = time.Parse(time.RFC3339Nano, in.State.StartedAt)
	s.FinishedAt, _ = time.Parse(time.RFC3339Nano, in.State.FinishedAt)
	return s, nil
}

// Stop sends the container's stop signal and waits up to timeout before
// the engine kills it. It returns once the container has stopped;
// stopping a stopped container is not an error.
func (h *Host) Stop(ctx context.Context, id string, timeout time.Duration) error {
	secs := int((timeout + time.Second - 1) / time.Second)
	h.log.Info("stopping container", "container", id, "timeout", timeout)
	if err := h.api.ContainerStop(ctx, id, container.StopOptions{Timeout: &secs}); err != nil {
		return fmt.Errorf("docker: stop %s: %w", id, err)
	}
	return nil
}

// Start starts the container; starting a running container is not an
// error. It returns once the engine reports it started, not once the app
// inside is ready.
func (h *Host) Start(ctx context.Context, id string) error {
	h.log.Info("starting container", "container", id)
	if err := h.api.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		return fmt.Errorf("docker: start %s: %w", id, err)
	}
	return nil
}

// Remove removes a stopped container, keeping its volumes (named and
// anonymous): the data outlives the container. A running container is
// refused rather than killed.
func (h *Host) Remove(ctx context.Context, id string) error {
	st, err := h.State(ctx, id)
	if err != nil {
		return err
	}
	if st.Running {
		return fmt.Errorf("docker: remove %s: the container is running; stop it first", id)
	}
	h.log.Info("removing container (volumes kept)", "container", id)
	if err := h.api.ContainerRemove(ctx, id, container.RemoveOptions{RemoveVolumes: false}); err != nil {
		return fmt.Errorf("docker: remove %s: %w", id, err)
	}
	return nil
}
