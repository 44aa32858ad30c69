package docker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/pkg/stdcopy"
)

// HelperLabel marks the containers ferry creates; they are the only
// containers this package ever removes. Its value is the ID of the service
// container the helper works for.
const HelperLabel = "io.ferry-migrate.helper-for"

// WarmOptions is the replicator a Warm helper runs. The package knows
// nothing about litestream: the caller picks the image and command.
type WarmOptions struct {
	Image string
	Cmd   []string
	// Env is passed to the container and nowhere else: it may hold the
	// object store's credentials, so it is never logged, and any of its
	// values found in the helper's output is redacted before that output
	// reaches an error.
	Env []string
	// Network is the helper's network mode ("host", "bridge", a network
	// name); empty means the engine's default.
	Network string
	// StopTimeout bounds the replicator's final sync after SIGTERM before
	// the engine kills it; zero means 60s.
	StopTimeout time.Duration
}

// Warm is a running replication helper: a container with the service
// container's volumes attached (VolumesFrom), replicating its database
// while the app still serves. The caller stops the app, then calls Finish
// for the final sync; Remove (safe to defer) cleans up on any path.
type Warm struct {
	h       *Host
	id      string
	name    string
	service *Container
	opts    WarmOptions
	removed bool
}

// HelperExitError is returned by Finish when the replicator did not exit
// 0: its final sync cannot be trusted. Output is the end of its output,
// with Env values redacted.
type HelperExitError struct {
	Container string
	ExitCode  int
	Output    string
}

func (e *HelperExitError) Error() string {
	return fmt.Sprintf("helper %s exited %d: %s", e.Container, e.ExitCode, e.Output)
}

// StartWarm creates and starts the helper next to c. On error nothing is
// left behind.
func (h *Host) StartWarm(ctx context.Context, c *Container, o WarmOptions) (*Warm, error) {
	if o.StopTimeout == 0 {
		o.StopTimeout = 60 * time.Second
	}
	name := fmt.Sprintf("ferry-warm-%s-%d", shortID(c.ID), time.Now().UnixNano())
	stop := int(o.StopTimeout / time.Second)
	cfg := &container.Config{
		Image:       o.Image,
		Cmd:         o.Cmd,
		Env:         o.Env,
		Labels:      map[string]string{HelperLabel: c.ID},
		StopSignal:  "SIGTERM",
		StopTimeout: &stop,
	}
	hc := &container.HostConfig{
		VolumesFrom: []string{c.ID},
		NetworkMode: container.NetworkMode(o.Network),
	}
	// Log image and command only: Env may hold secrets.
	h.log.Info("starting warm replication helper", "container", name, "for", c.Name, "image", o.Image, "cmd", o.Cmd)
	created, err := h.api.ContainerCreate(ctx, cfg, hc, nil, nil, name)
	if err != nil {
		return nil, fmt.Errorf("docker: warm %s: create helper: %w", c.Name, err)
	}
	w := &Warm{h: h, id: created.ID, name: name, service: c, opts: o}
	if err := h.api.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		return nil, errors.Join(fmt.Errorf("docker: warm %s: start helper: %w", c.Name, err), w.Remove(context.WithoutCancel(ctx)))
	}
	return w, nil
}

// ID is the helper container's ID.
func (w *Warm) ID() string { return w.id }

// Name is the helper container's name.
func (w *Warm) Name() string { return w.name }

// Running reports an error if the helper has exited, with its output.
func (w *Warm) Running(ctx context.Context) error {
	in, err := w.h.api.ContainerInspect(ctx, w.id)
	if err != nil {
		return fmt.Errorf("docker: warm %s: %w", w.name, err)
	}
	if in.State.Running {
		return nil
	}
	return fmt.Errorf("docker: warm %s: %w", w.name, &HelperExitError{Container: w.name, ExitCode: in.State.ExitCode, Output: w.output(ctx)})
}

