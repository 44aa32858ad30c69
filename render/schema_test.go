package render_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/ferry-migrate/ferry/internal/testenv"
	"github.com/ferry-migrate/ferry/render"
)

// The schema of the real hashicorp/nomad provider v2.0.0, from
// `terraform providers schema -json`, kept in ../shared beside the clone.
const schemaPath = "../../shared/terraform/nomad-provider-v2.0.0-schema.json"

type tfBlock struct {
	Attributes map[string]struct {
		Required bool `json:"required"`
		Optional bool `json:"optional"`
		Computed bool `json:"computed"`
	} `json:"attributes"`
	BlockTypes map[string]struct {
		Block    tfBlock `json:"block"`
		MinItems int     `json:"min_items"`
		MaxItems int     `json:"max_items"`
	} `json:"block_types"`
}

type tfSchema struct {
	ProviderSchemas map[string]struct {
		Resources   map[string]struct{ Block tfBlock } `json:"resource_schemas"`
		DataSources map[string]struct{ Block tfBlock } `json:"data_source_schemas"`
	} `json:"provider_schemas"`
}

// Terraform's meta-arguments, valid in every resource and data block.
var metaAttrs = map[string]bool{"depends_on": true, "count": true, "for_each": true, "provider": true}
var metaBlocks = map[string]bool{"lifecycle": true, "provisioner": true, "connection": true}

// TestMainTFMatchesProviderSchema holds every generated main.tf against the
// provider's schema: types exist, arguments are known and settable,
// required arguments and blocks are present, block counts are in range.
func TestMainTFMatchesProviderSchema(t *testing.T) {
	raw, err := os.ReadFile(filepath.FromSlash(schemaPath))
	if err != nil {
		testenv.Skip(t, "provider schema not found: "+err.Error())
	}
	var sch tfSchema
	if err := json.Unmarshal(raw, &sch); err != nil {
		t.Fatal(err)
	}
	p, ok := sch.ProviderSchemas["registry.terraform.io/hashicorp/nomad"]
	if !ok {
		t.Fatal("schema has no hashicorp/nomad provider")
	}
	for _, c := range goldenCases(t) {
		fs, err := render.Render(load(t, c.spec))
		if err != nil {
			t.Fatal(err)
		}
		s := load(t, c.spec)
		body := parse(t, fs[render.ModuleMainPath(s.Name)])
		if len(body.Blocks) == 0 {
			t.Errorf("%s: empty main.tf", c.name)
		}
		for _, b := range body.Blocks {
			var schema map[string]struct{ Block tfBlock }
			switch b.Type {
			case "resource":
				schema = p.Resources
			case "data":
				schema = p.DataSources
			default:
				t.Errorf("%s: unexpected top-level block %s", c.name, b.Type)
				continue
			}
			rs, ok := schema[b.Labels[0]]
			if !ok {
				t.Errorf("%s: %s type %q is not in the provider", c.name, b.Type, b.Labels[0])
				continue
			}
			checkBlock(t, c.name+": "+b.Labels[0]+"."+b.Labels[1], rs.Block, b.Body, true)
		}
	}
}

func checkBlock(t *testing.T, where string, sch tfBlock, body *hclsyntax.Body, top bool) {
	t.Helper()
	for name := range body.Attributes {
		if top && metaAttrs[name] {
			continue
		}
		a, ok := sch.Attributes[name]
		if !ok {
			t.Errorf("%s: unknown argument %q", where, name)
		} else if !a.Required && !a.Optional {
			t.Errorf("%s: %q is computed only", where, name)
		}
	}
	for name, a := range sch.Attributes {
		if a.Required && body.Attributes[name] == nil {
			t.Errorf("%s: required argument %q missing", where, name)
		}
	}
	counts := map[string]int{}
	for _, b := range body.Blocks {
		if top && metaBlocks[b.Type] {
			continue
		}
		bt, ok := sch.BlockTypes[b.Type]
		if !ok {
			t.Errorf("%s: unknown block %q", where, b.Type)
			continue
		}
		counts[b.Type]++
		checkBlock(t, where+"."+b.Type, bt.Block, b.Body, false)
	}
	for name, bt := range sch.BlockTypes {
		if n := counts[name]; n < bt.MinItems || (bt.MaxItems > 0 && n > bt.MaxItems) {
			t.Errorf("%s: %d %q blocks, want %d..%d", where, n, name, bt.MinItems, bt.MaxItems)
		}
	}
}
