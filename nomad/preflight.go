package nomad

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/ferry-migrate/ferry"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/hashicorp/nomad/api"
)

// PreflightInput is what preflight checks the cluster against.
type PreflightInput struct {
	Service ferry.Service
	// JobHCL is the rendered jobspec; when set, a running job of the same
	// name must have the same spec (else a different service would be
	// replaced).
	JobHCL string
	// Images to check against node architectures; empty means
	// Service.Image and Service.Litestream.Image.
	Images []string
	// Keychain resolves registry credentials; nil means anonymous.
	Keychain authn.Keychain
	// RegistryOptions are extra options for registry calls (transport).
	RegistryOptions []remote.Option
}

// Problem is one failed check. Check names the check ("region",
// "csi-plugin", "platform", ...).
type Problem struct {
	Check   string
	Message string
	Err     error // typed detail when there is one (e.g. *PlatformError)
}

// Report is the outcome of Preflight: Problems fail the migration,
// Warnings do not.
type Report struct {
	Problems []Problem
	Warnings []string
}

// Err joins the problems into one error, nil when there are none.
func (r *Report) Err() error {
	var errs []error
	for _, p := range r.Problems {
		if p.Err != nil {
			errs = append(errs, fmt.Errorf("preflight %s: %w", p.Check, p.Err))
		} else {
			errs = append(errs, fmt.Errorf("preflight %s: %s", p.Check, p.Message))
		}
	}
	return errors.Join(errs...)
}

func (r *Report) fail(check string, err error) {
	r.Problems = append(r.Problems, Problem{Check: check, Message: err.Error(), Err: err})
}

// PlatformError is an image that cannot run on a node the job may be
// placed on: the image has no variant for the node's architecture.
type PlatformError struct {
	Image     string
	Arch      string
	Nodes     []string // names of the eligible nodes with that architecture
	Available []string // os/arch variants the image has
}

func (e *PlatformError) Error() string {
	return fmt.Sprintf("image %s has no linux/%s variant, needed by node %s (image has: %s)",
		e.Image, e.Arch, strings.Join(e.Nodes, ", "), strings.Join(e.Available, ", "))
}

// PluginError is a CSI plugin that is absent or not healthy on enough
// nodes.
type PluginError struct {
	PluginID     string
	Missing      bool
	Existing     []string // plugin IDs present, when Missing
	NodesHealthy int
	NodesNeeded  int
}

func (e *PluginError) Error() string {
	if e.Missing {
		have := "none"
		if len(e.Existing) > 0 {
			have = strings.Join(e.Existing, ", ")
		}
		return fmt.Sprintf("csi plugin %q not found (plugins present: %s)", e.PluginID, have)
	}
	return fmt.Sprintf("csi plugin %q healthy on %d nodes, %d eligible nodes may run the job", e.PluginID, e.NodesHealthy, e.NodesNeeded)
}

