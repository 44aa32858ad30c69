package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/ferry-migrate/ferry/internal/testenv"
	"github.com/ferry-migrate/ferry/internal/tools"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"ferry": func() {
			os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
		},
	})
}

// TestScripts runs the CLI end to end: testdata/script/*.txtar, each
// regression headed by the issue it came from.
func TestScripts(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	home, _ := os.UserHomeDir()
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(e *testscript.Env) error {
			e.Setenv("EXAMPLES", filepath.Join(root, "examples"))
			e.Setenv("HOME", home) // the pinned tools live in ~/go/bin
			e.Setenv("PATH", os.Getenv("PATH"))
			for _, k := range []string{"GOPATH", testenv.RequireRealEnv, "AWS_CA_BUNDLE"} {
				e.Setenv(k, os.Getenv(k))
			}
			return nil
		},
		// [real:TOOL] holds when a real part is installed; when it is not
		// and FERRY_REQUIRE_REAL is set, the script fails instead.
		Condition: func(cond string) (bool, error) {
			tool, ok := strings.CutPrefix(cond, "real:")
			if !ok {
				return false, fmt.Errorf("unknown condition %q", cond)
			}
			if _, err := tools.Find(tool); err != nil {
				if os.Getenv(testenv.RequireRealEnv) != "" {
					return false, fmt.Errorf("missing real part %s (and %s is set)", tool, testenv.RequireRealEnv)
				}
				return false, nil
			}
			return true, nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			// nosecret FILE...: none of the canary secrets of the bundled
			// example settings appears in the files.
			"nosecret": func(ts *testscript.TestScript, neg bool, args []string) {
				for _, f := range args {
					data := ts.ReadFile(f)
					for _, canary := range []string{"canary-client-id", "canaryapikey", "canary-sonarr-key", "canary-radarr-key"} {
						if strings.Contains(data, canary) {
							ts.Fatalf("%s contains the secret %q", f, canary)
						}
					}
				}
			},
		},
	})
}
