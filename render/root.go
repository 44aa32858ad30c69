package render

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"

	"github.com/ferry-migrate/ferry"
)

// UpdateRootModule returns the root main.tf with
//
//	module "<svc>" {
//	  source     = "./modules/<svc>"
//	  depends_on = [module.<csi plugin modules>]
//	}
//
// appended, or, when the block exists, its source set and its depends_on
// added if it has none; every other byte (blocks, comments, layout) is
// kept, since edits are spliced into the original text. The CSI plugin
// modules are the root's other modules whose name mentions "csi" or the
// plugin id; an existing depends_on is the user's and is kept. Applying it
// to its own output changes nothing. existing may be empty (no root
// main.tf yet).
func UpdateRootModule(existing []byte, s *ferry.Service) ([]byte, error) {
	f, diags := hclsyntax.ParseConfig(existing, RootMainPath, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, fmt.Errorf("update root module: %w", diags)
	}
	root := f.Body.(*hclsyntax.Body)
	source := "./modules/" + s.Name
	deps := pluginModules(root, s)

	var b *hclsyntax.Block
	for _, blk := range root.Blocks {
		if blk.Type == "module" && len(blk.Labels) == 1 && blk.Labels[0] == s.Name {
			b = blk
		}
	}
	if b == nil {
		nf := hclwrite.NewEmptyFile()
		body := nf.Body().AppendNewBlock("module", []string{s.Name}).Body()
		setStr(body, "source", source)
		if len(deps) > 0 {
			body.SetAttributeRaw("depends_on", hclwrite.TokensForTuple(deps))
		}
		out := bytes.Clone(existing)
		if len(bytes.TrimSpace(out)) > 0 {
			if !bytes.HasSuffix(out, []byte("\n")) {
				out = append(out, '\n')
			}
			out = append(out, '\n')
		}
		return append(out, hclwrite.Format(nf.Bytes())...), nil
	}

	// Splice edits into the original bytes, last offset first.
	out := bytes.Clone(existing)
	splice := func(start, end int, text string) {
		out = append(out[:start:start], append([]byte(text), existing[end:]...)...)
	}
	if b.Body.Attributes["depends_on"] == nil && len(deps) > 0 {
		at := b.CloseBraceRange.Start.Byte
		line := "  depends_on = " + string(hclwrite.TokensForTuple(deps).Bytes()) + "\n"
		if at > 0 && existing[at-1] != '\n' {
			line = "\n" + line
		}
		splice(at, at, line)
		existing = bytes.Clone(out)
	}
	quoted := string(hclwrite.TokensForValue(cty.StringVal(source)).Bytes())
	if a := b.Body.Attributes["source"]; a == nil {
		at := b.OpenBraceRange.End.Byte
		splice(at, at, "\n  source = "+quoted)
	} else if v, d := a.Expr.Value(nil); d.HasErrors() || v.Type() != cty.String || v.AsString() != source {
		r := a.Expr.Range()
		splice(r.Start.Byte, r.End.Byte, quoted)
	}
	if _, diags := hclsyntax.ParseConfig(out, RootMainPath, hcl.InitialPos); diags.HasErrors() {
		return nil, fmt.Errorf("update root module: the edited file does not parse: %w", diags)
	}
	return out, nil
}

func pluginModules(root *hclsyntax.Body, s *ferry.Service) []hclwrite.Tokens {
	if s.Storage.Kind != ferry.StorageCSI {
		return nil
	}
	plugin := strings.ToLower(tfIdent(s.Storage.PluginID))
	var deps []hclwrite.Tokens
	for _, b := range root.Blocks {
		if b.Type != "module" || len(b.Labels) != 1 || b.Labels[0] == s.Name || tfIdent(b.Labels[0]) != b.Labels[0] {
			continue
		}
		name := strings.ToLower(b.Labels[0])
		if strings.Contains(name, "csi") || strings.Contains(name, plugin) {
			deps = append(deps, traversal("module", b.Labels[0]))
		}
	}
	return deps
}
