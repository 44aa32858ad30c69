package compose

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v4"
)

// ReferencedError is returned by RemoveService when other services of the
// file refer to the service: removing it would leave them broken. By lists
// each reference as "<service> (<field>)", sorted.
type ReferencedError struct {
	Service string
	By      []string
}

func (e *ReferencedError) Error() string {
	return fmt.Sprintf("service %q is referenced by %s: removing it would break them; remove those references first",
		e.Service, strings.Join(e.By, ", "))
}

// RemoveService returns the compose file src without service: the entry is
// cut from the top-level services mapping, and every other byte is kept
// (other services, comments, blank lines, anchors, quoting, indentation,
// CRLF line endings). This is what `ferry finish` writes back once the
// service runs on Nomad.
//
// Lines go with the service when they belong to it: the comment block
// directly above its key (contiguous comment lines at the key's
// indentation), its own lines, and the blank lines that separated it from
// the next service (or, for the last service, from the previous one), so
// that one separator is left where there were two. Named volumes and
// networks stay even if only this service used them: ferry never deletes
// data.
//
// RemoveService refuses rather than guesses. Errors:
//   - *ServiceNotFoundError, listing the services present; its File is
//     "compose file", for the caller to replace with the path;
//   - *ReferencedError, when other services refer to it by depends_on,
//     links, extends, volumes_from, or network_mode, ipc or pid
//     "service:<name>";
//   - a plain error for invalid YAML, and for a file it cannot edit line
//     by line: flow-style services, an anchor in the service aliased
//     elsewhere, more than one YAML document, bare CR line breaks; and for
//     the only service of the file, whose removal would leave a compose
//     file with no services.
//
// A nil error means the result was re-parsed and decodes to exactly src's
// content minus the service.
func RemoveService(src []byte, service string) ([]byte, error) {
	root, before, err := decode(src)
	if err != nil {
		return nil, fmt.Errorf("remove service %q: %w", service, err)
	}
	if _, ok := before.Services[service]; !ok {
		return nil, &ServiceNotFoundError{File: "compose file", Service: service, Present: names(before.Services)}
	}
	if by := references(before.Services, service); len(by) > 0 {
		return nil, &ReferencedError{Service: service, By: by}
	}
	out, err := remove(src, root, before, service)
	if err != nil {
		return nil, fmt.Errorf("remove service %q: %w", service, err)
	}
	return out, nil
}

// decode returns the root node of src (nil for an empty file) and its
// content.
func decode(src []byte) (*yaml.Node, composeFile, error) {
	// Node lines count YAML line breaks, the cut counts "\n": they agree
	// unless the file has one of the other breaks YAML knows.
	if bytes.Count(src, []byte("\r")) != bytes.Count(src, []byte("\r\n")) {
		return nil, composeFile{}, errors.New("the file has bare CR line breaks; convert them to LF or CRLF")
	}
	for _, br := range []string{"\u0085", "\u2028", "\u2029"} {
		if bytes.Contains(src, []byte(br)) {
			return nil, composeFile{}, fmt.Errorf("the file has a %q, which YAML counts as a line break; remove it first", br)
		}
	}
	root, err := parse(src)
	if err != nil {
		return nil, composeFile{}, err
	}
	var f composeFile
	if err := yaml.Unmarshal(src, &f); err != nil {
		return nil, composeFile{}, fmt.Errorf("decode: %w", err)
	}
	return root, f, nil
}

// remove cuts service, which before has along with other services, from
// src and proves the cut.
func remove(src []byte, root *yaml.Node, before composeFile, service string) ([]byte, error) {
	if len(before.Services) == 1 {
		return nil, errors.New("it is the only service of the file; remove the file, or the stack, instead")
	}
	e, err := locate(root, service)
	if err != nil {
		return nil, err
	}
	if aliased := aliasedOutside(root, e.key, e.value); len(aliased) > 0 {
		return nil, fmt.Errorf("anchor %s is defined in the service and used elsewhere in the file; define it outside the service first",
			strings.Join(aliased, ", "))
	}
	out, err := cut(src, e)
	if err != nil {
		return nil, err
	}

	// The cut is textual: prove it removed the service and nothing else.
	var after composeFile
	if err := yaml.Unmarshal(out, &after); err != nil {
		return nil, fmt.Errorf("cutting its lines would leave invalid YAML: %w", err)
	}
	delete(before.Services, service)
	if !reflect.DeepEqual(before, after) {
		return nil, errors.New("cutting its lines would change more than the service (merge keys?)")
	}
	return out, nil
}

