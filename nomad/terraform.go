package nomad

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"path/filepath"
	"sync"

	"github.com/ferry-migrate/ferry"
	"github.com/hashicorp/terraform-exec/tfexec"
)

// ErrNoTerraform is returned when the spec asks for Terraform and no
// terraform binary is on PATH.
var ErrNoTerraform = errors.New("terraform not found on PATH")

// UseTerraform reports whether svc is applied through Terraform: the spec
// says apply = "terraform" and a terraform binary is on PATH. Otherwise
// the API path (Deploy) is used.
func UseTerraform(svc ferry.Service) (string, bool) {
	if svc.Apply != "terraform" {
		return "", false
	}
	p, err := exec.LookPath("terraform")
	if err != nil {
		return "", false
	}
	return p, true
}

// TerraformApply is a Terraform run over the operator's root module.
type TerraformApply struct {
	Dir      string // root module directory (holds main.tf with module "<svc>")
	Module   string // the service's module name: plan/apply use -target=module.<Module>
	ExecPath string // terraform binary
	// Output receives terraform's stdout and stderr (nil: discarded).
	Output io.Writer
	// Logger receives the exact command lines run (tfexec's logger).
	Logger *slog.Logger
}

// ApplyTerraform runs `terraform init`, `terraform plan
// -target=module.<svc> -out=<dir>/ferry.tfplan`, then `terraform apply` of
// that plan, as the platform's operators do by hand. Only the service's
// module is touched.
func ApplyTerraform(ctx context.Context, t TerraformApply) error {
	if t.ExecPath == "" {
		return fmt.Errorf("terraform apply module.%s: %w", t.Module, ErrNoTerraform)
	}
	tf, err := tfexec.NewTerraform(t.Dir, t.ExecPath)
	if err != nil {
		return fmt.Errorf("terraform: %w", err)
	}
	if t.Output != nil {
		// tfexec writes stdout and stderr from two goroutines.
		out := &lockedWriter{w: t.Output}
		tf.SetStdout(out)
		tf.SetStderr(out)
	}
	if t.Logger != nil {
		tf.SetLogger(printfLogger{t.Logger})
	}
	if err := tf.Init(ctx); err != nil {
		return fmt.Errorf("terraform init: %w", err)
	}
	plan := filepath.Join(t.Dir, "ferry.tfplan")
	target := tfexec.Target("module." + t.Module)
	if _, err := tf.Plan(ctx, target, tfexec.Out(plan)); err != nil {
		return fmt.Errorf("terraform plan module.%s: %w", t.Module, err)
	}
	if err := tf.Apply(ctx, tfexec.DirOrPlan(plan)); err != nil {
		return fmt.Errorf("terraform apply module.%s: %w", t.Module, err)
	}
	return nil
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

type printfLogger struct{ l *slog.Logger }

func (p printfLogger) Printf(format string, v ...any) {
	p.l.Info(fmt.Sprintf(format, v...), "component", "terraform")
}
