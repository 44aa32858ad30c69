package render_test

import (
	"bytes"
	"os"
	"testing"

	"github.com/ferry-migrate/ferry/config"
	"github.com/ferry-migrate/ferry/render"
)

// FuzzRender: any spec that validates renders to files that parse and are
// formatted, and renders identically twice.
func FuzzRender(f *testing.F) {
	for _, c := range goldenCases(f) {
		src, err := os.ReadFile(c.spec)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		s, err := config.Parse(src, "fuzz.hcl")
		if err != nil {
			return
		}
		a, err := render.Render(s)
		if err != nil {
			t.Fatalf("valid spec does not render: %v", err)
		}
		checkHCL(t, a)
		b, err := render.Render(s)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range a.Paths() {
			if !bytes.Equal(a[p], b[p]) {
				t.Fatalf("%s differs between two renders", p)
			}
		}
		if _, err := render.UpdateRootModule(nil, s); err != nil {
			t.Fatal(err)
		}
	})
}

// BenchmarkRender50 renders 50 services (the examples and testdata cases,
// round robin, each under its own name) with their root module entries.
func BenchmarkRender50(b *testing.B) {
	var specs [][]byte
	for _, c := range goldenCases(b) {
		src, err := os.ReadFile(c.spec)
		if err != nil {
			b.Fatal(err)
		}
		specs = append(specs, src)
	}
	for b.Loop() {
		var root []byte
		for i := range 50 {
			s, err := config.Parse(specs[i%len(specs)], "bench.hcl")
			if err != nil {
				b.Fatal(err)
			}
			s.Name = s.Name + "-" + string(rune('a'+i%26)) + string(rune('a'+i/26))
			if _, err := render.Render(s); err != nil {
				b.Fatal(err)
			}
			if root, err = render.UpdateRootModule(root, s); err != nil {
				b.Fatal(err)
			}
		}
	}
}
