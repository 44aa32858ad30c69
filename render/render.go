// Package render turns a migration spec into the files that run it on
// Nomad: a Terraform module (main.tf + jobspec.nomad.hcl, and a restore
// drill job when scheduled), the module's entry in the root main.tf, and the
// service's migration runbook.
//
// HCL is built with hclwrite, never with text templates, so every value is
// escaped by the writer; the shell scripts and litestream config embedded in
// the jobspec single-quote every value that came from the spec, and those
// values are held to conservative alphabets by ferry.Service.Validate.
// Rendering is a pure function of the spec: rendering twice gives the same
// bytes.
package render

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/ferry-migrate/ferry"
)

// Files maps paths relative to the output directory (slash-separated) to
// their contents.
type Files map[string][]byte

// Paths returns the file paths in sorted order.
func (fs Files) Paths() []string {
	ps := make([]string, 0, len(fs))
	for p := range fs {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}

// Paths of the rendered files for a service, relative to the output dir.
func ModuleMainPath(svc string) string   { return "modules/" + svc + "/main.tf" }
func JobspecPath(svc string) string      { return "modules/" + svc + "/jobspec.nomad.hcl" }
func DrillJobspecPath(svc string) string { return "modules/" + svc + "/restore-drill.nomad.hcl" }
func RunbookPath(svc string) string      { return "docs/" + svc + "-migration.md" }

// RootMainPath is the root module file that UpdateRootModule edits.
const RootMainPath = "main.tf"

// Render returns the module files and the runbook for s. s must be a
// validated Service (config.Load guarantees it); Render validates again and
// refuses an invalid one, because its escaping relies on that validation.
// The root main.tf is not included: it belongs to the user (see
// UpdateRootModule and RenderDir).
func Render(s *ferry.Service) (Files, error) {
	if s == nil {
		return nil, errors.New("render: nil service")
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("render %s: invalid spec: %w", s.Name, err)
	}
	fs := Files{}
	job, err := Jobspec(s)
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", s.Name, err)
	}
	fs[JobspecPath(s.Name)] = job
	fs[ModuleMainPath(s.Name)] = moduleMain(s)
	if s.Drill.Schedule != "" {
		drill, err := drillJobspec(s)
		if err != nil {
			return nil, fmt.Errorf("render %s: %w", s.Name, err)
		}
		fs[DrillJobspecPath(s.Name)] = drill
	}
	fs[RunbookPath(s.Name)] = runbook(s)
	return fs, nil
}

// RenderDir renders s into dir: the module files, the runbook, and dir's
// root main.tf updated with the module (created when absent). Nothing is
// written unless everything rendered. It returns every file it wrote.
func RenderDir(ctx context.Context, dir string, s *ferry.Service) (Files, error) {
	fs, err := Render(s)
	if err != nil {
		return nil, err
	}
	root, err := os.ReadFile(filepath.Join(dir, RootMainPath))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("render: read root module: %w", err)
	}
	root, err = UpdateRootModule(root, s)
	if err != nil {
		return nil, err
	}
	fs[RootMainPath] = root
	if err := Write(ctx, dir, fs); err != nil {
		return nil, err
	}
	return fs, nil
}
