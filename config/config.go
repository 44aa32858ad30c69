// Package config reads and writes ferry.hcl, the migration spec.
//
// Load parses the file, applies defaults and validates the result; every
// problem is reported with the file, line and column of the field it is
// about. Encode writes a Service back as ferry.hcl with every value
// explicit, so a spec written by `ferry init` shows what will happen.
package config

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/ferry-migrate/ferry"
)

// Problem is one thing wrong with a spec, located in its file.
type Problem struct {
	Filename string
	Line     int
	Column   int
	Field    string // dotted field path; empty for syntax errors
	Msg      string
}

func (p Problem) String() string {
	loc := fmt.Sprintf("%s:%d:%d", p.Filename, p.Line, p.Column)
	if p.Field == "" {
		return loc + ": " + p.Msg
	}
	return loc + ": " + p.Field + ": " + p.Msg
}

// Error lists every problem found in a spec.
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Load reads, defaults and validates the spec at path.
func Load(path string) (*ferry.Service, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load spec: %w", err)
	}
	return Parse(src, path)
}

// Parse is Load on bytes already read; filename is used in problems.
func Parse(src []byte, filename string) (*ferry.Service, error) {
	f, diags := hclsyntax.ParseConfig(src, filename, hcl.Pos{Line: 1, Column: 1})
	if diags.HasErrors() {
		return nil, fromDiags(diags)
	}
	var raw file
	if diags := gohcl.DecodeBody(f.Body, nil, &raw); diags.HasErrors() {
		return nil, fromDiags(diags)
	}
	body := f.Body.(*hclsyntax.Body)
	svc, convErrs := raw.Service.toService()
	ApplyDefaults(svc)
	var errs ferry.FieldErrors
	errs = append(errs, convErrs...)
	if err := svc.Validate(); err != nil {
		var fe ferry.FieldErrors
		if !errors.As(err, &fe) {
			return nil, fmt.Errorf("validate spec: %w", err)
		}
		errs = append(errs, fe...)
	}
	if len(errs) > 0 {
		e := &Error{}
		for _, fe := range errs {
			r := locate(body, fe.Field)
			e.Problems = append(e.Problems, Problem{
				Filename: r.Filename, Line: r.Start.Line, Column: r.Start.Column,
				Field: fe.Field, Msg: fe.Msg,
			})
		}
		slices.SortStableFunc(e.Problems, func(a, b Problem) int {
			if a.Line != b.Line {
				return a.Line - b.Line
			}
			return a.Column - b.Column
		})
		return nil, e
	}
	return svc, nil
}

func fromDiags(diags hcl.Diagnostics) *Error {
	e := &Error{}
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		p := Problem{Msg: d.Summary}
		if d.Detail != "" {
			p.Msg += "; " + d.Detail
		}
		if d.Subject != nil {
			p.Filename, p.Line, p.Column = d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column
		}
		e.Problems = append(e.Problems, p)
	}
	return e
}

// locate finds the range of the attribute or block that a field path
// names, falling back to the nearest enclosing block that exists. Path
// segments match block types, then block labels, then attribute names;
// an index suffix ("config_files[2]") is ignored.
func locate(body *hclsyntax.Body, field string) hcl.Range {
	svc := body.Blocks[0]
	best := svc.DefRange()
	cur := svc.Body
	segs := strings.Split(field, ".")
	if segs[0] == "service" {
		return svc.LabelRanges[0]
	}
	for i := 0; i < len(segs); i++ {
		seg, _, _ := strings.Cut(segs[i], "[")
		if a, ok := cur.Attributes[seg]; ok {
			return a.NameRange
		}
		var next *hclsyntax.Block
		for _, b := range cur.Blocks {
			if b.Type != seg {
				continue
			}
			if len(b.Labels) > 0 {
				if i+1 < len(segs) && b.Labels[0] == segs[i+1] {
					next = b
					i++
					break
				}
				continue
			}
			next = b
			break
		}
		if next == nil {
			return best
		}
		best, cur = next.DefRange(), next.Body
	}
	return best
}
