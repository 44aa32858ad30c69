package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry/backup"
	"github.com/ferry-migrate/ferry/config"
	"github.com/ferry-migrate/ferry/docker"
	"github.com/ferry-migrate/ferry/docker/dockertest"
	"github.com/ferry-migrate/ferry/internal/testenv/registrytest"
	"github.com/ferry-migrate/ferry/internal/testenv/s3test"
	"github.com/ferry-migrate/ferry/migrate"
	"github.com/ferry-migrate/ferry/nomad/nomadtest"
	"github.com/ferry-migrate/ferry/runbook"
	"github.com/ferry-migrate/ferry/sqlite"
)

// world is everything a migration touches, real where it can be: the
// Docker engine running the stand-in as compose service "overseerr" of a
// "downloads" project, versitygw as the object store, a registry holding
// the images' manifest lists, and the Nomad double.
type world struct {
	t       *testing.T
	dir     string // holds ferry.hcl, docker-compose.yml and .ferry/
	spec    string
	host    *docker.Host
	service *dockertest.Service
	s3      *s3test.Server
	nomad   *nomadtest.Server
	env     []string // what ferry runs with
}

const e2eCompose = `# The downloads stack (comments must survive ferry finish).
services:
  # Requests for films and series.
  overseerr:
    image: sctx/overseerr:latest
    volumes:
      - config-overseerr:/app/config

  # TV.
  sonarr:
    image: lscr.io/linuxserver/sonarr:latest # keep me
    depends_on: []

volumes:
  config-overseerr:
`

func newWorld(t *testing.T, outcome nomadtest.Outcome, appEnv ...string) *world {
	t.Helper()
	if testing.Short() {
		t.Skip("runs containers, an S3 server and the Nomad double")
	}
	w := &world{t: t, dir: t.TempDir()}
	w.host = dockertest.Connect(t, docker.Options{})
	img := dockertest.StandinImage(t, w.host)
	w.service = dockertest.ComposeService(t, w.host, "downloads"+dockertest.Suffix(), "overseerr", img, "config-overseerr", "/app/config", appEnv)
	if err := w.host.Start(context.Background(), w.service.ContainerID); err != nil {
		t.Fatal(err)
	}
	dockertest.WaitHTTP(t, "http://"+dockertest.IP(t, w.host, w.service.ContainerID)+":5055/api/v1/status", 30e9)

	w.s3 = s3test.Versitygw(t)
	bucket := w.s3.CreateBucket(t, "overseerr-litestream")

	reg := registrytest.Start(t, "", "")
	image := reg + "/sctx/overseerr:1.34.0"
	lsImage := reg + "/litestream/litestream:0.5.18"
	registrytest.PushIndex(t, image, []string{"amd64", "arm64"})
	registrytest.PushIndex(t, lsImage, []string{"amd64", "arm64"})

	w.nomad = nomadtest.New(t, nomadtest.Options{
		Nodes:                  []nomadtest.Node{{Name: "hestia", Arch: "amd64"}, {Name: "pi-1", Arch: "arm64"}},
		Plugins:                []nomadtest.Plugin{{ID: "glusterfs", NodesHealthy: 2, NodesExpected: 2, ControllersHealthy: 1}},
		MemoryOversubscription: true,
	})
	w.nomad.Script("overseerr", nomadtest.Behavior{
		Outcome: outcome,
		Stderr:  map[string]string{"litestream-restore": "litestream-restore: db: restored; integrity check passed\n"},
	})
	w.nomad.OnBatch(configWriter)

	svc, err := config.Load("../../examples/overseerr/ferry.hcl")
	if err != nil {
		t.Fatal(err)
	}
	svc.Image, svc.Litestream.Image = image, lsImage
	svc.Source.Project = w.service.Project
	svc.ObjectStore = w.s3.Store(bucket)
	svc.Ingress.Host = "" // nothing to reach here
	w.spec = filepath.Join(w.dir, "ferry.hcl")
	mustWrite(t, w.spec, config.Encode(svc))
	mustWrite(t, filepath.Join(w.dir, "docker-compose.yml"), []byte(e2eCompose))
	w.env = []string{
		"NOMAD_ADDR=" + w.nomad.URL,
		"LITESTREAM_ACCESS_KEY_ID=" + w.s3.AccessKeyID,
		"LITESTREAM_SECRET_ACCESS_KEY=" + w.s3.SecretAccessKey,
	}
	for _, kv := range w.env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	return w
}