// Finish is the final sync. Call it after the service container stopped:
// it refuses while the service runs, because writes after the final sync
// would be lost. It sends the helper SIGTERM, which makes a replicator
// such as litestream sync once more and exit; it waits for the exit and
// requires exit code 0. The helper is removed whatever the outcome.
func (w *Warm) Finish(ctx context.Context) (err error) {
	defer func() { err = errors.Join(err, w.Remove(context.WithoutCancel(ctx))) }()
	st, err := w.h.State(ctx, w.service.ID)
	if err != nil {
		return err
	}
	if st.Running {
		return fmt.Errorf("docker: warm %s: service container %s is still running; stop it before the final sync", w.name, w.service.Name)
	}
	w.h.log.Info("final sync: stopping helper", "container", w.name)
	secs := int(w.opts.StopTimeout / time.Second)
	if err := w.h.api.ContainerStop(ctx, w.id, container.StopOptions{Timeout: &secs}); err != nil {
		return fmt.Errorf("docker: warm %s: stop helper: %w", w.name, err)
	}
	in, err := w.h.api.ContainerInspect(ctx, w.id)
	if err != nil {
		return fmt.Errorf("docker: warm %s: %w", w.name, err)
	}
	if in.State.Running || in.State.ExitCode != 0 {
		return fmt.Errorf("docker: warm %s: final sync: %w", w.name, &HelperExitError{Container: w.name, ExitCode: in.State.ExitCode, Output: w.output(ctx)})
	}
	w.h.log.Info("final sync done", "container", w.name)
	return nil
}

// Remove force-removes the helper container (and its anonymous volumes:
// it has none of its own; the service's volumes are untouched). It is
// idempotent and safe to defer.
func (w *Warm) Remove(ctx context.Context) error {
	if w.removed {
		return nil
	}
	if err := w.h.removeHelper(ctx, w.id); err != nil {
		return fmt.Errorf("docker: warm %s: remove helper: %w", w.name, err)
	}
	w.removed = true
	return nil
}

// removeHelper removes a container only if it carries HelperLabel.
func (h *Host) removeHelper(ctx context.Context, id string) error {
	in, err := h.api.ContainerInspect(ctx, id)
	if err != nil {
		return err
	}
	if _, ok := in.Config.Labels[HelperLabel]; !ok {
		return fmt.Errorf("refusing to remove %s: not a ferry helper", id)
	}
	return h.api.ContainerRemove(ctx, id, container.RemoveOptions{Force: true})
}

// output is the last lines the helper printed, with Env values redacted.
func (w *Warm) output(ctx context.Context) string {
	rc, err := w.h.api.ContainerLogs(ctx, w.id, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: "20"})
	if err != nil {
		return "(no output: " + err.Error() + ")"
	}
	defer rc.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, io.LimitReader(rc, 64<<10)); err != nil {
		return "(no output: " + err.Error() + ")"
	}
	return redact(strings.TrimSpace(out.String()), w.opts.Env)
}

// redact replaces every value of env (KEY=VALUE) found in s. Values
// shorter than 4 bytes are left alone: they cannot be told apart from
// ordinary text and are not credentials.
func redact(s string, env []string) string {
	for _, kv := range env {
		_, v, ok := strings.Cut(kv, "=")
		if ok && len(v) >= 4 {
			s = strings.ReplaceAll(s, v, "[redacted]")
		}
	}
	return s
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// Helpers returns the replication helpers of c that exist now, including
// ones a process that was killed left running: a resumed migration must
// finish them (their final sync) before anything else writes to the
// replica. o supplies what to redact from their output and their stop
// timeout.
func (h *Host) Helpers(ctx context.Context, c *Container, o WarmOptions) ([]*Warm, error) {
	if o.StopTimeout == 0 {
		o.StopTimeout = 60 * time.Second
	}
	list, err := h.api.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", HelperLabel+"="+c.ID))})
	if err != nil {
		return nil, fmt.Errorf("docker: list helpers of %s: %w", c.Name, err)
	}
	var out []*Warm
	for _, l := range list {
		name := l.ID
		if len(l.Names) > 0 {
			name = strings.TrimPrefix(l.Names[0], "/")
		}
		out = append(out, &Warm{h: h, id: l.ID, name: name, service: c, opts: o})
	}
	return out, nil
}