// Preflight checks that the cluster can take the service, changing
// nothing. The error is non-nil only when the checks could not run (agent
// unreachable: wrapped; token refused: *ACLError); failed checks are in
// the Report.
func (c *Client) Preflight(ctx context.Context, in PreflightInput) (*Report, error) {
	svc := in.Service
	r := &Report{}
	if _, err := c.api.Agent().Self(); err != nil {
		return nil, wrap("preflight agent", err)
	}
	// The agent answers /v1/agent/self to some tokens that can do nothing
	// else; listing jobs in the target namespace proves the token works.
	if _, _, err := c.api.Jobs().List(c.q(ctx)); err != nil {
		return nil, wrap("preflight token", err)
	}

	if reg := svc.Target.Region; reg != "" {
		regions, err := c.api.Regions().List()
		if err != nil {
			return nil, wrap("preflight regions", err)
		}
		if !slices.Contains(regions, reg) {
			r.fail("region", fmt.Errorf("region %q not found (regions: %s)", reg, strings.Join(regions, ", ")))
		}
	}
	if nsName := svc.Target.Namespace; nsName != "" {
		nss, _, err := c.api.Namespaces().List(c.q(ctx))
		if err != nil {
			return nil, wrap("preflight namespaces", err)
		}
		found := false
		var names []string
		for _, n := range nss {
			names = append(names, n.Name)
			found = found || n.Name == nsName
		}
		if !found {
			r.fail("namespace", fmt.Errorf("namespace %q not found (namespaces: %s)", nsName, strings.Join(names, ", ")))
		}
	}

	nodes, err := c.eligibleNodes(ctx, svc.Target.Datacenters)
	if err != nil {
		return nil, err
	}
	for _, dc := range svc.Target.Datacenters {
		if dc == "*" || strings.ContainsAny(dc, "*?") {
			continue
		}
		if !slices.ContainsFunc(nodes.all, func(n *api.NodeListStub) bool { return n.Datacenter == dc }) {
			r.fail("datacenter", fmt.Errorf("datacenter %q has no nodes", dc))
		}
	}
	if len(nodes.eligible) == 0 {
		r.fail("nodes", fmt.Errorf("no ready, eligible node in datacenters %s", strings.Join(svc.Target.Datacenters, ", ")))
	}

	if svc.Storage.Kind == ferry.StorageCSI && svc.Storage.PluginID != "" {
		if err := c.checkPlugin(ctx, svc.Storage.PluginID, len(nodes.eligible)); err != nil {
			var pe *PluginError
			if !errors.As(err, &pe) {
				return nil, err
			}
			r.fail("csi-plugin", err)
		}
	}

	if in.JobHCL != "" && svc.Name != "" {
		if err := c.checkExistingJob(ctx, svc.Name, in.JobHCL); err != nil {
			var ce *SpecDiffError
			if !errors.As(err, &ce) {
				return nil, err
			}
			r.fail("existing-job", err)
		}
	}

	if usesMemoryMax(svc.Resources) {
		cfg, _, err := c.api.Operator().SchedulerGetConfiguration(c.q(ctx))
		if err != nil {
			return nil, wrap("preflight scheduler configuration", err)
		}
		if cfg.SchedulerConfig == nil || !cfg.SchedulerConfig.MemoryOversubscriptionEnabled {
			r.Warnings = append(r.Warnings, "memory oversubscription is disabled in the scheduler configuration: memory_max is ignored and tasks are limited to memory")
		}
	}

	images := in.Images
	if len(images) == 0 {
		for _, img := range []string{svc.Image, svc.Litestream.Image} {
			if img != "" {
				images = append(images, img)
			}
		}
	}
	var archs []nodeArch
	if len(images) > 0 {
		if archs, err = c.nodeArchs(ctx, nodes.eligible); err != nil {
			return nil, err
		}
	}
	for _, img := range images {
		if err := c.checkPlatforms(ctx, img, archs, in); err != nil {
			var pe *PlatformError
			if !errors.As(err, &pe) {
				r.fail("image", err)
				continue
			}
			r.fail("platform", err)
		}
	}
	c.log.InfoContext(ctx, "preflight done", "problems", len(r.Problems), "warnings", len(r.Warnings))
	return r, nil
}

func usesMemoryMax(res ferry.Resources) bool {
	return res.Main.MemoryMaxMB > 0 || res.Restore.MemoryMaxMB > 0 || res.Replicate.MemoryMaxMB > 0
}

type nodeSet struct {
	all      []*api.NodeListStub
	eligible []*api.NodeListStub // ready, eligible, not draining, in the datacenters
}

func (c *Client) eligibleNodes(ctx context.Context, dcs []string) (nodeSet, error) {
	nodes, _, err := c.api.Nodes().List(c.q(ctx))
	if err != nil {
		return nodeSet{}, wrap("preflight nodes", err)
	}
	ns := nodeSet{all: nodes}
	for _, n := range nodes {
		if n.Status == "ready" && n.SchedulingEligibility == "eligible" && !n.Drain && inDatacenters(dcs, n.Datacenter) {
			ns.eligible = append(ns.eligible, n)
		}
	}
	return ns, nil
}

func inDatacenters(dcs []string, dc string) bool {
	if len(dcs) == 0 {
		return true
	}
	for _, d := range dcs {
		if d == "*" || d == dc {
			return true
		}
	}
	return false
}

type nodeArch struct{ name, arch string }

// nodeArchs reads each node's cpu.arch: node list stubs do not carry it.
func (c *Client) nodeArchs(ctx context.Context, nodes []*api.NodeListStub) ([]nodeArch, error) {
	var out []nodeArch
	for _, n := range nodes {
		full, _, err := c.api.Nodes().Info(n.ID, c.q(ctx))
		if err != nil {
			return nil, wrap("preflight node "+n.Name, err)
		}
		out = append(out, nodeArch{name: n.Name, arch: full.Attributes["cpu.arch"]})
	}
	return out, nil
}

