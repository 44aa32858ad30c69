package compose

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/config"
)

// project writes a compose project into a temporary directory named
// "proj" and returns the compose file's path. files maps names to content
// (docker-compose.yml, .env, ...).
func project(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "proj")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "docker-compose.yml")
}

// one is a compose file with a single service "app".
func one(image, volume string, extra ...string) string {
	return "services:\n  app:\n    image: " + image + "\n    volumes:\n      - " + volume + "\n" + strings.Join(extra, "")
}

func hasNote(notes []string, substrs ...string) bool {
	return slices.ContainsFunc(notes, func(n string) bool {
		for _, s := range substrs {
			if !strings.Contains(n, s) {
				return false
			}
		}
		return true
	})
}

// TestProfiles proves each built-in app yields a spec that validates with
// no edits, with the app's database paths, config files, health path and
// port, and a pinned image when the compose tag floats.
func TestProfiles(t *testing.T) {
	const plex = "/config/Library/Application Support/Plex Media Server"
	tests := []struct {
		image, mount string
		wantImage    string
		wantDBs      map[string]string // name -> path
		wantConfig   string
		wantHealth   string
		wantPort     int
	}{
		{"sctx/overseerr:latest", "cfg:/app/config", "sctx/overseerr:1.34.0",
			map[string]string{"db": "/app/config/db/db.sqlite3"}, "/app/config/settings.json", "/api/v1/status", 5055},
		{"fallenbagel/jellyseerr", "./cfg:/app/config", "fallenbagel/jellyseerr:2.7.3",
			map[string]string{"db": "/app/config/db/db.sqlite3"}, "/app/config/settings.json", "/api/v1/status", 5055},
		{"lscr.io/linuxserver/sonarr:latest", "cfg:/config", "lscr.io/linuxserver/sonarr:4.0.15.2941-ls291",
			map[string]string{"db": "/config/sonarr.db"}, "/config/config.xml", "/ping", 8989},
		{"ghcr.io/linuxserver/radarr:5", "cfg:/config", "ghcr.io/linuxserver/radarr:5.26.2.10099-ls277",
			map[string]string{"db": "/config/radarr.db"}, "/config/config.xml", "/ping", 7878},
		{"plexinc/pms-docker:latest", "cfg:/config", "plexinc/pms-docker:1.41.6.9685-d301f511a",
			map[string]string{
				"library": plex + "/Plug-in Support/Databases/com.plexapp.plugins.library.db",
				"blobs":   plex + "/Plug-in Support/Databases/com.plexapp.plugins.library.blobs.db",
			}, plex + "/Preferences.xml", "/identity", 32400},
		{"linuxserver/plex:latest", "cfg:/config", "linuxserver/plex:1.41.6.9685-d301f511a-ls262",
			map[string]string{
				"library": plex + "/Plug-in Support/Databases/com.plexapp.plugins.library.db",
				"blobs":   plex + "/Plug-in Support/Databases/com.plexapp.plugins.library.blobs.db",
			}, plex + "/Preferences.xml", "/identity", 32400},
	}
	for _, tt := range tests {
		t.Run(tt.image, func(t *testing.T) {
			file := project(t, map[string]string{"docker-compose.yml": one(tt.image, tt.mount) + "volumes:\n  cfg:\n"})
			s, notes, err := Init(context.Background(), file, "app")
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Validate(); err != nil {
				t.Fatalf("spec of a known app does not validate:\n%v", err)
			}
			if s.Image != tt.wantImage {
				t.Errorf("image = %q, want %q", s.Image, tt.wantImage)
			}
			if !hasNote(notes, "image:", tt.image, "floats", tt.wantImage) {
				t.Errorf("no note says %s floats and was pinned to %s; notes: %q", tt.image, tt.wantImage, notes)
			}
			got := map[string]string{}
			for _, d := range s.Databases {
				got[d.Name] = d.Path
				if d.ReplicaPath != d.Name {
					t.Errorf("database %s: replica path %q, want %q", d.Name, d.ReplicaPath, d.Name)
				}
				if len(d.UserTables) == 0 {
					t.Errorf("database %s: no user tables to verify", d.Name)
				}
			}
			if !maps(got, tt.wantDBs) {
				t.Errorf("databases = %v, want %v", got, tt.wantDBs)
			}
			if !slices.Contains(s.ConfigFiles, tt.wantConfig) {
				t.Errorf("config files = %q, want %q among them", s.ConfigFiles, tt.wantConfig)
			}
			if len(s.Disposable) == 0 {
				t.Error("no disposable paths")
			}
			if s.Health.Path != tt.wantHealth {
				t.Errorf("health path = %q, want %q", s.Health.Path, tt.wantHealth)
			}
			if s.Port != tt.wantPort {
				t.Errorf("port = %d, want %d", s.Port, tt.wantPort)
			}
			if s.Source.Project != "proj" || s.Source.Service != "app" || s.Source.ComposeFile != "docker-compose.yml" {
				t.Errorf("source = %+v, want project proj (the directory), service app, compose_file docker-compose.yml", s.Source)
			}
		})
	}
}

