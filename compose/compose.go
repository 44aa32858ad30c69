// Package compose reads a docker-compose service and writes the first
// draft of its migration spec: `ferry init`.
//
// Init loads the compose file the way docker compose does (project
// directory, .env, environment interpolation, project name), picks the
// service, and fills a ferry.Service from it and from a built-in profile of
// the app, so that for a known app (Overseerr, Jellyseerr, Sonarr, Radarr,
// Plex) the spec validates with no edits. For an unknown app the spec has
// a database block to fill in, and a note says so.
package compose

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"unicode"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/config"
)

// Options are the choices a compose file cannot express: how the service
// fits the cluster. The zero value means the platform defaults of
// config.ApplyDefaults (Consul transparent proxy, Vault, a GlusterFS CSI
// volume, the in-mesh MinIO).
type Options struct {
	// SpecDir is the directory the spec will be written to;
	// Source.ComposeFile is made relative to it. Empty means the compose
	// file's own directory (the spec sits beside the compose file).
	SpecDir string

	Mesh        string // ferry.MeshTransparentProxy, ferry.MeshUpstreams or ferry.MeshNone
	Secrets     string // ferry.SecretsVault or ferry.SecretsNomad
	HostVolume  string // a Nomad host volume for the config files instead of a CSI volume
	IngressHost string // the Traefik host; overrides a Host rule found in the labels
	Endpoint    string // the object store; empty means the platform's MinIO in the mesh
}

// ServiceNotFoundError is returned when the compose file has no service of
// the requested name. Present lists the services it does have, sorted.
type ServiceNotFoundError struct {
	File    string
	Service string
	Present []string
}

func (e *ServiceNotFoundError) Error() string {
	return fmt.Sprintf("%s has no service %q; services present: %s", e.File, e.Service, strings.Join(e.Present, ", "))
}

// UnmountedError is returned when a database of the service lies outside
// every volume and bind mount of its container: it lives in the
// container's writable layer and is lost when the container is removed,
// so there is nothing ferry can safely migrate until it is mounted.
type UnmountedError struct {
	Service string
	Path    string   // the database path inside the container
	Mounts  []string // the container's mounts, "target (source)"
}

func (e *UnmountedError) Error() string {
	mounts := "none"
	if len(e.Mounts) > 0 {
		mounts = strings.Join(e.Mounts, ", ")
	}
	return fmt.Sprintf("service %q: database %s is not under any volume or bind mount of the container (mounts: %s); it would be lost with the container: mount its directory, restart the service, then run init again", e.Service, e.Path, mounts)
}

// Init reads service from composeFile and returns its migration spec with
// the platform defaults, and notes for the user (things ferry chose or
// could not know). Init with no options is InitWith(ctx, composeFile,
// service, Options{}).
func Init(ctx context.Context, composeFile, service string) (*ferry.Service, []string, error) {
	return InitWith(ctx, composeFile, service, Options{})
}

// InitWith is Init with choices the compose file cannot express.
//
// The returned spec has config.ApplyDefaults applied. For a known app it
// validates; for an unknown one it carries an empty database path that
// Validate reports until the user fills it in. Errors: a missing compose
// file (wrapping fs.ErrNotExist), *ServiceNotFoundError, *UnmountedError,
// and compose-go's own parse and interpolation errors.
func InitWith(ctx context.Context, composeFile, service string, opts Options) (*ferry.Service, []string, error) {
	if _, err := os.Stat(composeFile); err != nil {
		return nil, nil, fmt.Errorf("compose file: %w", err)
	}
	project, err := load(ctx, composeFile)
	if err != nil {
		return nil, nil, fmt.Errorf("load %s: %w", composeFile, err)
	}
	all := project.AllServices()
	sc, ok := all[service]
	if !ok {
		present := make([]string, 0, len(all))
		for name := range all {
			present = append(present, name)
		}
		slices.Sort(present)
		return nil, nil, &ServiceNotFoundError{File: composeFile, Service: service, Present: present}
	}

	specDir := opts.SpecDir
	if specDir == "" {
		specDir = filepath.Dir(composeFile)
	}
	rel, err := relPath(specDir, composeFile)
	if err != nil {
		return nil, nil, fmt.Errorf("init: %w", err)
	}

	b := &builder{sc: sc, project: project}
	s := b.build(rel)
	if err := b.checkMounts(s); err != nil {
		return nil, nil, err
	}
	b.apply(s, opts)
	config.ApplyDefaults(s)
	return s, b.notes, nil
}

