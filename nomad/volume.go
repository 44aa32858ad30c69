package nomad

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/hashicorp/nomad/api"
)

// EnsureVolume creates the service's CSI volume from the spec (the plugin
// provisions it), or returns the existing one. Idempotent; host volumes
// need nothing and return nil, nil.
func (c *Client) EnsureVolume(ctx context.Context, st ferry.Storage) (*api.CSIVolume, error) {
	if st.Kind != ferry.StorageCSI {
		return nil, nil
	}
	if v, err := c.VolumeStatus(ctx, st.VolumeID); err == nil {
		return v, nil
	} else if !errors.Is(err, ErrVolumeNotFound) {
		return nil, err
	}
	vol := &api.CSIVolume{
		ID: st.VolumeID, Name: st.VolumeID, PluginID: st.PluginID,
		RequestedCapacityMin: st.CapacityMin, RequestedCapacityMax: st.CapacityMax,
		RequestedCapabilities: []*api.CSIVolumeCapability{{
			AccessMode:     api.CSIVolumeAccessMode(st.AccessMode),
			AttachmentMode: api.CSIVolumeAttachmentMode(st.AttachmentMode),
		}},
	}
	vols, _, err := c.api.CSIVolumes().Create(vol, c.w(ctx))
	if err != nil {
		return nil, wrap("create volume "+st.VolumeID, err)
	}
	c.log.InfoContext(ctx, "csi volume created", "volume", st.VolumeID, "plugin", st.PluginID)
	if len(vols) == 1 {
		return vols[0], nil
	}
	return c.VolumeStatus(ctx, st.VolumeID)
}

// RegisterVolume registers an existing volume (known to the storage
// system by externalID) under the spec's ID.
func (c *Client) RegisterVolume(ctx context.Context, st ferry.Storage, externalID string) error {
	vol := &api.CSIVolume{
		ID: st.VolumeID, Name: st.VolumeID, PluginID: st.PluginID, ExternalID: externalID,
		RequestedCapabilities: []*api.CSIVolumeCapability{{
			AccessMode:     api.CSIVolumeAccessMode(st.AccessMode),
			AttachmentMode: api.CSIVolumeAttachmentMode(st.AttachmentMode),
		}},
	}
	if _, err := c.api.CSIVolumes().Register(vol, c.w(ctx)); err != nil {
		return wrap("register volume "+st.VolumeID, err)
	}
	return nil
}

// ErrVolumeNotFound is returned by VolumeStatus for an unknown volume.
var ErrVolumeNotFound = errors.New("volume not found")

// VolumeStatus reads a CSI volume (schedulable, plugin health, claims).
func (c *Client) VolumeStatus(ctx context.Context, id string) (*api.CSIVolume, error) {
	v, _, err := c.api.CSIVolumes().Info(id, c.q(ctx))
	if IsNotFound(err) {
		return nil, fmt.Errorf("volume %s: %w", id, ErrVolumeNotFound)
	}
	if err != nil {
		return nil, wrap("volume "+id, err)
	}
	return v, nil
}

// ConfigFile is one file to put on the volume: Path relative to the
// volume root, its content, and the sha256 (hex) it must have there.
type ConfigFile struct {
	Path    string
	Content []byte
	SHA256  string
}

// ConfigJob says how the one-shot writer job runs.
type ConfigJob struct {
	// Driver is "docker" (default; Image runs sh and sha256sum) or
	// "raw_exec" (tests against `nomad agent -dev`).
	Driver string
	Image  string // default busybox:1.36.1
	// Timeout bounds the job's run (default 5m).
	Timeout time.Duration
}

// ChecksumError is a file whose sha256 on the volume differs from the
// expected one (or was not reported).
type ChecksumError struct {
	Path          string
	Expected, Got string
}

func (e *ChecksumError) Error() string {
	if e.Got == "" {
		return fmt.Sprintf("%s: no checksum reported by the writer job", e.Path)
	}
	return fmt.Sprintf("%s: sha256 on volume %s, expected %s", e.Path, e.Got, e.Expected)
}

// ConfigJobName is the writer job's name for a service.
func ConfigJobName(svc string) string { return svc + "-ferry-config" }