func maps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestOverseerrUserTables(t *testing.T) {
	file := project(t, map[string]string{"docker-compose.yml": one("sctx/overseerr:1.34.0", "cfg:/app/config") + "volumes:\n  cfg:\n"})
	s, notes, err := Init(context.Background(), file, "app")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"user", "user_settings", "media", "media_request", "season_request", "issue", "issue_comment"}
	if !slices.Equal(s.Databases[0].UserTables, want) {
		t.Errorf("user tables = %q, want %q", s.Databases[0].UserTables, want)
	}
	if s.Image != "sctx/overseerr:1.34.0" || hasNote(notes, "image:") {
		t.Errorf("a pinned compose image must be kept without a note: image %q, notes %q", s.Image, notes)
	}
}

func TestServiceNotFoundListsServices(t *testing.T) {
	file := project(t, map[string]string{"docker-compose.yml": `
services:
  sonarr:
    image: linuxserver/sonarr
  radarr:
    image: linuxserver/radarr
  tools:
    image: busybox
    profiles: [debug]
`})
	_, _, err := Init(context.Background(), file, "overseerr")
	var nf *ServiceNotFoundError
	if !errors.As(err, &nf) {
		t.Fatalf("err = %v, want *ServiceNotFoundError", err)
	}
	if want := []string{"radarr", "sonarr", "tools"}; !slices.Equal(nf.Present, want) {
		t.Errorf("present = %q, want %q (services behind a profile included)", nf.Present, want)
	}
	if !strings.Contains(err.Error(), `"overseerr"`) || !strings.Contains(err.Error(), "radarr, sonarr, tools") {
		t.Errorf("message %q must name the missing service and the present ones", err)
	}
}

func TestMissingComposeFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "nope", "docker-compose.yml")
	_, _, err := Init(context.Background(), file, "app")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v, want fs.ErrNotExist", err)
	}
	if !strings.Contains(err.Error(), file) {
		t.Errorf("message %q does not name %s", err, file)
	}
}

// TestDotEnvInterpolation proves ${...} in the compose file is filled from
// the project's .env, as docker compose does: the image tag and TZ here.
func TestDotEnvInterpolation(t *testing.T) {
	file := project(t, map[string]string{
		".env": "FERRY_TEST_TAG=1.33.2\nFERRY_TEST_TZ=Europe/London\n",
		"docker-compose.yml": one("sctx/overseerr:${FERRY_TEST_TAG}", "cfg:/app/config",
			"    environment:\n      TZ: ${FERRY_TEST_TZ}\n      EMPTY:\n") + "volumes:\n  cfg:\n",
	})
	s, _, err := Init(context.Background(), file, "app")
	if err != nil {
		t.Fatal(err)
	}
	if s.Image != "sctx/overseerr:1.33.2" {
		t.Errorf("image = %q, want the tag from .env", s.Image)
	}
	if s.Env["TZ"] != "Europe/London" {
		t.Errorf("env TZ = %q, want Europe/London from .env", s.Env["TZ"])
	}
	if _, ok := s.Env["EMPTY"]; ok {
		t.Error("a variable declared without a value and unset must not be carried")
	}
}