// load reads a compose project as `docker compose` does from the compose
// file's directory: the OS environment, then the project's .env for
// interpolation, the project name from COMPOSE_PROJECT_NAME, `name:` or the
// directory name.
func load(ctx context.Context, composeFile string) (*types.Project, error) {
	opts, err := cli.NewProjectOptions([]string{composeFile},
		cli.WithOsEnv,
		cli.WithEnvFiles(),
		cli.WithDotEnv,
	)
	if err != nil {
		return nil, err
	}
	return opts.LoadProject(ctx)
}

func relPath(base, target string) (string, error) {
	absBase, err := filepath.Abs(base)
	if err != nil {
		return "", err
	}
	absTarget, err := filepath.Abs(target)
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(absBase, absTarget)
	if err != nil {
		return "", err
	}
	return filepath.ToSlash(rel), nil
}

// builder turns one compose service into a spec, collecting notes.
type builder struct {
	sc      types.ServiceConfig
	project *types.Project
	notes   []string
}

func (b *builder) note(format string, args ...any) {
	b.notes = append(b.notes, fmt.Sprintf(format, args...))
}

func (b *builder) build(composeFile string) *ferry.Service {
	sc := b.sc
	s := &ferry.Service{
		Name:  jobName(sc.Name),
		Image: sc.Image,
		Source: ferry.Source{
			ComposeFile: composeFile,
			Project:     b.project.Name,
			Service:     sc.Name,
		},
		ObjectStore: ferry.ObjectStore{PathStyle: true},
	}
	if s.Name != sc.Name {
		b.note("service: the compose service %q is named %q in Nomad (lowercase letters, digits and dashes)", sc.Name, s.Name)
	}
	s.Env = b.env()

	p, known := lookup(sc.Image)
	if known {
		b.fromProfile(s, p)
	} else {
		b.unknown(s)
	}
	if path := healthPath(sc.HealthCheck); path != "" {
		s.Health.Path = path
	}
	s.Ingress = b.ingress()
	return s
}

// fromProfile fills what the app profile knows.
func (b *builder) fromProfile(s *ferry.Service, p profile) {
	s.ConfigDir = p.configDir
	if v, ok := s.Env[p.configDirEnv]; ok && p.configDirEnv != "" && path.IsAbs(v) {
		s.ConfigDir = path.Clean(v)
	}
	for _, d := range p.databases {
		s.Databases = append(s.Databases, ferry.Database{
			Name:        d.name,
			Path:        path.Join(s.ConfigDir, d.file),
			ReplicaPath: d.name,
			UserTables:  slices.Clone(d.userTables),
		})
	}
	for _, f := range p.configFiles {
		s.ConfigFiles = append(s.ConfigFiles, path.Join(s.ConfigDir, f))
	}
	for _, f := range p.disposable {
		s.Disposable = append(s.Disposable, path.Join(s.ConfigDir, f))
	}
	s.Health.Path = p.health

	s.Port = p.port
	if targets := b.containerPorts(); len(targets) > 0 && !slices.Contains(targets, p.port) {
		s.Port = targets[0]
		b.note("port: %s listens on %d by default, but the compose file publishes container port %d; using %d", p.app, p.port, s.Port, s.Port)
	}

	if !ferry.IsPinned(s.Image) {
		pinned := withTag(s.Image, p.pin)
		b.note("image: the compose file says %s, which floats; pinned to %s, the version ferry's %s profile knows. Check the version running today (docker inspect) and pin that instead if it is newer: an older image may not open a database a newer one has migrated", s.Image, pinned, p.app)
		s.Image = pinned
	}
}

// unknown fills what can be guessed for an app ferry has no profile for,
// and leaves a database block with an empty path for the user to fill in.
func (b *builder) unknown(s *ferry.Service) {
	mounts := b.mounts()
	if len(mounts) > 0 {
		s.ConfigDir = mounts[0].Target
	}
	if ports := b.containerPorts(); len(ports) > 0 {
		s.Port = ports[0]
	}
	s.Databases = []ferry.Database{{Name: "db", ReplicaPath: "db"}}
	b.note("database: ferry has no profile for image %s: set database \"db\" path to the SQLite file inside the container (add a block per database), and list config_files, disposable and health.path", s.Image)
	if !ferry.IsPinned(s.Image) {
		b.note("image: %s floats: pin it to the exact version running today (docker inspect), so a redeploy cannot change versions", s.Image)
	}
}