func (c *Client) checkPlugin(ctx context.Context, id string, needed int) error {
	p, _, err := c.api.CSIPlugins().Info(id, c.q(ctx))
	if IsNotFound(err) {
		list, _, lerr := c.api.CSIPlugins().List(c.q(ctx))
		if lerr != nil {
			return wrap("preflight csi plugins", lerr)
		}
		pe := &PluginError{PluginID: id, Missing: true}
		for _, p := range list {
			pe.Existing = append(pe.Existing, p.ID)
		}
		return pe
	}
	if err != nil {
		return wrap("preflight csi plugin", err)
	}
	if p.NodesHealthy < 1 || p.NodesHealthy < needed {
		return &PluginError{PluginID: id, NodesHealthy: p.NodesHealthy, NodesNeeded: needed}
	}
	return nil
}

// SpecDiffError is a job of the same name already running with a
// different spec.
type SpecDiffError struct {
	Job     string
	Version uint64
	Diff    string // Nomad's diff type: Edited, Added...
}

func (e *SpecDiffError) Error() string {
	return fmt.Sprintf("job %q is already running a different spec (version %d, diff %s)", e.Job, e.Version, e.Diff)
}

func (c *Client) checkExistingJob(ctx context.Context, name, hcl string) error {
	cur, _, err := c.api.Jobs().Info(name, c.q(ctx))
	if IsNotFound(err) {
		return nil
	}
	if err != nil {
		return wrap("preflight job", err)
	}
	if (cur.Stop != nil && *cur.Stop) || (cur.Status != nil && *cur.Status == "dead") {
		return nil
	}
	job, err := c.api.Jobs().ParseHCLOpts(&api.JobsParseRequest{JobHCL: hcl, Canonicalize: true})
	if err != nil {
		return wrap("preflight parse", err)
	}
	plan, _, err := c.api.Jobs().PlanOpts(job, &api.PlanOptions{Diff: true}, c.w(ctx))
	if err != nil {
		return wrap("preflight plan", err)
	}
	if plan.Diff != nil && plan.Diff.Type != "None" {
		return &SpecDiffError{Job: name, Version: *cur.Version, Diff: plan.Diff.Type}
	}
	return nil
}

// checkPlatforms reads the image's manifest list / OCI index (or its
// single manifest's config) and fails when an eligible node's
// architecture is missing.
func (c *Client) checkPlatforms(ctx context.Context, image string, nodes []nodeArch, in PreflightInput) error {
	ref, err := name.ParseReference(image)
	if err != nil {
		return fmt.Errorf("parse image %q: %w", image, err)
	}
	kc := in.Keychain
	if kc == nil {
		kc = authn.NewMultiKeychain() // anonymous
	}
	opts := append([]remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(kc)}, in.RegistryOptions...)
	desc, err := remote.Get(ref, opts...)
	if err != nil {
		return fmt.Errorf("read image %s: %w", image, err)
	}
	have := map[string]bool{}
	var avail []string
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return fmt.Errorf("read index of %s: %w", image, err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return fmt.Errorf("read index of %s: %w", image, err)
		}
		for _, m := range im.Manifests {
			if m.Platform == nil || m.Platform.OS == "unknown" {
				continue // attestation manifests
			}
			have[m.Platform.Architecture] = true
			avail = append(avail, m.Platform.OS+"/"+m.Platform.Architecture)
		}
	} else {
		img, err := desc.Image()
		if err != nil {
			return fmt.Errorf("read image %s: %w", image, err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			return fmt.Errorf("read config of %s: %w", image, err)
		}
		have[cf.Architecture] = true
		avail = append(avail, cf.OS+"/"+cf.Architecture)
	}
	byArch := map[string][]string{}
	for _, n := range nodes {
		if n.arch == "" {
			continue
		}
		byArch[n.arch] = append(byArch[n.arch], n.name)
	}
	archs := make([]string, 0, len(byArch))
	for a := range byArch {
		archs = append(archs, a)
	}
	sort.Strings(archs)
	for _, a := range archs {
		if !have[a] {
			return &PlatformError{Image: image, Arch: a, Nodes: byArch[a], Available: avail}
		}
	}
	return nil
}
