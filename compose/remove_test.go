package compose

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v4"
)

// stack has three services with head comments, an inner comment and
// blank-line separators, between other top-level keys.
const stack = `name: app
services:
  # a head
  a:
    image: a

  # b head
  b:
    image: b
    # b inner comment
    environment:
      - X=1

  # c head
  c:
    image: c

volumes:
  data:
# end of file
`

// TestRemoveService holds RemoveService to the exact bytes it writes.
func TestRemoveService(t *testing.T) {
	example, err := os.ReadFile(filepath.Join("..", "examples", "overseerr", "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	golden, err := os.ReadFile(filepath.Join("testdata", "remove", "overseerr.yml"))
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name, src, service, want string
	}{
		{
			// The comment above sonarr mentions overseerr but is sonarr's:
			// it stays, as do the header and the overseerr volume.
			name: "example", src: string(example), service: "overseerr", want: string(golden),
		},
		{
			name: "first", src: stack, service: "a",
			want: `name: app
services:
  # b head
  b:
    image: b
    # b inner comment
    environment:
      - X=1

  # c head
  c:
    image: c

volumes:
  data:
# end of file
`,
		},
		{
			name: "middle", src: stack, service: "b",
			want: `name: app
services:
  # a head
  a:
    image: a

  # c head
  c:
    image: c

volumes:
  data:
# end of file
`,
		},
		{
			// The last service takes the blank line before it, so the one
			// before volumes stays.
			name: "last", src: stack, service: "c",
			want: `name: app
services:
  # a head
  a:
    image: a

  # b head
  b:
    image: b
    # b inner comment
    environment:
      - X=1

volumes:
  data:
# end of file
`,
		},
		{
			name: "crlf", src: crlf(stack), service: "b",
			want: crlf(`name: app
services:
  # a head
  a:
    image: a

  # c head
  c:
    image: c

volumes:
  data:
# end of file
`),
		},
		{
			// Comments after the service that are not indented into it
			// stay, blank lines around them too; the indented one goes.
			name: "trailing comments", service: "b",
			src: `services:
  a:
    image: a
  b:
    image: b
    # ports: ["80:80"]

# TODO: more services
# (one day)
`,
			want: `services:
  a:
    image: a

# TODO: more services
# (one day)
`,
		},
		{
			// A comment above the service at another indentation, or
			// separated from it by a blank line, is not its own.
			name: "other comments above", service: "b",
			src: `services:
  a:
    image: a

  # about what follows

# section: b
  # b head
  b:
    image: b

  c:
    image: c
`,
			want: `services:
  a:
    image: a

  # about what follows

# section: b
  c:
    image: c
`,
		},
		{
			name: "single quoted", service: "overseerr",
			src:  "services:\n  'overseerr':\n    image: o\n\n  sonarr:\n    image: s\n",
			want: "services:\n  sonarr:\n    image: s\n",
		},
		{
			name: "double quoted", service: "overseerr",
			src:  "services:\n  sonarr:\n    image: s\n  \"overseerr\":\n    image: o\n",
			want: "services:\n  sonarr:\n    image: s\n",
		},
		{
			name: "four spaces", service: "b",
			src: `services:
    a:
        image: a
    # b head
    b:
        image: b
        ports:
            - "80:80"
    c:
        image: c
`,
			want: `services:
    a:
        image: a
    c:
        image: c
`,
		},
		{
			// Lines of a block scalar that look like comments or keys are
			// the service's.
			name: "block scalar", service: "b",
			src: `services:
  a:
    image: a
  b:
    image: b
    command: |
      # not a comment
      c:

  c:
    image: c
`,
			want: `services:
  a:
    image: a
  c:
    image: c
`,
		},
		{
			name: "flow value", service: "b",
			src:  "services:\n  a: {image: a}\n  b: {image: b,\n    ports: [\"80:80\"]}\n  c: {image: c}\n",
			want: "services:\n  a: {image: a}\n  c: {image: c}\n",
		},
		{
			// Aliases in the service to anchors outside it go with it;
			// the anchor stays for the others.
			name: "alias to outside anchor", service: "b",
			src: `x-common: &common
  restart: unless-stopped
services:
  a:
    <<: *common
    image: a
  b:
    <<: *common
    image: b
`,
			want: `x-common: &common
  restart: unless-stopped
services:
  a:
    <<: *common
    image: a
`,
		},
		{
			name: "no final newline", service: "b",
			src:  "services:\n  a:\n    image: a\n\n  b:\n    image: b",
			want: "services:\n  a:\n    image: a\n",
		},
		{
			// "container:b" is a container, not the service; a depends on
			// c, not on b.
			name: "unrelated references", service: "b",
			src: `services:
  a:
    depends_on: [c]
    volumes_from: ["container:b"]
  b:
    image: b
  c:
    image: c
`,
			want: `services:
  a:
    depends_on: [c]
    volumes_from: ["container:b"]
  c:
    image: c
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := RemoveService([]byte(tt.src), tt.service)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

// TestRemoveServiceRefuses proves RemoveService returns an error, and no
// file, for what it cannot remove safely.
func TestRemoveServiceRefuses(t *testing.T) {
	tests := []struct {
		name, src, service string
		wantErr            string   // in the message
		by                 []string // for a *ReferencedError
	}{
		{
			name: "depends_on list", service: "b", by: []string{"a (depends_on)"},
			src: "services:\n  a:\n    depends_on: [b]\n  b:\n    image: b\n",
		},
		{
			name: "depends_on mapping", service: "b", by: []string{"a (depends_on)"},
			src: "services:\n  a:\n    depends_on:\n      b:\n        condition: service_healthy\n  b:\n    image: b\n",
		},
		{
			name: "links", service: "b", by: []string{"a (links)", "c (links)"},
			src: "services:\n  a:\n    links: [b]\n  b:\n    image: b\n  c:\n    links: [\"b:db\"]\n",
		},
		{
			name: "network_mode", service: "b", by: []string{"a (network_mode)"},
			src: "services:\n  a:\n    network_mode: service:b\n  b:\n    image: b\n",
		},
		{
			name: "ipc and pid", service: "b", by: []string{"a (ipc)", "c (pid)"},
			src: "services:\n  a:\n    ipc: service:b\n  b:\n    image: b\n  c:\n    pid: service:b\n",
		},
		{
			name: "volumes_from", service: "b", by: []string{"a (volumes_from)", "c (volumes_from)"},
			src: "services:\n  a:\n    volumes_from: [\"b:ro\"]\n  b:\n    image: b\n  c:\n    volumes_from: [\"service:b\"]\n",
		},
		{
			name: "extends", service: "b", by: []string{"a (extends)"},
			src: "services:\n  a:\n    extends: {service: b}\n  b:\n    image: b\n",
		},
		{
			name: "several fields", service: "b", by: []string{"a (depends_on)", "a (network_mode)"},
			src: "services:\n  a:\n    depends_on: [b]\n    network_mode: \"service:b\"\n  b:\n    image: b\n",
		},
		{
			name: "anchor used elsewhere", service: "b", wantErr: "anchor &env",
			src: "services:\n  b:\n    environment: &env\n      TZ: UTC\n  c:\n    environment: *env\n",
		},
		{
			name: "flow services", service: "b", wantErr: "flow style",
			src: "services: {a: {image: a}, b: {image: b}}\n",
		},
		{
			name: "flow file", service: "b", wantErr: "flow style",
			src: "{services: {a: {image: a}, b: {image: b}}}\n",
		},
		{
			name: "only service", service: "b", wantErr: "only service",
			src: "services:\n  b:\n    image: b\n",
		},
		{
			name: "two documents", service: "b", wantErr: "more than one YAML document",
			src: "services:\n  a: {}\n  b: {}\n---\nservices:\n  c: {}\n",
		},
		{
			name: "invalid", service: "b", wantErr: "parse",
			src: "services:\n  b: [\n",
		},
		{
			name: "duplicate service", service: "b", wantErr: "decode",
			src: "services:\n  a: {}\n  b: {}\n  b: {}\n",
		},
		{
			name: "bare CR", service: "b", wantErr: "bare CR",
			src: "services:\r  a: {}\r  b: {}\r",
		},
		{
			// The merge brings b back: the check after the cut catches it.
			name: "merged services", service: "b", wantErr: "change more than the service",
			src: "x: &all\n  b: {image: old}\nservices:\n  <<: *all\n  a: {}\n  b: {image: b}\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := RemoveService([]byte(tt.src), tt.service)
			if err == nil {
				t.Fatalf("no error; got:\n%s", got)
			}
			if got != nil {
				t.Errorf("got a file with the error:\n%s", got)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want it to mention %q", err, tt.wantErr)
			}
			var ref *ReferencedError
			if tt.by != nil && (!errors.As(err, &ref) || !slices.Equal(ref.By, tt.by)) {
				t.Errorf("err = %v, want *ReferencedError by %q", err, tt.by)
			}
		})
	}
}

// TestRemoveServiceNotFound proves a missing service is reported with the
// services that are present.
func TestRemoveServiceNotFound(t *testing.T) {
	for _, tt := range []struct {
		src, service string
		present      []string
	}{
		{src: stack, service: "overseerr", present: []string{"a", "b", "c"}},
		{src: "services:\n  'c': {}\n  \"a\": {}\n", service: "b", present: []string{"a", "c"}},
		{src: "name: empty\n", service: "b", present: []string{}},
		{src: "", service: "b", present: []string{}},
	} {
		got, err := RemoveService([]byte(tt.src), tt.service)
		var nf *ServiceNotFoundError
		if !errors.As(err, &nf) || nf.Service != tt.service || !slices.Equal(nf.Present, tt.present) || got != nil {
			t.Errorf("RemoveService(%q, %q) = %q, %v; want *ServiceNotFoundError with present %q", tt.src, tt.service, got, err, tt.present)
		}
	}
}

// FuzzRemoveService proves that whatever RemoveService returns without an
// error is src with one run of bytes cut out, parses, lacks the service,
// and has every other service and top-level key as src has them.
func FuzzRemoveService(f *testing.F) {
	example, err := os.ReadFile(filepath.Join("..", "examples", "overseerr", "docker-compose.yml"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example, "overseerr")
	f.Add(example, "radarr")
	for _, s := range []string{"a", "b", "c"} {
		f.Add([]byte(stack), s)
		f.Add([]byte(crlf(stack)), s)
	}
	f.Add([]byte("services:\n  a:\n    command: |\n      x\n  b: {image: b}\n"), "a")
	f.Add([]byte("x: &x {a: 1}\nservices:\n  a: *x\n  b:\n    <<: *x\n"), "b")

	f.Fuzz(func(t *testing.T, src []byte, service string) {
		out, err := RemoveService(src, service)
		if err != nil {
			return
		}
		// out is src less one contiguous run: the rest of out after the
		// common prefix is an end of src.
		p := 0
		for p < len(out) && out[p] == src[p] {
			p++
		}
		if len(out) >= len(src) || !bytes.HasSuffix(src, out[p:]) {
			t.Fatalf("output is not the input with one run cut out:\n%q\n->\n%q", src, out)
		}

		var before, after struct {
			Services map[string]any `yaml:"services"`
			Rest     map[string]any `yaml:",inline"`
		}
		if err := yaml.Unmarshal(src, &before); err != nil {
			t.Fatalf("input accepted but does not decode: %v", err)
		}
		if err := yaml.Unmarshal(out, &after); err != nil {
			t.Fatalf("output does not decode: %v\n%q", err, out)
		}
		if _, ok := after.Services[service]; ok {
			t.Fatalf("output still has %q:\n%q", service, out)
		}
		delete(before.Services, service)
		if !reflect.DeepEqual(before, after) {
			t.Fatalf("output changed more than %q:\n%q\n->\n%q", service, src, out)
		}
	})
}
