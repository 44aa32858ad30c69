package render_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/ferry-migrate/ferry/config"
	"github.com/ferry-migrate/ferry/render"
)

// hostile are values that would inject HCL, Go templates or shell if
// written unescaped.
var hostile = []string{
	`a"b`, `${var.x}`, `%{ if true }x%{ endif }`, "`touch /tmp/pwned`", "line1\nline2",
	`{{ env "HOME" }}`, `}}`, `$(id)`, `'; rm -rf / #`, "EOT\nfoo = 1", `\"\\`, "\x00\t\r",
}

// TestFreeTextIsEscaped puts hostile values in every free-text spec field
// (env values, extra ingress tags), renders, parses the jobspec and reads
// each value back unchanged.
func TestFreeTextIsEscaped(t *testing.T) {
	s := load(t, "../examples/overseerr/ferry.hcl")
	s.Env = map[string]string{}
	for i, v := range hostile {
		s.Env["V"+string(rune('A'+i))] = v
	}
	s.Ingress.Tags = slices.Clone(hostile)
	fs, err := render.Render(s)
	if err != nil {
		t.Fatal(err)
	}
	checkHCL(t, fs)
	job := parse(t, fs[render.JobspecPath(s.Name)])
	g := only(t, job.Blocks[0].Body, "group")
	var env map[string]any
	for _, b := range g.Body.Blocks {
		if b.Type == "task" && b.Labels[0] == s.Name {
			env = attrs(t, only(t, b.Body, "env").Body)
		}
	}
	for k, want := range s.Env {
		if env[k] != want {
			t.Errorf("env %s = %q, want %q", k, env[k], want)
		}
	}
	tags := toStrings(attrs(t, only(t, g.Body, "service").Body)["tags"])
	if !slices.Equal(tags[len(tags)-len(hostile):], hostile) {
		t.Errorf("tags read back as %q", tags)
	}
	// The only Go-template actions in the job are ferry's own credential
	// lookups; no spec value opened one.
	for _, b := range g.Body.Blocks {
		if b.Type != "task" {
			continue
		}
		for _, tb := range b.Body.Blocks {
			if tb.Type != "template" {
				continue
			}
			data := attrs(t, tb.Body)["data"].(string)
			if n := strings.Count(data, "{{"); n != 0 && n != 6 {
				t.Errorf("template %v has %d template actions:\n%s", attrs(t, tb.Body)["destination"], n, data)
			}
		}
	}
}

// TestUnsafeValuesAreRefused: values that reach shell, templates or HCL
// labels unquoted are refused by validation before render sees them.
func TestUnsafeValuesAreRefused(t *testing.T) {
	base := "service \"app\" {\n  image = \"example/app:1.2.3\"\n  port = 80\n  config_dir = \"/config\"\n  source { service = \"app\" }\n%s\n}\n"
	for _, field := range []string{
		`database "db" { path = "/data/$(id).db" }`,
		`database "db" { path = "/data/a'b.db" }`,
		"database \"db\" {\n path = \"/data/db.sqlite\"\n replica_path = \"db\\\"x\"\n}",
		"database \"db\" { path = \"/d/db\" }\n  health { path = \"/{{x}}\" }",
		"database \"db\" { path = \"/d/db\" }\n  ingress { host = \"a`b.example.com\" }",
		"database \"db\" { path = \"/d/db\" }\n  secrets {\n vault {\n path = \"x\\\"}}{{\"\n }\n }",
	} {
		src := strings.Replace(base, "%s", field, 1)
		if _, err := config.Parse([]byte(src), "ferry.hcl"); err == nil {
			t.Errorf("accepted:\n%s", src)
		}
	}
	s := load(t, "../examples/overseerr/ferry.hcl")
	s.Databases[0].Path = "/app/config/db/`id`.sqlite3"
	if _, err := render.Render(s); err == nil {
		t.Error("Render accepted an unvalidated spec with a backtick in a path")
	}
}

// TestScriptQuotesPathsWithSpaces: the media server's databases live under
// "Application Support"; the script passes them as single-quoted words.
func TestScriptQuotesPathsWithSpaces(t *testing.T) {
	s := load(t, "../examples/media-server/ferry.hcl")
	script := render.RestoreScript(s)
	for _, d := range s.Databases {
		want := "restore_db '" + d.Name + "' \"$alloc_dir\"/'" + render.AllocDBPath(s, d) + "'"
		if !strings.Contains(script, want) {
			t.Errorf("script lacks %s", want)
		}
	}
	// The one litestream config names both databases, each with its own replica.
	cfg := render.LitestreamConfig(s)
	if strings.Count(cfg, "replica:") != 2 || strings.Count(cfg, "  - path:") != 2 {
		t.Errorf("config does not have one replica per database:\n%s", cfg)
	}
	for _, banned := range []string{"snapshot-interval", "retention-check-interval", "replicas:"} {
		if strings.Contains(cfg, banned) {
			t.Errorf("config has the v0.3 key %q", banned)
		}
	}
	_ = hclsyntax.Body{}
}
