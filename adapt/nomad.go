package adapt

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/migrate"
	"github.com/ferry-migrate/ferry/nomad"
)

// NomadCluster is the target cluster through the Nomad API.
type NomadCluster struct {
	Client  *nomad.Client
	Service *ferry.Service
	JobHCL  string // the rendered jobspec
	Timeout time.Duration
	// ConfigJob says how the config-writer job runs (docker by default).
	ConfigJob nomad.ConfigJob
	// Terraform, when set, applies the job through terraform instead of
	// the API (apply = "terraform").
	Terraform *nomad.TerraformApply
	Log       *slog.Logger
}

var _ migrate.Cluster = (*NomadCluster)(nil)

func (c *NomadCluster) Preflight(ctx context.Context) error {
	rep, err := c.Client.Preflight(ctx, nomad.PreflightInput{Service: *c.Service, JobHCL: c.JobHCL})
	if err != nil {
		return err
	}
	for _, w := range rep.Warnings {
		c.Log.Warn("preflight", "warning", w)
	}
	return rep.Err()
}

func (c *NomadCluster) VolumeReady(ctx context.Context) (bool, error) {
	if c.Service.Storage.Kind != ferry.StorageCSI {
		return true, nil // host volumes are part of the clients' configuration
	}
	v, err := c.Client.VolumeStatus(ctx, c.Service.Storage.VolumeID)
	if err != nil || v == nil {
		return false, nil
	}
	return true, nil
}

func (c *NomadCluster) EnsureVolume(ctx context.Context) error {
	if c.Service.Storage.Kind != ferry.StorageCSI {
		return nil
	}
	_, err := c.Client.EnsureVolume(ctx, c.Service.Storage)
	return err
}

// WriteConfig puts the files on the volume with the writer job, which
// reports their sha256 as read back from the volume and fails on any
// mismatch; the returned sums are therefore the volume's.
func (c *NomadCluster) WriteConfig(ctx context.Context, files map[string][]byte) (map[string]string, error) {
	var list []nomad.ConfigFile
	sums := map[string]string{}
	for p, data := range files {
		rel, ok := strings.CutPrefix(p, c.Service.ConfigDir+"/")
		if !ok {
			return nil, fmt.Errorf("config file %s is not below the config dir %s, which the volume is mounted at", p, c.Service.ConfigDir)
		}
		sum := sha256.Sum256(data)
		list = append(list, nomad.ConfigFile{Path: rel, Content: data, SHA256: hex.EncodeToString(sum[:])})
		sums[p] = hex.EncodeToString(sum[:])
	}
	if err := c.Client.WriteConfigFiles(ctx, *c.Service, list, c.ConfigJob); err != nil {
		return nil, err
	}
	return sums, nil
}

func (c *NomadCluster) Deploy(ctx context.Context, progress func(string)) error {
	if c.Terraform != nil {
		if err := nomad.ApplyTerraform(ctx, *c.Terraform); err != nil {
			return err
		}
		return c.waitHealthy(ctx)
	}
	idx, _, err := c.Client.JobModifyIndex(ctx, c.Service.Name)
	if err != nil {
		return err
	}
	_, err = c.Client.Deploy(ctx, nomad.DeployInput{
		JobHCL:      c.JobHCL,
		ModifyIndex: idx,
		Timeout:     c.Timeout,
		Progress: func(p nomad.Progress) {
			progress(fmt.Sprintf("%s %s: %s %s", shortID(p.AllocID), p.Task, p.Event, p.Message))
		},
	})
	return err
}

// waitHealthy polls the job after a Terraform apply until an allocation
// of it is healthy, bounded by the deploy timeout.
func (c *NomadCluster) waitHealthy(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	for {
		st, err := c.Status(ctx)
		if err == nil && st.Healthy {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("job %s did not become healthy within %s after terraform apply", c.Service.Name, c.Timeout)
		case <-time.After(2 * time.Second):
		}
	}
}

func (c *NomadCluster) Status(ctx context.Context) (*migrate.JobStatus, error) {
	q := (&api.QueryOptions{}).WithContext(ctx)
	job, _, err := c.Client.API().Jobs().Info(c.Service.Name, q)
	if err != nil {
		if nomad.IsNotFound(err) {
			return &migrate.JobStatus{}, nil
		}
		return nil, fmt.Errorf("job status: %w", err)
	}
	st := &migrate.JobStatus{Running: job.Stop == nil || !*job.Stop}
	allocs, _, err := c.Client.API().Jobs().Allocations(c.Service.Name, false, q)
	if err != nil {
		return nil, fmt.Errorf("job allocations: %w", err)
	}
	var best *api.AllocationListStub
	for _, a := range allocs {
		if a.JobVersion != *job.Version || a.ClientStatus != api.AllocClientStatusRunning || a.DesiredStatus != api.AllocDesiredStatusRun {
			continue
		}
		if best == nil || a.CreateIndex > best.CreateIndex {
			best = a
		}
	}
	if best == nil {
		return st, nil
	}
	st.Node = best.NodeName
	st.Healthy = best.DeploymentStatus != nil && best.DeploymentStatus.Healthy != nil && *best.DeploymentStatus.Healthy
	if !st.Healthy && job.Type != nil && *job.Type == api.JobTypeService && best.DeploymentStatus == nil {
		// A drain migration creates no deployment: running counts.
		st.Healthy = true
	}
	for _, stream := range []string{"stderr", "stdout"} {
		if out, err := c.Client.Logs(ctx, best.ID, ferry.TaskRestore, stream, 64<<10); err == nil {
			st.RestoreLog += string(out)
		}
	}
	return st, nil
}

func (c *NomadCluster) Stop(ctx context.Context) error {
	return c.Client.Stop(ctx, c.Service.Name, false)
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}