// checkMounts refuses a spec whose databases or config files the compose
// container does not keep on a volume: they live in its writable layer.
func (b *builder) checkMounts(s *ferry.Service) error {
	mounts := b.mounts()
	under := func(p string) bool {
		for _, m := range mounts {
			if m.Target == "/" || p == m.Target || strings.HasPrefix(p, strings.TrimSuffix(m.Target, "/")+"/") {
				return true
			}
		}
		return false
	}
	for _, d := range s.Databases {
		if d.Path != "" && !under(d.Path) {
			desc := make([]string, len(mounts))
			for i, m := range mounts {
				desc[i] = m.Target + " (" + b.mountSource(m) + ")"
			}
			return &UnmountedError{Service: b.sc.Name, Path: d.Path, Mounts: desc}
		}
	}
	for _, f := range s.ConfigFiles {
		if !under(f) {
			b.note("config_files: %s is not under any volume of the compose container, so there may be nothing to carry; check it exists (docker exec) or remove it from config_files", f)
		}
	}
	return nil
}

// mounts are the container's bind and volume mounts (anonymous volumes
// included: they outlive the container); tmpfs and others hold nothing
// that survives it.
func (b *builder) mounts() []types.ServiceVolumeConfig {
	var ms []types.ServiceVolumeConfig
	for _, v := range b.sc.Volumes {
		if v.Type == types.VolumeTypeBind || v.Type == types.VolumeTypeVolume {
			ms = append(ms, v)
		}
	}
	return ms
}

// mountSource names where a mount's data lives on the compose host: the
// Docker volume name (project-prefixed, as docker volume ls shows it) or
// the bind source path.
func (b *builder) mountSource(m types.ServiceVolumeConfig) string {
	switch {
	case m.Type == types.VolumeTypeBind:
		return m.Source
	case m.Source == "":
		return "anonymous volume"
	}
	if v, ok := b.project.Volumes[m.Source]; ok && v.Name != "" {
		return "volume " + v.Name
	}
	return "volume " + m.Source
}

func (b *builder) containerPorts() []int {
	var ps []int
	for _, p := range b.sc.Ports {
		if p.Target != 0 && !slices.Contains(ps, int(p.Target)) {
			ps = append(ps, int(p.Target))
		}
	}
	return ps
}

// secretName matches environment variable names that look like they hold
// a secret. ferry.hcl is meant to be committed; secret values belong in
// Vault or Nomad Variables, never in the spec.
var secretName = regexp.MustCompile(`(?i)pass|secret|token|key|credential|claim|auth`)

// env carries the compose environment (after .env interpolation) into the
// job, except values that look secret, which a note names.
func (b *builder) env() map[string]string {
	env := map[string]string{}
	var left []string
	for k, v := range b.sc.Environment {
		switch {
		case v == nil:
			// Declared without a value and unset: docker passes nothing.
		case secretName.MatchString(k):
			left = append(left, k)
		default:
			env[k] = *v
		}
	}
	if len(left) > 0 {
		slices.Sort(left)
		b.note("env: left out %s: the names look secret, and ferry.hcl must not hold secret values; give them to the job from Vault or Nomad Variables", strings.Join(left, ", "))
	}
	return env
}

var (
	httpURL  = regexp.MustCompile(`https?://[^/\s'"]+(/[^\s'"|;&)]*)`)
	hostRule = regexp.MustCompile("Host\\(`([^`]+)`\\)")
	urlPath  = regexp.MustCompile(`^/[A-Za-z0-9._/:@+=,-]*$`)
)

// healthPath finds the URL path a compose healthcheck polls, if its
// command names an http(s) URL ("curl -f http://localhost:5055/api/v1/status").
func healthPath(hc *types.HealthCheckConfig) string {
	if hc == nil || hc.Disable {
		return ""
	}
	m := httpURL.FindStringSubmatch(strings.Join(hc.Test, " "))
	if m == nil || !urlPath.MatchString(m[1]) {
		return ""
	}
	return m[1]
}