// composeFile is a compose file decoded for comparison: the services by
// name, and every other top-level key.
type composeFile struct {
	Services map[string]any `yaml:"services"`
	Rest     map[string]any `yaml:",inline"`
}

// parse returns the root node of src's only document, nil for an empty
// file.
func parse(src []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(src))
	var doc yaml.Node
	if err := dec.Decode(&doc); err == io.EOF {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	var next yaml.Node
	if err := dec.Decode(&next); err != io.EOF {
		return nil, errors.New("the file has more than one YAML document")
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	return doc.Content[0], nil
}

// entry is the service's key and value nodes in the services mapping, and
// the line of the key that follows it in the file (0 for none): the next
// service, or else the next top-level key.
type entry struct {
	key, value *yaml.Node
	next       int
	last       bool // the service is the last in the services mapping
}

// locate finds service in the block-style services mapping of root.
func locate(root *yaml.Node, service string) (entry, error) {
	if root == nil || root.Kind != yaml.MappingNode {
		return entry{}, errors.New("the file is not a YAML mapping")
	}
	if root.Style&yaml.FlowStyle != 0 {
		return entry{}, errors.New("the file is written in flow style ({...}); only block style can be edited in place")
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value != "services" {
			continue
		}
		services := root.Content[i+1]
		if services.Kind != yaml.MappingNode {
			return entry{}, errors.New("services is not written as a mapping in the file (an alias?)")
		}
		if services.Style&yaml.FlowStyle != 0 {
			return entry{}, errors.New("services is written in flow style ({...}); only block style can be edited in place: rewrite it in block style first")
		}
		for j := 0; j+1 < len(services.Content); j += 2 {
			if services.Content[j].Value != service {
				continue
			}
			e := entry{key: services.Content[j], value: services.Content[j+1]}
			switch {
			case j+2 < len(services.Content):
				e.next = services.Content[j+2].Line
			case i+2 < len(root.Content):
				e.next, e.last = root.Content[i+2].Line, true
			default:
				e.last = true
			}
			return e, nil
		}
	}
	// Decoding found it, so it comes from a merge key.
	return entry{}, errors.New("the service is not written under services: (merged from an anchor?)")
}

// aliasedOutside returns the anchors defined in the key and value nodes
// that aliases elsewhere in root use: they would dangle without them.
func aliasedOutside(root, key, value *yaml.Node) []string {
	inside := map[*yaml.Node]bool{}
	for _, n := range []*yaml.Node{key, value} {
		walk(n, func(n *yaml.Node) bool {
			if n.Anchor != "" {
				inside[n] = true
			}
			return true
		})
	}
	if len(inside) == 0 {
		return nil
	}
	var aliased []string
	walk(root, func(n *yaml.Node) bool {
		if n == key || n == value {
			return false
		}
		if n.Kind == yaml.AliasNode && inside[n.Alias] && !slices.Contains(aliased, "&"+n.Alias.Anchor) {
			aliased = append(aliased, "&"+n.Alias.Anchor)
		}
		return true
	})
	return aliased
}

// walk calls visit on n and, while visit returns true, on its descendants.
// It does not follow aliases.
func walk(n *yaml.Node, visit func(*yaml.Node) bool) {
	if !visit(n) {
		return
	}
	for _, c := range n.Content {
		walk(c, visit)
	}
}

// cut removes e's lines from src: from its key to the last line before
// the next key (e.next) that is indented deeper than the key. Comments
// after that line at or left of the key's indentation belong to what
// follows and stay. The comment block directly above the key and the
// blank lines on one side go too (see RemoveService).
func cut(src []byte, e entry) ([]byte, error) {
	lines := bytes.SplitAfter(src, []byte("\n"))
	if len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1] // src ends with a line break
	}
	k := e.key.Line - 1 // index of the key's line
	indent := e.key.Column - 1
	if k < 0 || k >= len(lines) || blank(lines[k]) || indentOf(lines[k]) != indent {
		return nil, fmt.Errorf("line %d does not start with the service's key", e.key.Line)
	}
	end := len(lines)
	if e.next > 0 {
		end = e.next - 1
	}

	last := k
	for i := k + 1; i < end; i++ {
		if !blank(lines[i]) && indentOf(lines[i]) > indent {
			last = i
		}
	}
	start, stop := k, last+1
	for start > 0 && comment(lines[start-1]) && indentOf(lines[start-1]) == indent {
		start--
	}
	if e.last {
		for start > 0 && blank(lines[start-1]) {
			start--
		}
	} else {
		for stop < end && blank(lines[stop]) {
			stop++
		}
	}
	return bytes.Join(slices.Concat(lines[:start], lines[stop:]), nil), nil
}

