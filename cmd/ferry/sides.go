package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/adapt"
	"github.com/ferry-migrate/ferry/docker"
	"github.com/ferry-migrate/ferry/litestream"
	"github.com/ferry-migrate/ferry/migrate"
	"github.com/ferry-migrate/ferry/nomad"
	"github.com/ferry-migrate/ferry/render"
	"github.com/ferry-migrate/ferry/runbook"
)

// sideFlags say how to reach the three sides of a migration. Every one
// defaults to the environment variable its own tool reads.
type sideFlags struct {
	dockerHost  string
	nomadAddr   string
	s3Endpoint  string
	tfDir       string
	forceSeed   bool
	warmImage   string
	configJob   string
	warmNetwork string
}

func (f *sideFlags) add(fs *flag.FlagSet) {
	fs.StringVar(&f.dockerHost, "docker-host", "", "the compose host's engine: unix://, tcp:// or ssh://user@host (default: the spec's, then DOCKER_HOST)")
	fs.StringVar(&f.nomadAddr, "nomad-addr", "", "the Nomad API address (default: NOMAD_ADDR); the token is read from NOMAD_TOKEN")
	fs.StringVar(&f.s3Endpoint, "s3-endpoint", os.Getenv("FERRY_S3_ENDPOINT"), "the object store as reachable from this machine, when the spec's endpoint is only reachable inside the mesh (default: FERRY_S3_ENDPOINT)")
	fs.StringVar(&f.tfDir, "terraform-dir", ".", "the Terraform root `dir` holding module \"<service>\" (apply = \"terraform\")")
	fs.BoolVar(&f.forceSeed, "force-seed", false, "seed over a replica that is already in the replica path (it is replaced)")
	fs.StringVar(&f.warmImage, "warm-image", "", "the litestream `image` for warm replication on the compose host (default: the spec's litestream image)")
	fs.StringVar(&f.warmNetwork, "warm-network", "host", "the network mode of the warm replication helper")
	fs.StringVar(&f.configJob, "config-job-driver", "docker", "the task driver of the job that writes config files onto the volume")
}

// connect builds the migration of svc: the compose host, a replica per
// session is a migration with every side connected.
type session struct {
	m        *migrate.Migration
	j        *runbook.Journal
	nomad    *nomad.Client
	replicas map[string]*litestream.Replica
	close    func()
}

// connect builds the migration of svc: the compose host, a replica per
// database, and the cluster, with its journal.
func (f *sideFlags) connect(ctx context.Context, e *env, svc *ferry.Service, specPath string, deployTimeout time.Duration) (*session, error) {
	dir := stateDir(specPath, svc)
	jobHCL, err := render.Jobspec(svc)
	if err != nil {
		return nil, err
	}

	host := f.dockerHost
	if host == "" {
		host = svc.Source.DockerHost
	}
	dh, err := docker.Connect(ctx, docker.Options{Host: host, Logger: e.log})
	if err != nil {
		return nil, err
	}

	nc, err := f.nomad(e, svc)
	if err != nil {
		dh.Close()
		return nil, err
	}
	raw, creds, err := f.replicasWith(ctx, e, svc, nc)
	if err != nil {
		dh.Close()
		return nil, err
	}
	j, err := runbook.OpenJournal(migrate.JournalPath(dir), svc.Name)
	if err != nil {
		dh.Close()
		return nil, err
	}
	replicas := map[string]migrate.Replica{}
	for name, r := range raw {
		// A replica this migration seeded before (then rolled back) is
		// replaced by the next seed; anyone else's needs --force-seed.
		ours := false
		if rec := j.Lookup(migrate.StepSeed + ":" + name); rec != nil && rec.Facts["txid"] != "" {
			ours = true
		}
		replicas[name] = adapt.Replica(r, "ferry migrate "+svc.Name, f.forceSeed || ours)
	}

	warmImage := firstNonEmpty(f.warmImage, svc.Litestream.Image)
	warmEnv := []string{"LITESTREAM_ACCESS_KEY_ID=" + creds.AccessKeyID, "LITESTREAM_SECRET_ACCESS_KEY=" + creds.SecretAccessKey}
	warmStore := f.store(svc)
	cluster := &adapt.NomadCluster{
		Client:    nc,
		Service:   svc,
		JobHCL:    string(jobHCL),
		Timeout:   deployTimeout,
		ConfigJob: nomad.ConfigJob{Driver: f.configJob},
		Log:       e.log,
	}
	if tf, ok := nomad.UseTerraform(*svc); ok {
		cluster.Terraform = &nomad.TerraformApply{Dir: f.tfDir, Module: svc.Name, ExecPath: tf, Output: e.stderr, Logger: e.log}
	} else if svc.Apply == "terraform" {
		e.log.Warn("apply = \"terraform\" but terraform is not on PATH; deploying through the Nomad API")
	}
	m := &migrate.Migration{
		Service: svc,
		Dir:     dir,
		Source: &adapt.DockerSource{
			Host: dh, Service: withStore(svc, warmStore), WarmImage: warmImage, WarmEnv: warmEnv, WarmNetwork: f.warmNetwork,
			WarmSettled: func(ctx context.Context) error { return settled(ctx, replicas, svc.Litestream.SyncInterval) },
		},
		Replicas: replicas,
		Cluster:  cluster,
		Log:      e.log,
	}
	return &session{m: m, j: j, nomad: nc, replicas: raw, close: func() { dh.Close() }}, nil
}