func TestDatabaseOutsideMountsRefused(t *testing.T) {
	tests := map[string]string{
		"other mount": one("sctx/overseerr:latest", "./data:/data") + "\n",
		"no mounts":   "services:\n  app:\n    image: sctx/overseerr:latest\n",
		"tmpfs only":  "services:\n  app:\n    image: sctx/overseerr:latest\n    volumes:\n      - type: tmpfs\n        target: /app/config\n",
		"sibling":     one("sctx/overseerr:latest", "./c:/app/config/d") + "\n",
	}
	for name, yml := range tests {
		t.Run(name, func(t *testing.T) {
			file := project(t, map[string]string{"docker-compose.yml": yml})
			_, _, err := Init(context.Background(), file, "app")
			var ue *UnmountedError
			if !errors.As(err, &ue) {
				t.Fatalf("err = %v, want *UnmountedError", err)
			}
			if ue.Path != "/app/config/db/db.sqlite3" || !strings.Contains(err.Error(), ue.Path) {
				t.Errorf("error %q must name the database path", err)
			}
			for _, m := range ue.Mounts {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not name mount %q", err, m)
				}
			}
		})
	}

	// The database's own directory mounted is enough.
	file := project(t, map[string]string{"docker-compose.yml": one("sctx/overseerr:latest", "./db:/app/config/db") + "\n"})
	if _, notes, err := Init(context.Background(), file, "app"); err != nil {
		t.Errorf("db dir mounted: %v", err)
	} else if !hasNote(notes, "config_files:", "/app/config/settings.json") {
		t.Errorf("settings.json outside every mount must be noted; notes %q", notes)
	}
}

// TestUnknownApp proves an app without a profile gets a spec with a
// database block to fill in, a note saying so, and a validation error
// naming `database` until it is edited.
func TestUnknownApp(t *testing.T) {
	file := project(t, map[string]string{"docker-compose.yml": one("example/thing:latest", "data:/var/lib/thing",
		"    ports:\n      - \"8080:3000\"\n") + "volumes:\n  data:\n"})
	s, notes, err := Init(context.Background(), file, "app")
	if err != nil {
		t.Fatal(err)
	}
	if !hasNote(notes, "database:", "no profile", "example/thing:latest") {
		t.Errorf("no note says the databases must be filled in; notes %q", notes)
	}
	if !hasNote(notes, "image:", "floats") {
		t.Errorf("no note asks to pin the floating image; notes %q", notes)
	}
	if s.Port != 3000 || s.ConfigDir != "/var/lib/thing" {
		t.Errorf("port %d config_dir %q, want the container port 3000 and the mount /var/lib/thing", s.Port, s.ConfigDir)
	}
	_, err = config.Parse(config.Encode(s, Header(notes)...), "ferry.hcl")
	var cerr *config.Error
	if !errors.As(err, &cerr) {
		t.Fatalf("parse of an unknown app's spec: %v, want *config.Error", err)
	}
	if !slices.ContainsFunc(cerr.Problems, func(p config.Problem) bool { return strings.HasPrefix(p.Field, "database") }) {
		t.Errorf("problems %v do not name database", cerr)
	}
}

