package compose

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/config"
)

var update = flag.Bool("update", false, "rewrite examples/*/ferry.hcl from Init")

// examples are the specs in ../examples and how `ferry init` makes each.
var examples = []struct {
	dir, service string
	opts         Options
}{
	{dir: "overseerr", service: "overseerr"},
	{dir: "media-server", service: "plex"},
	{dir: "plain", service: "radarr", opts: Options{
		Mesh:       ferry.MeshNone,
		Secrets:    ferry.SecretsNomad,
		HostVolume: "radarr-config",
		Endpoint:   "http://192.168.1.10:9000",
	}},
}

// TestExamples holds each examples/<name>/ferry.hcl to exactly what Init
// writes for it, and proves the file loads back into the same spec.
func TestExamples(t *testing.T) {
	for _, ex := range examples {
		t.Run(ex.dir, func(t *testing.T) {
			dir := filepath.Join("..", "examples", ex.dir)
			s, notes, err := InitWith(context.Background(), filepath.Join(dir, "docker-compose.yml"), ex.service, ex.opts)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Validate(); err != nil {
				t.Fatalf("the spec of a known app needs edits:\n%v", err)
			}
			got := config.Encode(s, Header(notes)...)
			golden := filepath.Join(dir, "ferry.hcl")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./compose -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from what Init writes (go test ./compose -update to accept):\n--- got\n%s", golden, got)
			}

			loaded, err := config.Load(golden)
			if err != nil {
				t.Fatalf("config.Load: %v", err)
			}
			if !reflect.DeepEqual(loaded, s) {
				t.Errorf("config.Load(%s) differs from Init's spec:\nloaded %+v\ninit   %+v", golden, loaded, s)
			}
		})
	}
}
