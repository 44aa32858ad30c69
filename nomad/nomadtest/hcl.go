package nomadtest

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/nomad/api"
	"github.com/zclconf/go-cty/cty"
)

// ParseJobHCL turns an HCL2 jobspec into an api.Job the way
// PUT /v1/jobs/parse does, for the subset of the language ferry renders:
// blocks and attributes are decoded through the hcl tags of the api
// structs; runtime references (${NOMAD_*}, ${attr.*}, ${meta.*},
// ${node.*}, ${env.*}) are kept literally, as Nomad interpolates them on
// the client later. Functions and HCL variables are not supported.
//
// The error text matches Nomad's diagnostics ("input.hcl:3,13-4,1: ...").
func ParseJobHCL(src string) (*api.Job, error) {
	f, diags := hclsyntax.ParseConfig([]byte(src), "input.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		return nil, diags
	}
	body := f.Body.(*hclsyntax.Body)
	var jobBlock *hclsyntax.Block
	for _, b := range body.Blocks {
		if b.Type == "job" {
			if jobBlock != nil {
				return nil, fmt.Errorf("input.hcl: only one job block is allowed")
			}
			jobBlock = b
		}
	}
	if jobBlock == nil {
		return nil, fmt.Errorf("input.hcl: no job block found")
	}
	job := new(api.Job)
	if err := decodeBlock(jobBlock, reflect.ValueOf(job).Elem()); err != nil {
		return nil, err
	}
	// The job's label is its ID (and its name unless name is set).
	if len(jobBlock.Labels) > 0 {
		if job.ID == nil {
			job.ID = ptr(jobBlock.Labels[0])
		}
		if job.Name == nil {
			job.Name = ptr(jobBlock.Labels[0])
		}
	}
	return job, nil
}

type hclField struct {
	name  string
	kind  string // "attr", "block", "label"
	index int
}

func hclFields(t reflect.Type) []hclField {
	var out []hclField
	for i := 0; i < t.NumField(); i++ {
		tag, ok := t.Field(i).Tag.Lookup("hcl")
		if !ok {
			continue
		}
		parts := strings.Split(tag, ",")
		f := hclField{name: parts[0], kind: "attr", index: i}
		if len(parts) > 1 {
			switch parts[1] {
			case "block":
				f.kind = "block"
			case "label":
				f.kind = "label"
			case "remain":
				continue
			}
		}
		out = append(out, f)
	}
	return out
}

// decodeBlock fills the struct v from block b.
func decodeBlock(b *hclsyntax.Block, v reflect.Value) error {
	fields := hclFields(v.Type())
	labels := b.Labels
	for _, f := range fields {
		if f.kind == "label" && len(labels) > 0 {
			setString(v.Field(f.index), labels[0])
			labels = labels[1:]
		}
	}
	return decodeHCLBody(b.Body, v, fields)
}

func decodeHCLBody(body *hclsyntax.Body, v reflect.Value, fields []hclField) error {
	byName := map[string]hclField{}
	for _, f := range fields {
		if f.kind != "label" {
			byName[f.name] = f
		}
	}
	for name, attr := range body.Attributes {
		f, ok := byName[name]
		if !ok || f.kind != "attr" {
			return diagErr(attr.SrcRange, "Unsupported argument", fmt.Sprintf("An argument named %q is not expected here.", name))
		}
		val, err := evalExpr(attr.Expr)
		if err != nil {
			return err
		}
		if err := assign(v.Field(f.index), val, attr.SrcRange); err != nil {
			return err
		}
	}
	for _, blk := range body.Blocks {
		// network "port" blocks are DynamicPorts, or ReservedPorts when
		// static is set, as Nomad's jobspec parser does.
		if blk.Type == "port" && v.Type() == reflect.TypeOf(api.NetworkResource{}) {
			if err := decodePort(blk, v.Addr().Interface().(*api.NetworkResource)); err != nil {
				return err
			}
			continue
		}
		f, ok := byName[blk.Type]
		if !ok || f.kind != "block" {
			return diagErr(blk.TypeRange, "Unsupported block type", fmt.Sprintf("Blocks of type %q are not expected here.", blk.Type))
		}
		if err := decodeInto(blk, v.Field(f.index)); err != nil {
			return err
		}
	}
	return nil
}