// ingress reads a Traefik Host rule and entrypoint from the labels (the
// docker provider's syntax, which the Consul catalog provider shares).
// Other traefik labels are not carried: their router names need not match
// the one render writes; a note lists them.
func (b *builder) ingress() ferry.Ingress {
	var in ferry.Ingress
	var routers, other []string
	for k := range b.sc.Labels {
		if r, ok := strings.CutPrefix(k, "traefik.http.routers."); ok && strings.HasSuffix(r, ".rule") {
			routers = append(routers, strings.TrimSuffix(r, ".rule"))
		}
	}
	slices.Sort(routers)
	if len(routers) > 0 {
		r := routers[0]
		if m := hostRule.FindStringSubmatch(b.sc.Labels["traefik.http.routers."+r+".rule"]); m != nil {
			in.Host = m[1]
		}
		if ep := b.sc.Labels["traefik.http.routers."+r+".entrypoints"]; ep != "" && !strings.Contains(ep, ",") {
			in.Entrypoint = ep
		}
	}
	for k := range b.sc.Labels {
		if !strings.HasPrefix(k, "traefik.") || k == "traefik.enable" || strings.HasPrefix(k, "traefik.docker.") {
			continue
		}
		if len(routers) > 0 && (k == "traefik.http.routers."+routers[0]+".rule" || k == "traefik.http.routers."+routers[0]+".entrypoints") {
			continue
		}
		other = append(other, k)
	}
	if len(other) > 0 {
		slices.Sort(other)
		b.note("ingress: traefik labels not carried: %s; add the Consul catalog equivalents to ingress.tags if the route needs them", strings.Join(other, ", "))
	}
	return in
}

// apply sets the choices of opts over what was read, and records them in
// a note so the spec says how it was made.
func (b *builder) apply(s *ferry.Service, opts Options) {
	var made []string
	if opts.Mesh != "" {
		s.Mesh.Mode = opts.Mesh
		made = append(made, "mesh="+opts.Mesh)
	}
	if opts.Secrets != "" {
		s.Secrets.Provider = opts.Secrets
		made = append(made, "secrets="+opts.Secrets)
	}
	if opts.HostVolume != "" {
		s.Storage = ferry.Storage{Kind: ferry.StorageHost, VolumeID: opts.HostVolume}
		made = append(made, "host_volume="+opts.HostVolume)
	}
	if opts.IngressHost != "" {
		s.Ingress.Host = opts.IngressHost
		made = append(made, "ingress_host="+opts.IngressHost)
	}
	if opts.Endpoint != "" {
		s.ObjectStore.Endpoint = opts.Endpoint
		s.ObjectStore.HealthPath = config.DefaultHealthPath // MinIO's, as on the platform
		made = append(made, "endpoint="+opts.Endpoint)
	}
	if len(made) > 0 {
		b.note("made with options: %s", strings.Join(made, " "))
	}
}

// jobName turns a compose service name into a Nomad job name: compose
// allows underscores and capitals, Nomad job and Terraform module names
// here do not.
func jobName(service string) string {
	return strings.ReplaceAll(strings.ToLower(service), "_", "-")
}

// Header is the comment block `ferry init` writes above the spec: a
// generated-by line and the notes. It holds no timestamp, so the same
// compose file always yields the same bytes. Each returned line is safe
// to write as one comment line: notes are split at line breaks and
// wrapped, and control characters are dropped.
func Header(notes []string) []string {
	lines := []string{
		"Written by `ferry init` from the compose file named in source below.",
		"Every value is explicit; review it, then run `ferry render`.",
	}
	for _, n := range notes {
		for i, l := range wrap(n, 70) {
			if i == 0 {
				lines = append(lines, "note: "+l)
				continue
			}
			lines = append(lines, "  "+l)
		}
	}
	return lines
}

// wrap splits text into lines of at most width runes where it can, at
// spaces; a line break in text always ends a line.
func wrap(text string, width int) []string {
	var lines []string
	for _, para := range strings.Split(text, "\n") {
		para = strings.Map(func(r rune) rune {
			if unicode.IsControl(r) {
				return ' '
			}
			return r
		}, para)
		line := ""
		for _, w := range strings.Fields(para) {
			if line != "" && len(line)+1+len(w) > width {
				lines = append(lines, line)
				line = ""
			}
			if line != "" {
				line += " "
			}
			line += w
		}
		lines = append(lines, line)
	}
	return lines
}