func (f *sideFlags) nomad(e *env, svc *ferry.Service) (*nomad.Client, error) {
	return nomad.New(nomad.Config{
		Address:   firstNonEmpty(f.nomadAddr, os.Getenv("NOMAD_ADDR")),
		Token:     os.Getenv("NOMAD_TOKEN"),
		Region:    svc.Target.Region,
		Namespace: svc.Target.Namespace,
	}, e.log)
}

// store is the object store as reachable from this machine.
func (f *sideFlags) store(svc *ferry.Service) ferry.ObjectStore {
	store := svc.ObjectStore
	if f.s3Endpoint != "" {
		store.Endpoint = f.s3Endpoint
	}
	return store
}

// replicas opens the replica of every database of svc.
func (f *sideFlags) replicas(ctx context.Context, e *env, svc *ferry.Service) (map[string]*litestream.Replica, litestream.Credentials, error) {
	nc, err := f.nomad(e, svc) // for keys kept in a Nomad Variable; contacts nothing otherwise
	if err != nil {
		return nil, litestream.Credentials{}, err
	}
	return f.replicasWith(ctx, e, svc, nc)
}

func (f *sideFlags) replicasWith(ctx context.Context, e *env, svc *ferry.Service, nc *nomad.Client) (map[string]*litestream.Replica, litestream.Credentials, error) {
	creds, err := credentials(ctx, svc, nc)
	if err != nil {
		return nil, creds, err
	}
	out := map[string]*litestream.Replica{}
	for _, db := range svc.Databases {
		r, err := litestream.Open(ctx, f.store(svc), db.ReplicaPath, creds, e.log)
		if err != nil {
			return nil, creds, err
		}
		out[db.Name] = r
	}
	return out, creds, nil
}

// settled returns once every replica holds something and its position
// has not moved for three sync intervals (at least 2s), within 2 minutes.
func settled(ctx context.Context, replicas map[string]migrate.Replica, interval time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for name, r := range replicas {
		if err := settle(ctx, r, interval, max(3*interval, 2*time.Second)); err != nil {
			return fmt.Errorf("replica %s: %w", name, err)
		}
	}
	return nil
}

func settle(ctx context.Context, r migrate.Replica, interval, quiet time.Duration) error {
	var last uint64
	var since time.Time
	for {
		pos, err := r.Latest(ctx)
		switch {
		case errors.Is(err, litestream.ErrNoReplica):
			// nothing replicated yet
		case err != nil:
			return err
		case since.IsZero() || pos.TXID != last:
			last, since = pos.TXID, time.Now()
		case time.Since(since) >= quiet:
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not settled: %w", ctx.Err())
		case <-time.After(interval):
		}
	}
}

// withStore is svc with another object store address (the one the compose
// host reaches), leaving the spec itself unchanged.
func withStore(svc *ferry.Service, store ferry.ObjectStore) *ferry.Service {
	c := *svc
	c.ObjectStore = store
	return &c
}

// credentials finds the object store keys: the environment first
// (LITESTREAM_* or AWS_*), then the spec's secret source: the Nomad
// Variable it names, or its Vault KV v2 secret when VAULT_ADDR and
// VAULT_TOKEN are set (read with Vault's own client).
func credentials(ctx context.Context, svc *ferry.Service, nc *nomad.Client) (litestream.Credentials, error) {
	if c, ok := litestream.CredentialsFromEnv(); ok {
		return c, nil
	}
	var items map[string]any
	switch {
	case svc.Secrets.Provider == ferry.SecretsNomad:
		v, _, err := nc.API().Variables().Read(svc.Secrets.Path, nil)
		if err != nil {
			return litestream.Credentials{}, fmt.Errorf("read the object store keys from Nomad variable %s: %w", svc.Secrets.Path, err)
		}
		items = map[string]any{}
		for k, val := range v.Items {
			items[k] = val
		}
	case os.Getenv("VAULT_ADDR") != "" && os.Getenv("VAULT_TOKEN") != "":
		var err error
		if items, err = vaultKV2(ctx, svc.Secrets.Path); err != nil {
			return litestream.Credentials{}, err
		}
	default:
		return litestream.Credentials{}, errNoCredentials
	}
	id, _ := items[svc.Secrets.AccessKeyKey].(string)
	secret, _ := items[svc.Secrets.SecretKeyKey].(string)
	if id == "" || secret == "" {
		return litestream.Credentials{}, fmt.Errorf("the secret %s lacks %s or %s", svc.Secrets.Path, svc.Secrets.AccessKeyKey, svc.Secrets.SecretKeyKey)
	}
	return litestream.Credentials{AccessKeyID: id, SecretAccessKey: secret}, nil
}

// vaultKV2 reads a KV v2 secret the way the jobspec's template names it:
// "nomad/default/overseerr" is path "default/overseerr" of mount "nomad".
func vaultKV2(ctx context.Context, path string) (map[string]any, error) {
	mount, rest, ok := strings.Cut(path, "/")
	if !ok {
		return nil, fmt.Errorf("vault secret %q: want <mount>/<path>", path)
	}
	vc, err := vault.NewClient(vault.DefaultConfig()) // VAULT_ADDR, VAULT_TOKEN, VAULT_CACERT...
	if err != nil {
		return nil, fmt.Errorf("vault client: %w", err)
	}
	s, err := vc.KVv2(mount).Get(ctx, rest)
	if err != nil {
		return nil, fmt.Errorf("read the object store keys from Vault secret %s: %w", path, err)
	}
	return s.Data, nil
}

var errNoCredentials = errors.New("no object store credentials: set LITESTREAM_ACCESS_KEY_ID and LITESTREAM_SECRET_ACCESS_KEY, or VAULT_ADDR and VAULT_TOKEN to read the spec's Vault secret")

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