func blank(line []byte) bool { return len(bytes.TrimSpace(line)) == 0 }

func comment(line []byte) bool { return bytes.HasPrefix(bytes.TrimLeft(line, " \t"), []byte("#")) }

func indentOf(line []byte) int { return len(line) - len(bytes.TrimLeft(line, " ")) }

// references returns how the other services refer to name, as
// "<service> (<field>)", sorted. The fields are those by which compose
// ties one service to another.
func references(services map[string]any, name string) []string {
	var by []string
	for other, v := range services {
		if other == name {
			continue
		}
		svc, _ := v.(map[string]any)
		for _, field := range refersBy(svc, name) {
			by = append(by, fmt.Sprintf("%s (%s)", other, field))
		}
	}
	slices.Sort(by)
	return by
}

// refersBy returns the fields of svc that refer to the service name.
func refersBy(svc map[string]any, name string) []string {
	var fields []string
	// depends_on: [name] or {name: {condition: ...}}.
	if slices.Contains(entries(svc["depends_on"]), name) {
		fields = append(fields, "depends_on")
	}
	// links: ["name", "name:alias"].
	if slices.ContainsFunc(entries(svc["links"]), func(l string) bool {
		target, _, _ := strings.Cut(l, ":")
		return target == name
	}) {
		fields = append(fields, "links")
	}
	// volumes_from: ["name", "name:ro", "service:name:rw"]; "container:x"
	// names a container, not a service.
	if slices.ContainsFunc(entries(svc["volumes_from"]), func(v string) bool {
		if strings.HasPrefix(v, "container:") {
			return false
		}
		target, _, _ := strings.Cut(strings.TrimPrefix(v, "service:"), ":")
		return target == name
	}) {
		fields = append(fields, "volumes_from")
	}
	for _, f := range []string{"network_mode", "ipc", "pid"} {
		if s, _ := svc[f].(string); s == "service:"+name {
			fields = append(fields, f)
		}
	}
	// extends: name, or {service: name} without a file (this file).
	switch x := svc["extends"].(type) {
	case string:
		if x == name {
			fields = append(fields, "extends")
		}
	case map[string]any:
		if s, _ := x["service"].(string); s == name && x["file"] == nil {
			fields = append(fields, "extends")
		}
	}
	return fields
}

// entries returns the items of a list or the keys of a mapping, as text.
func entries(v any) []string {
	var out []string
	switch v := v.(type) {
	case []any:
		for _, item := range v {
			out = append(out, fmt.Sprint(item))
		}
	case map[string]any:
		for k := range v {
			out = append(out, k)
		}
	}
	return out
}

// names returns the keys of services, sorted. (A loop: the package's tests
// declare a func named maps.)
func names(services map[string]any) []string {
	present := make([]string, 0, len(services))
	for name := range services {
		present = append(present, name)
	}
	slices.Sort(present)
	return present
}