func decodePort(blk *hclsyntax.Block, n *api.NetworkResource) error {
	var p api.Port
	if err := decodeBlock(blk, reflect.ValueOf(&p).Elem()); err != nil {
		return err
	}
	if p.Value != 0 {
		n.ReservedPorts = append(n.ReservedPorts, p)
	} else {
		n.DynamicPorts = append(n.DynamicPorts, p)
	}
	return nil
}

// decodeInto decodes one block into a field: a struct, a pointer to one, a
// slice of either, a map keyed by label, or a free-form map (config, env,
// meta).
func decodeInto(blk *hclsyntax.Block, fv reflect.Value) error {
	switch fv.Kind() {
	case reflect.Pointer:
		if fv.IsNil() {
			fv.Set(reflect.New(fv.Type().Elem()))
		}
		return decodeBlock(blk, fv.Elem())
	case reflect.Struct:
		return decodeBlock(blk, fv)
	case reflect.Slice:
		elem := reflect.New(fv.Type().Elem()).Elem()
		if err := decodeInto(blk, elem); err != nil {
			return err
		}
		fv.Set(reflect.Append(fv, elem))
		return nil
	case reflect.Map:
		if fv.IsNil() {
			fv.Set(reflect.MakeMap(fv.Type()))
		}
		et := fv.Type().Elem()
		if et.Kind() == reflect.Pointer && et.Elem().Kind() == reflect.Struct {
			// volume "name" { ... }: keyed by the label.
			elem := reflect.New(et.Elem())
			if err := decodeBlock(blk, elem.Elem()); err != nil {
				return err
			}
			key := ""
			if len(blk.Labels) > 0 {
				key = blk.Labels[0]
			}
			fv.SetMapIndex(reflect.ValueOf(key), elem)
			return nil
		}
		m, err := freeForm(blk.Body)
		if err != nil {
			return err
		}
		for k, val := range m {
			if et.Kind() == reflect.String {
				s, ok := val.(string)
				if !ok {
					s = fmt.Sprint(val)
				}
				fv.SetMapIndex(reflect.ValueOf(k), reflect.ValueOf(s))
			} else {
				fv.SetMapIndex(reflect.ValueOf(k), reflect.ValueOf(val))
			}
		}
		return nil
	}
	return diagErr(blk.TypeRange, "Unsupported block type", fmt.Sprintf("Blocks of type %q are not supported by this double.", blk.Type))
}

// freeForm decodes a body without schema (a task's config): attributes
// become values, nested blocks become lists of maps, as Nomad does.
func freeForm(body *hclsyntax.Body) (map[string]any, error) {
	out := map[string]any{}
	for name, attr := range body.Attributes {
		val, err := evalExpr(attr.Expr)
		if err != nil {
			return nil, err
		}
		out[name] = ctyToGo(val)
	}
	for _, blk := range body.Blocks {
		m, err := freeForm(blk.Body)
		if err != nil {
			return nil, err
		}
		list, _ := out[blk.Type].([]map[string]any)
		out[blk.Type] = append(list, m)
	}
	return out, nil
}

// evalExpr evaluates an expression in a context where every runtime
// reference evaluates to its own source text, so "${NOMAD_PORT_http}"
// stays literal.
func evalExpr(expr hclsyntax.Expression) (cty.Value, error) {
	vars := map[string]cty.Value{}
	tree := map[string]any{}
	for _, tr := range expr.Variables() {
		root := tr.RootName()
		if !runtimeRoot(root) {
			return cty.NilVal, diagErr(tr.SourceRange(), "Unknown variable", fmt.Sprintf("There is no variable named %q.", root))
		}
		path := []string{root}
		for _, step := range tr[1:] {
			if a, ok := step.(hcl.TraverseAttr); ok {
				path = append(path, a.Name)
			}
		}
		insertPath(tree, path, "${"+strings.Join(path, ".")+"}")
	}
	for k, v := range tree {
		vars[k] = treeVal(v)
	}
	val, diags := expr.Value(&hcl.EvalContext{Variables: vars})
	if diags.HasErrors() {
		return cty.NilVal, diags
	}
	return val, nil
}

func runtimeRoot(name string) bool {
	switch name {
	case "attr", "meta", "node", "env", "unique":
		return true
	}
	return strings.HasPrefix(name, "NOMAD_")
}

func insertPath(tree map[string]any, path []string, leaf string) {
	for i, p := range path {
		if i == len(path)-1 {
			if _, ok := tree[p].(map[string]any); !ok {
				tree[p] = leaf
			}
			return
		}
		next, ok := tree[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			tree[p] = next
		}
		tree = next
	}
}

