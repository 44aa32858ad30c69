package nomadtest

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"sync"
)

// testdata holds copies of recorded responses from a real Nomad v1.6.2
// (../shared/nomad-api). They are used as shape templates: the double
// builds a response from its own state with the api structs, then conforms
// it to the recorded shape, so field names, presence and value types are
// what a real Nomad sends, while the values are the double's.
//
//go:embed testdata/*.json
var testdata embed.FS

var (
	templatesOnce sync.Once
	templates     map[string]any
)

// template returns the recorded response body named name (file name
// without .json), decoded with json.Number.
func template(name string) any {
	templatesOnce.Do(func() {
		templates = map[string]any{}
		entries, _ := testdata.ReadDir("testdata")
		for _, e := range entries {
			b, err := testdata.ReadFile("testdata/" + e.Name())
			if err != nil {
				panic(err)
			}
			var rec struct {
				ResponseBody json.RawMessage `json:"response_body"`
			}
			if err := json.Unmarshal(b, &rec); err != nil {
				panic(fmt.Sprintf("nomadtest: template %s: %v", e.Name(), err))
			}
			templates[e.Name()[:len(e.Name())-len(".json")]] = decodeGeneric(rec.ResponseBody)
		}
		mergeTemplates()
	})
	t, ok := templates[name]
	if !ok {
		panic("nomadtest: no template " + name)
	}
	return deepCopy(t)
}

// unions are templates merged from bodies recorded in several states,
// because Nomad omits empty fields (omitempty): an allocation only has
// NextAllocation once rescheduled, an evaluation WaitUntil when delayed.
var unions = map[string][]string{
	"alloc":      {"alloc", "alloc-failed", "alloc-rescheduled", "alloc-followup", "alloc-previous", "alloc-migrating", "alloc-prestart"},
	"eval":       {"eval", "eval-followup", "eval-blocked"},
	"deployment": {"deployment", "deployment-failed"},
	"job":        {"job", "job-stopped"},
}

func mergeTemplates() {
	for name, parts := range unions {
		var m any
		for _, p := range parts {
			m = merge(m, templates[p])
		}
		templates[name] = m
	}
}

// merge unions two recorded values: object keys of both, a value where
// the other is null.
func merge(a, b any) any {
	switch av := a.(type) {
	case nil:
		return deepCopy(b)
	case map[string]any:
		bv, ok := b.(map[string]any)
		if !ok {
			return a
		}
		for k, x := range bv {
			av[k] = merge(av[k], x)
		}
		return av
	case []any:
		bv, ok := b.([]any)
		if !ok || len(bv) == 0 {
			return a
		}
		if len(av) == 0 {
			return deepCopy(bv)
		}
		av[0] = merge(av[0], bv[0])
		return av
	}
	return a
}

// zero is the zero value of a recorded value's JSON type; null for
// objects and lists.
func zero(v any) any {
	switch v.(type) {
	case string:
		return ""
	case json.Number:
		return json.Number("0")
	case bool:
		return false
	}
	return nil
}

func decodeGeneric(b []byte) any {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		panic(err)
	}
	return v
}

func toGeneric(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return decodeGeneric(b)
}

func deepCopy(v any) any {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, x := range v {
			m[k] = deepCopy(x)
		}
		return m
	case []any:
		l := make([]any, len(v))
		for i, x := range v {
			l[i] = deepCopy(x)
		}
		return l
	}
	return v
}

// dataKeys are objects whose keys are data (task names, group names, meta
// keys), not field names: their keys come from the double's state and each
// value is conformed to the template's first value.
var dataKeys = map[string]bool{
	"Meta": true, "Config": true, "Env": true, "Attributes": true, "Links": true,
	"TaskStates": true, "DesiredTGUpdates": true, "Drivers": true, "HostVolumes": true,
	"HostNetworks": true, "Items": true, "TaskGroups": true, "Summary": true,
	"FailedTGAllocs": true, "QueuedAllocations": true, "Tasks": true, "TaskLifecycles": true,
	"Volumes": true, "Details": true, "ClassFiltered": true, "ConstraintFiltered": true,
	"ClassExhausted": true, "DimensionExhausted": true, "QuotaExhausted": true, "ScoreMetaData": false,
	"Plugins": true, "CSIControllerPlugins": true, "CSINodePlugins": true, "Children": false,
	"Diffs": false, "PlacedCanaries": false, "Stats": true, "stats": true, "Capabilities": false,
	"Annotations": false, "Job": false, "Objects": false, "Checks": false, "Updates": true,
	"Parameters": true, "Context": true, "Secrets": true, "MountOptions": false,
}