func mustWrite(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// configWriter plays the config-writer batch job: it "copies" each file
// its script names from the variable-backed template and prints the
// sha256 of what it wrote, as sha256sum does.
func configWriter(run nomadtest.BatchRun) nomadtest.BatchResult {
	cp := regexp.MustCompile(`cp "\$\{NOMAD_SECRETS_DIR\}/(\w+)" "([^"]+)"`)
	args, _ := run.Task.Config["args"].([]any)
	script, _ := args[len(args)-1].(string)
	var out strings.Builder
	for _, m := range cp.FindAllStringSubmatch(script, -1) {
		sum := sha256.Sum256([]byte(run.Files["secrets/"+m[1]]))
		fmt.Fprintf(&out, "%s  %s\n", hex.EncodeToString(sum[:]), m[2])
	}
	return nomadtest.BatchResult{Stdout: out.String()}
}

// ferry runs the CLI in process and returns its exit code and output.
func (w *world) ferry(args ...string) (int, string, string) {
	w.t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func (w *world) journal() *runbook.Journal {
	w.t.Helper()
	j, err := runbook.OpenJournal(filepath.Join(w.dir, ".ferry", "overseerr", "journal.json"), "overseerr")
	if err != nil {
		w.t.Fatal(err)
	}
	return j
}

// sourceFingerprint backs up the compose service's database (stopped or
// not: the stand-in writes nothing by itself) and fingerprints it.
func (w *world) sourceFingerprint() *sqlite.Fingerprint {
	w.t.Helper()
	ctx := context.Background()
	c, err := w.host.Find(ctx, w.service.Project, "overseerr")
	if err != nil {
		w.t.Fatal(err)
	}
	dir := filepath.Join(w.t.TempDir(), "check")
	m, err := w.host.Backup(ctx, c, dir, backup.Request{Databases: []string{"/app/config/db/db.sqlite3"}}, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	fp, err := sqlite.FingerprintFile(ctx, m.Files[0].Local(dir))
	if err != nil {
		w.t.Fatal(err)
	}
	return fp
}

func (w *world) running() bool {
	w.t.Helper()
	st, err := w.host.State(context.Background(), w.service.ContainerID)
	if err != nil {
		w.t.Fatal(err)
	}
	return st.Running
}

// secrets are the values that must appear nowhere: the stand-in's
// settings.json secrets and the object store's secret key.
func (w *world) secrets() []string {
	w.t.Helper()
	b, err := os.ReadFile(filepath.Join(w.dir, ".ferry", "overseerr", "backup", "pre", "data", "app", "config", "settings.json"))
	if err != nil {
		w.t.Fatal(err)
	}
	var s struct {
		ClientID string `json:"clientId"`
		Main     struct {
			APIKey string `json:"apiKey"`
		} `json:"main"`
		Sonarr []struct{ APIKey string } `json:"sonarr"`
	}
	if err := json.Unmarshal(b, &s); err != nil || s.ClientID == "" || s.Main.APIKey == "" {
		w.t.Fatalf("settings.json: %v", err)
	}
	return []string{s.ClientID, s.Main.APIKey, s.Sonarr[0].APIKey, w.s3.SecretAccessKey}
}

// noSecrets fails when a secret appears in any output, the journal, the
// state directory's non-backup files, the rendered files or the job the
// cluster received.
func (w *world) noSecrets(outputs ...string) {
	w.t.Helper()
	var hay []string
	hay = append(hay, outputs...)
	filepath.WalkDir(w.dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if strings.Contains(p, string(filepath.Separator)+"backup"+string(filepath.Separator)) {
			return nil // the backups hold settings.json by design (0600)
		}
		b, _ := os.ReadFile(p)
		hay = append(hay, p+"\n"+string(b))
		return nil
	})
	for _, v := range w.nomad.JobVersions("overseerr") {
		b, _ := json.Marshal(v)
		hay = append(hay, "job: "+string(b))
	}
	if _, sub, ok := w.nomad.Job("overseerr"); ok && sub != nil {
		hay = append(hay, "submission: "+sub.Source)
	}
	for _, s := range w.secrets() {
		for _, h := range hay {
			if strings.Contains(h, s) {
				w.t.Errorf("a secret appears in %.80q", h)
			}
		}
	}
}

// TestMigrateVerifyFinish: the task list's migration end to end, then
// verify, status, the hold, and finish.
func TestMigrateVerifyFinish(t *testing.T) {
	w := newWorld(t, nomadtest.Healthy)
	before := w.sourceFingerprint()

	code, out, errOut := w.ferry("plan", "-f", w.spec)
	if code != exitPending {
		t.Fatalf("plan exit %d, want %d (steps pending)\n%s%s", code, exitPending, out, errOut)
	}

	code, out, errOut = w.ferry("migrate", "-f", w.spec)
	if code != 0 {
		t.Fatalf("migrate exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("migrate:\n%s%s", out, errOut)
	if !strings.Contains(out, "downtime") || w.running() {
		t.Fatalf("migrate: want a downtime and the compose container stopped\n%s", out)
	}
	j := w.journal()
	for _, r := range j.Steps {
		if r.State != runbook.StateDone {
			t.Errorf("step %s is %s", r.Name, r.State)
		}
	}
	if j.Facts[migrate.FactVerifiedAt] == "" || j.Facts[migrate.FactDowntime] == "" {
		t.Errorf("journal facts %v: want verified_at and downtime", j.Facts)
	}
	// The replica holds exactly the stopped source.
	src, err := (&migrate.Migration{Dir: filepath.Join(w.dir, ".ferry", "overseerr")}).SourceFingerprint("db")
	if err != nil {
		t.Fatal(err)
	}
	if d := sqlite.Diff(before, src); len(d) > 0 {
		t.Fatalf("the source changed while migrating: %v", d)
	}

	code, planOut, _ := w.ferry("plan", "-f", w.spec)
	if code != 0 {
		t.Errorf("plan after migrate exit %d, want 0\n%s", code, planOut)
	}
	code, verifyOut, errOut := w.ferry("verify", "-f", w.spec, "--json")
	if code != 0 || !strings.Contains(verifyOut, `"name": "user data db"`) {
		t.Fatalf("verify exit %d\n%s%s", code, verifyOut, errOut)
	}
	code, statusOut, _ := w.ferry("status", "-f", w.spec)
	if code != 0 || !strings.Contains(statusOut, "verified_at") {
		t.Errorf("status exit %d\n%s", code, statusOut)
	}

	// The hold: finish refuses for 24h unless --now.
	code, _, errOut = w.ferry("finish", "-f", w.spec)
	if code == 0 || !strings.Contains(errOut, "hold period") {
		t.Fatalf("finish during the hold: exit %d\n%s", code, errOut)
	}
	code, finishOut, errOut := w.ferry("finish", "-f", w.spec, "--now")
	if code != 0 {
		t.Fatalf("finish --now exit %d\n%s%s", code, finishOut, errOut)
	}
	if _, err := w.host.State(context.Background(), w.service.ContainerID); err == nil {
		t.Error("the compose container still exists after finish")
	}
	composeNow, _ := os.ReadFile(filepath.Join(w.dir, "docker-compose.yml"))
	want := strings.Replace(e2eCompose, "  # Requests for films and series.\n  overseerr:\n    image: sctx/overseerr:latest\n    volumes:\n      - config-overseerr:/app/config\n\n", "", 1)
	if string(composeNow) != want {
		t.Errorf("compose file after finish:\n%s\nwant:\n%s", composeNow, want)
	}
	w.noSecrets(out, errOut, planOut, verifyOut, statusOut, finishOut)
}

// TestFailedDeployRollsBack: a deployment that fails ends with the compose
// container running on unchanged data, and the journal saying why.
func TestFailedDeployRollsBack(t *testing.T) {
	w := newWorld(t, nomadtest.MainFails)
	before := w.sourceFingerprint()
	code, out, errOut := w.ferry("migrate", "-f", w.spec, "--deploy-timeout", "60s")
	if code != exitError {
		t.Fatalf("migrate exit %d, want %d\n%s%s", code, exitError, out, errOut)
	}
	if !strings.Contains(errOut, "rolled back") {
		t.Errorf("stderr does not say it rolled back:\n%s", errOut)
	}
	if !w.running() {
		t.Fatal("the compose container is not running after the rollback")
	}
	if d := sqlite.Diff(before, w.sourceFingerprint()); len(d) > 0 {
		t.Fatalf("the source's data changed: %v", d)
	}
	j := w.journal()
	deploy := j.Lookup(migrate.StepDeploy)
	if deploy == nil || deploy.Error == "" || !strings.Contains(deploy.Error, "overseerr") {
		t.Fatalf("journal's deploy record %+v does not say why", deploy)
	}
	if stop := j.Lookup(migrate.StepStop); stop.State != runbook.StateUndone {
		t.Errorf("stop step is %s, want undone", stop.State)
	}
	w.noSecrets(out, errOut)
}

// TestMigrateWarm: replicating while the app still writes, then a final
// sync after the stop: the replica equals the stopped app's database,
// rows written during replication included.
func TestMigrateWarm(t *testing.T) {
	w := newWorld(t, nomadtest.Healthy, "WRITE_INTERVAL=50ms")
	img := dockertest.LitestreamImage(t, w.host)
	code, out, errOut := w.ferry("migrate", "-f", w.spec, "--warm", "--warm-image", img)
	if code != 0 {
		t.Fatalf("migrate --warm: exit %d\n%s%s", code, out, errOut)
	}
	j := w.journal()
	if j.Lookup(migrate.StepWarm) == nil || j.Lookup(migrate.StepProof+":db").State != runbook.StateDone {
		t.Fatalf("journal %+v: want the warm step and the proof done", j.Steps)
	}
	// The proof compared the replica with the stopped source; check the
	// stopped source holds rows written after the warm replication began.
	src, err := (&migrate.Migration{Dir: filepath.Join(w.dir, ".ferry", "overseerr")}).SourceFingerprint("db")
	if err != nil {
		t.Fatal(err)
	}
	if mr, _ := src.Table("media_request"); mr.Rows <= 20 {
		t.Errorf("media_request has %d rows: the app's writes during replication are missing", mr.Rows)
	}
	helpers, err := w.host.Helpers(context.Background(), &docker.Container{ID: w.service.ContainerID, Name: "overseerr"}, docker.WarmOptions{})
	if err != nil || len(helpers) != 0 {
		t.Errorf("helpers left behind: %d, %v", len(helpers), err)
	}
	w.noSecrets(out, errOut)
}
