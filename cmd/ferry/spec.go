package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ferry-migrate/ferry/compose"
	"github.com/ferry-migrate/ferry/config"
	"github.com/ferry-migrate/ferry/internal/atomicfile"
	"github.com/ferry-migrate/ferry/render"
)

func cmdInit(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "init", "--compose FILE --service NAME [-o ferry.hcl]")
	file := fs.String("compose", "docker-compose.yml", "the compose `file` that runs the service today")
	service := fs.String("service", "", "the compose `service` to migrate")
	out := fs.String("o", "ferry.hcl", "where to write the spec (- for stdout)")
	force := fs.Bool("force", false, "overwrite an existing spec")
	var opts compose.Options
	fs.StringVar(&opts.Mesh, "mesh", "", "consul-transparent-proxy (default), consul-upstreams or none")
	fs.StringVar(&opts.Secrets, "secrets", "", "where the object store keys live: vault (default) or nomad")
	fs.StringVar(&opts.HostVolume, "host-volume", "", "a Nomad host `volume` for the config files instead of a CSI volume")
	fs.StringVar(&opts.IngressHost, "ingress-host", "", "the Traefik `host` (default: from the compose labels)")
	fs.StringVar(&opts.Endpoint, "endpoint", "", "the object store `URL` (default: the platform's MinIO)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *service == "" {
		return &usageError{msg: "--service is required"}
	}
	if *out != "-" && !*force {
		if _, err := os.Stat(*out); err == nil {
			return &specExistsError{path: *out}
		}
	}
	if *out != "-" {
		opts.SpecDir = filepath.Dir(*out) // the spec names the compose file relative to itself
	}
	svc, notes, err := compose.InitWith(ctx, *file, *service, opts)
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	src := config.Encode(svc, compose.Header(notes)...)
	for _, n := range notes {
		fmt.Fprintln(e.stderr, "note:", n)
	}
	if *out == "-" {
		_, err := e.stdout.Write(src)
		return err
	}
	if err := atomicfile.WriteFile(*out, src, 0o644); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	fmt.Fprintf(e.stdout, "wrote %s\n", *out)
	if _, err := config.Parse(src, *out); err != nil {
		var cerr *config.Error
		if errors.As(err, &cerr) {
			fmt.Fprintf(e.stderr, "the spec needs edits before it can be used:\n%v\n", err)
			return nil
		}
		return err
	}
	return nil
}

func cmdRender(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "render", "-f ferry.hcl [-o DIR]")
	spec := fs.String("f", "ferry.hcl", "the migration spec")
	out := fs.String("o", ".", "the Terraform root `dir` to write into")
	if err := parse(fs, args); err != nil {
		return err
	}
	svc, err := config.Load(*spec)
	if err != nil {
		return err
	}
	files, err := render.RenderDir(ctx, *out, svc)
	if err != nil {
		return err
	}
	for _, name := range files.Paths() {
		fmt.Fprintln(e.stdout, filepath.Join(*out, name))
	}
	return nil
}

// specExistsError refuses to overwrite a spec the user may have edited.
type specExistsError struct{ path string }

func (e *specExistsError) Error() string { return "init: " + e.path + " already exists" }