func treeVal(v any) cty.Value {
	switch v := v.(type) {
	case string:
		return cty.StringVal(v)
	case map[string]any:
		m := map[string]cty.Value{}
		for k, x := range v {
			m[k] = treeVal(x)
		}
		return cty.ObjectVal(m)
	}
	return cty.NilVal
}

func ctyToGo(v cty.Value) any {
	if v.IsNull() || !v.IsKnown() {
		return nil
	}
	t := v.Type()
	switch {
	case t == cty.String:
		return v.AsString()
	case t == cty.Number:
		bf := v.AsBigFloat()
		if i, acc := bf.Int64(); acc == 0 {
			return int(i)
		}
		f, _ := bf.Float64()
		return f
	case t == cty.Bool:
		return v.True()
	case t.IsListType() || t.IsTupleType() || t.IsSetType():
		var out []any
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			out = append(out, ctyToGo(e))
		}
		return out
	case t.IsMapType() || t.IsObjectType():
		out := map[string]any{}
		for it := v.ElementIterator(); it.Next(); {
			k, e := it.Element()
			out[k.AsString()] = ctyToGo(e)
		}
		return out
	}
	return nil
}

// assign stores an evaluated attribute into a typed field.
func assign(fv reflect.Value, val cty.Value, rng hcl.Range) error {
	g := ctyToGo(val)
	if g == nil {
		return nil
	}
	return assignGo(fv, g, rng)
}

var durationType = reflect.TypeOf(time.Duration(0))

func assignGo(fv reflect.Value, g any, rng hcl.Range) error {
	bad := func() error {
		return diagErr(rng, "Unsuitable value type", fmt.Sprintf("Unsuitable value: %v cannot be used as %s", g, fv.Type()))
	}
	if fv.Kind() == reflect.Pointer {
		nv := reflect.New(fv.Type().Elem())
		if err := assignGo(nv.Elem(), g, rng); err != nil {
			return err
		}
		fv.Set(nv)
		return nil
	}
	if fv.Type() == durationType {
		switch x := g.(type) {
		case string:
			d, err := time.ParseDuration(x)
			if err != nil {
				return diagErr(rng, "Unsuitable value type", err.Error())
			}
			fv.SetInt(int64(d))
		case int:
			fv.SetInt(int64(x))
		default:
			return bad()
		}
		return nil
	}
	switch fv.Kind() {
	case reflect.String:
		s, ok := g.(string)
		if !ok {
			s = fmt.Sprint(g)
		}
		fv.SetString(s)
	case reflect.Bool:
		b, ok := g.(bool)
		if !ok {
			return bad()
		}
		fv.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, ok := g.(int)
		if !ok {
			return bad()
		}
		fv.SetInt(int64(i))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		i, ok := g.(int)
		if !ok || i < 0 {
			return bad()
		}
		fv.SetUint(uint64(i))
	case reflect.Float32, reflect.Float64:
		switch x := g.(type) {
		case int:
			fv.SetFloat(float64(x))
		case float64:
			fv.SetFloat(x)
		default:
			return bad()
		}
	case reflect.Slice:
		list, ok := g.([]any)
		if !ok {
			return bad()
		}
		out := reflect.MakeSlice(fv.Type(), len(list), len(list))
		for i, e := range list {
			if err := assignGo(out.Index(i), e, rng); err != nil {
				return err
			}
		}
		fv.Set(out)
	case reflect.Map:
		m, ok := g.(map[string]any)
		if !ok {
			return bad()
		}
		out := reflect.MakeMap(fv.Type())
		for k, e := range m {
			ev := reflect.New(fv.Type().Elem()).Elem()
			if err := assignGo(ev, e, rng); err != nil {
				return err
			}
			out.SetMapIndex(reflect.ValueOf(k), ev)
		}
		fv.Set(out)
	case reflect.Interface:
		fv.Set(reflect.ValueOf(g))
	default:
		return bad()
	}
	return nil
}

func setString(fv reflect.Value, s string) {
	if fv.Kind() == reflect.Pointer {
		fv.Set(reflect.ValueOf(&s))
		return
	}
	fv.SetString(s)
}

func diagErr(rng hcl.Range, summary, detail string) error {
	return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: rng.Ptr()}}
}
