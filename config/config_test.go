package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/config"
)

const minimal = `service "overseerr" {
  image = "sctx/overseerr:1.34.0"
  port  = 5055
  config_dir = "/app/config"
  config_files = ["/app/config/settings.json"]

  source {
    service = "overseerr"
  }

  database "db" {
    path = "/app/config/db/db.sqlite3"
  }
}
`

func TestParseAppliesDefaults(t *testing.T) {
	s, err := config.Parse([]byte(minimal), "ferry.hcl")
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"sync interval", s.Litestream.SyncInterval, time.Second},
		{"litestream image", s.Litestream.Image, config.DefaultLitestreamImage},
		{"volume", s.Storage.VolumeID, "glusterfs_overseerr_config"},
		{"bucket", s.ObjectStore.Bucket, "overseerr-litestream"},
		{"vault path", s.Secrets.Path, "nomad/default/overseerr"},
		{"replica path", s.Databases[0].ReplicaPath, "db"},
		{"mesh", s.Mesh.Mode, ferry.MeshTransparentProxy},
		{"hold", s.Hold, 24 * time.Hour},
		{"main memory_max", s.Resources.Main.MemoryMaxMB, 512},
		{"path style", s.ObjectStore.PathStyle, true},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	s, err := config.Parse([]byte(minimal), "ferry.hcl")
	if err != nil {
		t.Fatal(err)
	}
	s.Env = map[string]string{"TZ": "Europe/London", "WEIRD": "a\"b ${x} %{y} `z` }} \n end"}
	s.Ingress = ferry.Ingress{Host: "overseerr.example.org", Entrypoint: "websecure", Tags: []string{"x=${y}"}}
	out := config.Encode(s, "written by a test")
	back, err := config.Parse(out, "ferry.hcl")
	if err != nil {
		t.Fatalf("parse encoded: %v\n%s", err, out)
	}
	if !reflect.DeepEqual(s, back) {
		t.Errorf("round trip changed the spec:\n got %+v\nwant %+v\n%s", back, s, out)
	}
	if !strings.HasPrefix(string(out), "# written by a test\n") {
		t.Errorf("header comment missing:\n%s", out)
	}
}

func TestProblemsNameFileLineColumnAndField(t *testing.T) {
	tests := []struct {
		name, edit, want string
	}{
		{"unknown key", `  colour = "blue"` + "\n", `ferry.hcl:2:3: Unsupported argument`},
		{"bad bucket", `  object_store { bucket = "Bad_Bucket" }` + "\n", `ferry.hcl:2:18: object_store.bucket: "Bad_Bucket" is not a valid bucket name`},
		{"bad duration", `  litestream { sync_interval = "soon" }` + "\n", `ferry.hcl:2:16: litestream.sync_interval: invalid duration "soon"`},
		{"relative db path", `  database "blobs" { path = "db/blobs.db" }` + "\n", `ferry.hcl:2:22: database.blobs.path:`},
		{"shell in path", `  disposable = ["/app/$(rm -rf /)"]` + "\n", `ferry.hcl:2:3: disposable[0]:`},
		{"floating image", `  litestream { image = "litestream/litestream:0.5" }` + "\n", `litestream.image: "litestream/litestream:0.5" is not pinned`},
		{"injected bucket", `  object_store { bucket = "a\"}" }` + "\n", `object_store.bucket:`},
		{"unknown resources task", `  resources "sidecar" { cpu = 1 }` + "\n", `ferry.hcl:2:3: resources.sidecar: unknown task "sidecar"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := strings.Replace(minimal, "\n", "\n"+tt.edit, 1)
			_, err := config.Parse([]byte(src), "ferry.hcl")
			var cerr *config.Error
			if !errors.As(err, &cerr) {
				t.Fatalf("got %v, want *config.Error", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error does not contain %q:\n%v", tt.want, err)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := config.Load(filepath.Join(t.TempDir(), "nope.hcl"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v, want not-exist", err)
	}
}

func TestMissingServiceBlock(t *testing.T) {
	_, err := config.Parse([]byte("# empty\n"), "ferry.hcl")
	if err == nil || !strings.Contains(err.Error(), `service`) {
		t.Fatalf("got %v, want an error about the missing service block", err)
	}
}

func TestParseSizeAndDuration(t *testing.T) {
	for in, want := range map[string]int64{"100MiB": 100 << 20, "1GiB": 1 << 30, "500MB": 500e6, "7B": 7} {
		got, err := config.ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
		if back, _ := config.ParseSize(config.FormatSize(got)); back != got {
			t.Errorf("FormatSize(%d) = %q does not read back", got, config.FormatSize(got))
		}
	}
	for _, bad := range []string{"", "-1MiB", "lots", "1.5GiB"} {
		if _, err := config.ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) accepted", bad)
		}
	}
	for _, d := range []time.Duration{time.Second, 90 * time.Second, 5 * time.Minute, 72 * time.Hour, 1500 * time.Millisecond} {
		back, err := config.ParseDuration(config.FormatDuration(d))
		if err != nil || back != d {
			t.Errorf("FormatDuration(%v) = %q reads back as %v, %v", d, config.FormatDuration(d), back, err)
		}
	}
	if d, _ := config.ParseDuration("7d"); d != 7*24*time.Hour {
		t.Errorf("7d = %v", d)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal))
	for _, p := range examples(f) {
		src, err := os.ReadFile(p)
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
		// Whatever parses must validate and survive a round trip.
		if err := s.Validate(); err != nil {
			t.Fatalf("parsed spec does not validate: %v", err)
		}
		back, err := config.Parse(config.Encode(s), "fuzz.hcl")
		if err != nil {
			t.Fatalf("encoded spec does not parse: %v", err)
		}
		if !reflect.DeepEqual(s, back) {
			t.Fatalf("round trip changed the spec")
		}
	})
}

func examples(t testing.TB) []string {
	ps, _ := filepath.Glob("../examples/*/ferry.hcl")
	return ps
}