// TestComposeHintsCarried covers the healthcheck's URL path, the Traefik
// Host rule and entrypoint, labels that are not carried, env names that
// look secret, a port other than the app's default and a service name
// Nomad would refuse.
func TestComposeHintsCarried(t *testing.T) {
	file := project(t, map[string]string{"docker-compose.yml": `
services:
  My_Sonarr:
    image: linuxserver/sonarr:4.0.15.2941-ls291
    environment:
      TZ: Europe/London
      SONARR__AUTH__APIKEY: abc
      DB_PASSWORD: hunter2
    ports: ["9999:9090"]
    volumes: ["/srv/sonarr:/config"]
    healthcheck:
      test: curl -fsS "http://127.0.0.1:9090/sonarr/ping" || exit 1
    labels:
      traefik.enable: "true"
      traefik.http.routers.tv.rule: Host(` + "`tv.example.com`" + `)
      traefik.http.routers.tv.entrypoints: internal
      traefik.http.routers.tv.middlewares: auth@file
`})
	s, notes, err := Init(context.Background(), file, "My_Sonarr")
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		what      string
		got, want any
	}{
		{"name", s.Name, "my-sonarr"},
		{"source service", s.Source.Service, "My_Sonarr"},
		{"health path", s.Health.Path, "/sonarr/ping"},
		{"ingress host", s.Ingress.Host, "tv.example.com"},
		{"entrypoint", s.Ingress.Entrypoint, "internal"},
		{"port", s.Port, 9090},
		{"TZ", s.Env["TZ"], "Europe/London"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
	for _, k := range []string{"SONARR__AUTH__APIKEY", "DB_PASSWORD"} {
		if _, ok := s.Env[k]; ok {
			t.Errorf("secret-looking %s carried into the spec", k)
		}
	}
	for _, want := range [][]string{
		{"env:", "DB_PASSWORD, SONARR__AUTH__APIKEY"},
		{"ingress:", "traefik.http.routers.tv.middlewares"},
		{"port:", "9090"},
		{"service:", "my-sonarr"},
	} {
		if !hasNote(notes, want...) {
			t.Errorf("no note with %q; notes %q", want, notes)
		}
	}
	if err := s.Validate(); err != nil {
		t.Errorf("spec does not validate: %v", err)
	}
}

func TestConfigDirectoryOverride(t *testing.T) {
	file := project(t, map[string]string{"docker-compose.yml": one("sctx/overseerr:1.34.0", "./c:/config",
		"    environment:\n      CONFIG_DIRECTORY: /config\n")})
	s, _, err := Init(context.Background(), file, "app")
	if err != nil {
		t.Fatal(err)
	}
	if s.ConfigDir != "/config" || s.Databases[0].Path != "/config/db/db.sqlite3" || s.ConfigFiles[0] != "/config/settings.json" {
		t.Errorf("CONFIG_DIRECTORY not followed: config_dir %q db %q config %q", s.ConfigDir, s.Databases[0].Path, s.ConfigFiles)
	}
}

func TestOptions(t *testing.T) {
	file := project(t, map[string]string{"docker-compose.yml": one("sctx/overseerr:1.34.0", "cfg:/app/config") + "volumes:\n  cfg:\n"})
	s, notes, err := InitWith(context.Background(), file, "app", Options{
		SpecDir:     filepath.Dir(filepath.Dir(file)),
		Mesh:        ferry.MeshNone,
		Secrets:     ferry.SecretsNomad,
		HostVolume:  "app-config",
		IngressHost: "app.example.com",
		Endpoint:    "https://s3.example.com",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		what      string
		got, want any
	}{
		{"compose file", s.Source.ComposeFile, "proj/docker-compose.yml"},
		{"mesh", s.Mesh.Mode, ferry.MeshNone},
		{"secrets", s.Secrets.Provider, ferry.SecretsNomad},
		{"secret path", s.Secrets.Path, "nomad/jobs/app"},
		{"storage", s.Storage, ferry.Storage{Kind: ferry.StorageHost, VolumeID: "app-config"}},
		{"ingress", s.Ingress.Host, "app.example.com"},
		{"endpoint", s.ObjectStore.Endpoint, "https://s3.example.com"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
	if !hasNote(notes, "mesh=none", "secrets=nomad", "host_volume=app-config") {
		t.Errorf("no note records the options; notes %q", notes)
	}
}

// TestHeaderCannotInject proves a note carrying compose text with line
// breaks stays inside comments: the written spec still parses as the one
// service.
func TestHeaderCannotInject(t *testing.T) {
	file := project(t, map[string]string{"docker-compose.yml": one("sctx/overseerr:1.34.0", "cfg:/app/config") + "volumes:\n  cfg:\n"})
	s, _, err := Init(context.Background(), file, "app")
	if err != nil {
		t.Fatal(err)
	}
	notes := []string{"a\nservice \"evil\" {\n}\r\nimage = 1\x00"}
	for _, l := range Header(notes) {
		if strings.ContainsAny(l, "\n\r\x00") {
			t.Errorf("header line %q holds a control character", l)
		}
	}
	got, err := config.Parse(config.Encode(s, Header(notes)...), "ferry.hcl")
	if err != nil {
		t.Fatalf("spec with hostile notes: %v", err)
	}
	if got.Name != "app" {
		t.Errorf("parsed service %q, want app", got.Name)
	}
}

func TestRepository(t *testing.T) {
	tests := map[string]string{
		"sctx/overseerr":                           "sctx/overseerr",
		"sctx/overseerr:latest":                    "sctx/overseerr",
		"docker.io/sctx/overseerr:1.34.0":          "sctx/overseerr",
		"lscr.io/linuxserver/sonarr:latest":        "linuxserver/sonarr",
		"localhost:5000/linuxserver/radarr:5":      "linuxserver/radarr",
		"ghcr.io/linuxserver/plex@sha256:abcd":     "linuxserver/plex",
		"docker.io/library/busybox:1.36":           "busybox",
		"registry.example.com:443/team/app:v1.2.3": "team/app",
	}
	for image, want := range tests {
		if got := repository(image); got != want {
			t.Errorf("repository(%q) = %q, want %q", image, got, want)
		}
	}
	if got := withTag("localhost:5000/linuxserver/radarr:5", "5.26.2"); got != "localhost:5000/linuxserver/radarr:5.26.2" {
		t.Errorf("withTag kept the registry wrong: %q", got)
	}
}
