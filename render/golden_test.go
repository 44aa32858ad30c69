package render_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/config"
	"github.com/ferry-migrate/ferry/render"
)

var update = flag.Bool("update", false, "rewrite the golden files under examples/*/out and render/testdata/*/out")

// goldenCase is a spec and the directory holding its rendered output.
type goldenCase struct {
	name string
	spec string // ferry.hcl
	out  string // golden output directory
}

// goldenCases are the examples (examples/<name>/ferry.hcl -> out/) and the
// extra cases in testdata (testdata/<name>.hcl -> testdata/<name>/out/).
func goldenCases(t testing.TB) []goldenCase {
	t.Helper()
	var cs []goldenCase
	specs, _ := filepath.Glob("../examples/*/ferry.hcl")
	for _, spec := range specs {
		dir := filepath.Dir(spec)
		cs = append(cs, goldenCase{"examples/" + filepath.Base(dir), spec, filepath.Join(dir, "out")})
	}
	extra, _ := filepath.Glob("testdata/*.hcl")
	for _, spec := range extra {
		name := strings.TrimSuffix(filepath.Base(spec), ".hcl")
		cs = append(cs, goldenCase{"testdata/" + name, spec, filepath.Join("testdata", name, "out")})
	}
	if len(cs) == 0 {
		t.Fatal("no specs found under ../examples or testdata")
	}
	return cs
}

func load(t testing.TB, path string) *ferry.Service {
	t.Helper()
	s, err := config.Load(path)
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	return s
}

// TestGolden renders every example and testdata spec into a fresh
// directory, as `ferry render -o DIR` does, and compares every file with the
// golden output, in both directions (no file missing, none extra).
func TestGolden(t *testing.T) {
	for _, c := range goldenCases(t) {
		t.Run(c.name, func(t *testing.T) {
			s := load(t, c.spec)
			if *update {
				if err := os.RemoveAll(c.out); err != nil {
					t.Fatal(err)
				}
				if _, err := render.RenderDir(context.Background(), c.out, s); err != nil {
					t.Fatal(err)
				}
			}
			dir := t.TempDir()
			got, err := render.RenderDir(context.Background(), dir, s)
			if err != nil {
				t.Fatal(err)
			}
			want := readTree(t, c.out)
			if !slices.Equal(got.Paths(), want.Paths()) {
				t.Fatalf("rendered files %v, golden files %v (run go test ./render -update)", got.Paths(), want.Paths())
			}
			for _, p := range got.Paths() {
				if !bytes.Equal(got[p], want[p]) {
					t.Errorf("%s differs from %s (run go test ./render -update to accept):\n%s", p, filepath.Join(c.out, p), firstDiff(want[p], got[p]))
				}
			}
		})
	}
}

// TestRenderTwiceChangesNothing renders into the same directory twice: the
// second run must leave every byte as the first wrote it, the root
// main.tf included.
func TestRenderTwiceChangesNothing(t *testing.T) {
	for _, c := range goldenCases(t) {
		t.Run(c.name, func(t *testing.T) {
			s := load(t, c.spec)
			dir := t.TempDir()
			if _, err := render.RenderDir(context.Background(), dir, s); err != nil {
				t.Fatal(err)
			}
			first := readTree(t, dir)
			if _, err := render.RenderDir(context.Background(), dir, s); err != nil {
				t.Fatal(err)
			}
			second := readTree(t, dir)
			if !slices.Equal(first.Paths(), second.Paths()) {
				t.Fatalf("second render changed the file set: %v -> %v", first.Paths(), second.Paths())
			}
			for _, p := range first.Paths() {
				if !bytes.Equal(first[p], second[p]) {
					t.Errorf("%s changed on the second render:\n%s", p, firstDiff(first[p], second[p]))
				}
			}
		})
	}
}

func readTree(t testing.TB, root string) render.Files {
	t.Helper()
	files := render.Files{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		files[filepath.ToSlash(rel)] = b
		return nil
	})
	if err != nil {
		t.Fatalf("read %s: %v", root, err)
	}
	return files
}

// firstDiff shows the first differing line of two texts.
func firstDiff(want, got []byte) string {
	w, g := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d:\n want: %s\n  got: %s", i+1, wl, gl)
		}
	}
	return "(same lines, different bytes)"
}