// WriteConfigFiles puts files onto the service's volume with a one-shot
// batch job: the contents travel only in a Nomad Variable at
// nomad/jobs/<job> (readable by that job through workload identity); the
// job spec names the variable, never the content. The job prints each
// file's sha256, which is compared with ConfigFile.SHA256. The variable
// and the job are removed afterwards, also on failure.
func (c *Client) WriteConfigFiles(ctx context.Context, svc ferry.Service, files []ConfigFile, opts ConfigJob) (err error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Minute
	}
	if opts.Driver == "" {
		opts.Driver = "docker"
	}
	if opts.Image == "" {
		opts.Image = "busybox:1.36.1"
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	jobName := ConfigJobName(svc.Name)
	varPath := "nomad/jobs/" + jobName
	ns := svc.Target.Namespace

	items := api.VariableItems{}
	for i, f := range files {
		items[itemKey(i)] = string(f.Content)
	}
	v := &api.Variable{Namespace: ns, Path: varPath, Items: items}
	if _, _, err := c.api.Variables().Update(v, c.w(ctx)); err != nil {
		return wrap("config files: write variable "+varPath, err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if _, derr := c.api.Variables().Delete(varPath, c.w(cctx)); derr != nil {
			err = errors.Join(err, wrap("config files: delete variable "+varPath, derr))
		}
		if _, _, derr := c.api.Jobs().Deregister(jobName, true, c.w(cctx)); derr != nil {
			err = errors.Join(err, wrap("config files: purge job "+jobName, derr))
		}
	}()

	job := configJob(svc, jobName, varPath, files, opts)
	resp, _, err := c.api.Jobs().Register(job, c.w(ctx))
	if err != nil {
		return wrap("config files: register "+jobName, err)
	}
	c.log.InfoContext(ctx, "config writer job registered", "job", jobName, "files", len(files), "eval", resp.EvalID)

	alloc, err := c.waitBatch(ctx, jobName, resp.JobModifyIndex)
	if err != nil {
		return err
	}
	out, err := c.logs(ctx, alloc, "write", "stdout", 0)
	if err != nil {
		return err
	}
	if alloc.ClientStatus != "complete" {
		tail, _ := c.logs(ctx, alloc, "write", "stderr", 4096)
		return fmt.Errorf("config files: writer job %s: alloc %s; stderr: %s", alloc.ClientStatus, shortID(alloc.ID), strings.Join(tailLines(string(tail), 5), " / "))
	}
	got := parseSums(string(out))
	var errs []error
	for _, f := range files {
		want := f.SHA256
		if want == "" {
			sum := sha256.Sum256(f.Content)
			want = hex.EncodeToString(sum[:])
		}
		if g := got[path.Join("/ferry-volume", f.Path)]; g != want {
			errs = append(errs, &ChecksumError{Path: f.Path, Expected: want, Got: g})
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("config files: %w", errors.Join(errs...))
	}
	c.log.InfoContext(ctx, "config files written and verified", "job", jobName, "files", len(files))
	return nil
}

func itemKey(i int) string { return fmt.Sprintf("file%d", i) }

// configJob is the writer: templates render each variable item into the
// task's secrets dir (never the spec), a script copies them onto the
// volume and prints `sha256sum` of each.
func configJob(svc ferry.Service, jobName, varPath string, files []ConfigFile, opts ConfigJob) *api.Job {
	job := api.NewBatchJob(jobName, jobName, svc.Target.Region, 50)
	if svc.Target.Namespace != "" {
		job.Namespace = &svc.Target.Namespace
	}
	job.Datacenters = svc.Target.Datacenters
	mount := "/ferry-volume"
	var script strings.Builder
	script.WriteString("set -eu\n")
	task := api.NewTask("write", opts.Driver)
	for i, f := range files {
		src := fmt.Sprintf("secrets/%s", itemKey(i))
		dst := path.Join(mount, f.Path)
		task.Templates = append(task.Templates, &api.Template{
			EmbeddedTmpl: ptr(fmt.Sprintf(`{{ with nomadVar %q }}{{ index . %q }}{{ end }}`, varPath, itemKey(i))),
			DestPath:     ptr(src),
			Perms:        ptr("0600"),
			ChangeMode:   ptr("noop"),
		})
		fmt.Fprintf(&script, "mkdir -p %q\ncp \"${NOMAD_SECRETS_DIR}/%s\" %q\nsha256sum %q\n", path.Dir(dst), itemKey(i), dst, dst)
	}
	switch opts.Driver {
	case "raw_exec":
		task.Config = map[string]any{"command": "/bin/sh", "args": []string{"-c", script.String()}}
	default:
		task.Config = map[string]any{"image": opts.Image, "command": "/bin/sh", "args": []string{"-c", script.String()}}
	}
	task.RestartPolicy = &api.RestartPolicy{Attempts: ptr(0), Mode: ptr("fail")}
	tg := api.NewTaskGroup("write", 1)
	tg.RestartPolicy = &api.RestartPolicy{Attempts: ptr(0), Mode: ptr("fail")}
	tg.ReschedulePolicy = &api.ReschedulePolicy{Attempts: ptr(0), Unlimited: ptr(false)}
	vol := &api.VolumeRequest{Name: "config", Source: svc.Storage.VolumeID, ReadOnly: false}
	if svc.Storage.Kind == ferry.StorageCSI {
		vol.Type = "csi"
		vol.AccessMode, vol.AttachmentMode = svc.Storage.AccessMode, svc.Storage.AttachmentMode
	} else {
		vol.Type = "host"
	}
	tg.Volumes = map[string]*api.VolumeRequest{"config": vol}
	task.VolumeMounts = []*api.VolumeMount{{Volume: ptr("config"), Destination: ptr(mount)}}
	tg.AddTask(task)
	job.AddTaskGroup(tg)
	return job
}

func ptr[T any](v T) *T { return &v }

// parseSums reads `sha256sum` output: "<hex>  <path>" per line.
func parseSums(out string) map[string]string {
	sums := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && len(f[0]) == 64 {
			sums[f[1]] = f[0]
		}
	}
	return sums
}

// waitBatch waits (blocking queries) until the job's allocation created
// after index is terminal and returns it. Allocations of an earlier,
// purged job of the same name stay listed until garbage collection, so
// they are skipped.
func (c *Client) waitBatch(ctx context.Context, job string, index uint64) (*api.Allocation, error) {
	after := index
	index = 0
	for {
		q := c.q(ctx)
		q.WaitIndex, q.WaitTime = index, blockWait
		all, meta, err := c.api.Jobs().Allocations(job, false, q)
		if err != nil {
			return nil, wrap("config files: watch "+job, err)
		}
		index = meta.LastIndex
		var stubs []*api.AllocationListStub
		for _, a := range all {
			if a.CreateIndex > after {
				stubs = append(stubs, a)
			}
		}
		sort.Slice(stubs, func(i, j int) bool { return stubs[i].CreateIndex > stubs[j].CreateIndex })
		if len(stubs) > 0 {
			switch stubs[0].ClientStatus {
			case "complete", "failed", "lost":
				a, _, err := c.api.Allocations().Info(stubs[0].ID, c.q(ctx))
				if err != nil {
					return nil, wrap("config files: read alloc", err)
				}
				return a, nil
			}
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("config files: wait for %s: %w", job, ctx.Err())
		}
	}
}