var (
	vocabOnce sync.Once
	vocab     map[string]bool
)

// knownKey reports whether a real Nomad v1.6 sends key anywhere in the
// recorded templates. The api structs are newer than 1.6 and have fields
// (Consul.Cluster, DesiredTransition.MigrateDisablePlacement...) that
// Nomad 1.6 never sends; the double drops them.
func knownKey(k string) bool {
	vocabOnce.Do(func() {
		template("job") // load
		vocab = map[string]bool{}
		var walk func(any)
		walk = func(x any) {
			switch x := x.(type) {
			case map[string]any:
				for k, e := range x {
					vocab[k] = true
					walk(e)
				}
			case []any:
				for _, e := range x {
					walk(e)
				}
			}
		}
		for _, t := range templates {
			walk(t)
		}
	})
	return vocab[k]
}

// prune drops keys Nomad 1.6 never sends from a value that has no
// template (objects keyed by data keep their keys).
func prune(v any, key string) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			if dataKeys[key] {
				out[k] = prune(e, "")
			} else if knownKey(k) {
				out[k] = prune(e, k)
			}
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = prune(e, "")
		}
		return out
	}
	return v
}

// conform reshapes v (the double's value) to tmpl (a recorded value): objects
// get the template's keys (missing ones their zero value) plus set fields
// Nomad sends in other states; lists conform each element
// to the template's first element; scalars and nulls are the double's.
func conform(v, tmpl any, key string) any {
	switch t := tmpl.(type) {
	case map[string]any:
		m, ok := v.(map[string]any)
		if !ok {
			return v
		}
		if dataKeys[key] {
			// Conform each value to the template's value of the same
			// key, or to any template value when they all are objects
			// (task states, group summaries); else keep it.
			var first any
			homogeneous := true
			for _, x := range t {
				if _, ok := x.(map[string]any); !ok {
					homogeneous = false
				}
				first = x
			}
			out := make(map[string]any, len(m))
			for k, x := range m {
				switch tx, ok := t[k]; {
				case ok:
					out[k] = conform(x, tx, "")
				case homogeneous && first != nil:
					out[k] = conform(x, first, "")
				default:
					out[k] = prune(x, "")
				}
			}
			return out
		}
		if len(t) == 0 {
			// Nomad omits unset fields here (omitempty): keep the
			// double's set ones.
			out := map[string]any{}
			for k, x := range m {
				if x != nil && knownKey(k) {
					out[k] = prune(x, k)
				}
			}
			return out
		}
		out := make(map[string]any, len(t))
		for k, tx := range t {
			if x, ok := m[k]; ok {
				out[k] = conform(x, tx, k)
			} else {
				// A field the api structs lack: its zero value.
				out[k] = zero(tx)
			}
		}
		// Fields Nomad omits when empty (omitempty) are absent from a
		// template recorded in a state where they were empty: keep the
		// double's when set.
		for k, x := range m {
			if _, ok := t[k]; !ok && !isEmpty(x) && knownKey(k) {
				out[k] = prune(x, k)
			}
		}
		return out
	case []any:
		l, ok := v.([]any)
		if !ok || len(t) == 0 {
			return v
		}
		out := make([]any, len(l))
		for i, x := range l {
			out[i] = conform(x, t[0], "")
		}
		return out
	}
	if tmpl == nil {
		return prune(v, key)
	}
	if s, ok := v.(string); ok && s == "0001-01-01T00:00:00Z" {
		// Zero times of the api structs; Nomad sends null for never-set times.
		if tmpl == nil {
			return nil
		}
	}
	return v
}

// shaped renders v (an api struct or generic value) in the shape of the
// recorded template name.
func shaped(v any, name string) any {
	if v == nil {
		return nil
	}
	return conform(toGeneric(v), template(name), "")
}

// shapedAt is shaped against a sub-template, e.g. the first element of a
// recorded list.
func shapedAt(v any, tmpl any, key string) any {
	return conform(toGeneric(v), tmpl, key)
}

func isEmpty(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case string:
		return v == ""
	case bool:
		return !v
	case json.Number:
		return v.String() == "0"
	case map[string]any:
		for _, x := range v {
			if !isEmpty(x) {
				return false
			}
		}
		return true
	case []any:
		return len(v) == 0
	}
	return false
}
