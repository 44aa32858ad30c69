package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/backup"
	"github.com/ferry-migrate/ferry/runbook"
	"github.com/ferry-migrate/ferry/sqlite"
)

// Check is one verification and its outcome.
type Check struct {
	Name    string `json:"name"`
	OK      bool   `json:"ok"`
	Skipped bool   `json:"skipped,omitempty"`
	Detail  string `json:"detail"`
}

// Report is the outcome of Verify.
type Report struct {
	Checks []Check `json:"checks"`
}

// OK reports whether every check that ran passed.
func (r *Report) OK() bool {
	for _, c := range r.Checks {
		if !c.OK && !c.Skipped {
			return false
		}
	}
	return true
}

func (r *Report) add(name string, ok bool, format string, args ...any) {
	r.Checks = append(r.Checks, Check{Name: name, OK: ok, Detail: fmt.Sprintf(format, args...)})
}

func (r *Report) skip(name, why string) {
	r.Checks = append(r.Checks, Check{Name: name, Skipped: true, Detail: why})
}

func (r *Report) String() string {
	var b strings.Builder
	for _, c := range r.Checks {
		mark := "ok  "
		switch {
		case c.Skipped:
			mark = "skip"
		case !c.OK:
			mark = "FAIL"
		}
		fmt.Fprintf(&b, "%s %-28s %s\n", mark, c.Name, c.Detail)
	}
	return b.String()
}

// VerifyError is a verification with failed checks.
type VerifyError struct{ Report *Report }

func (e *VerifyError) Error() string {
	var failed []string
	for _, c := range e.Report.Checks {
		if !c.OK && !c.Skipped {
			failed = append(failed, c.Name+" ("+c.Detail+")")
		}
	}
	return "verification failed: " + strings.Join(failed, "; ")
}

// VerifyOptions says which checks reach outside the cluster and the
// object store.
type VerifyOptions struct {
	// Ingress also fetches the health path through the Traefik host.
	Ingress bool
	// Integrations calls the status APIs of the apps named in the
	// service's settings (Sonarr, Radarr, Plex).
	Integrations bool
}

// Verify proves the deployed service is healthy and holds the users'
// data: job healthy, restore task ran, replica at or past the seed, the
// health endpoint answers, user tables equal the stopped source, and the
// integrations answer. It needs the journal of a migration that reached
// the deploy step. A failed check is in the report, not an error; errors
// are for verification that could not run at all.
func (m *Migration) Verify(ctx context.Context) (*Report, error) {
	j, err := runbook.OpenJournal(m.JournalPath(), m.Service.Name)
	if err != nil {
		return nil, err
	}
	rep := &Report{}
	st, err := m.Cluster.Status(ctx)
	if err != nil {
		rep.add("job healthy", false, "%v", err)
		st = &JobStatus{}
	} else {
		rep.add("job healthy", st.Running && st.Healthy, "running=%t healthy=%t node=%s", st.Running, st.Healthy, st.Node)
	}
	m.checkRestoreLog(rep, st.RestoreLog)
	for _, db := range m.Service.Databases {
		m.checkReplica(ctx, rep, j, db.Name)
	}
	m.checkHTTP(ctx, rep, "status endpoint", st.URL)
	if m.VerifyOptions.Ingress && m.Service.Ingress.Host != "" {
		m.checkHTTP(ctx, rep, "status via ingress", "https://"+m.Service.Ingress.Host)
	} else if m.Service.Ingress.Host != "" {
		rep.skip("status via ingress", "not asked for (--ingress)")
	}
	for _, db := range m.Service.Databases {
		m.checkUserData(ctx, rep, db.Name, db.UserTables)
	}
	m.checkIntegrations(ctx, rep)
	return rep, nil
}

// Restore task log markers written by the rendered restore script
// (render.RestoreScript): a restore, a database kept on the alloc disk, or
// a declared-new service starting empty.
var restoreMarkers = []string{"restored; integrity check passed", "keeping it, no restore", "starting on an empty database"}

func (m *Migration) checkRestoreLog(rep *Report, log string) {
	if len(m.Service.Databases) == 0 {
		return
	}
	for _, mark := range restoreMarkers {
		if strings.Contains(log, mark) {
			rep.add("restore task", true, "log says %q", mark)
			return
		}
	}
	rep.add("restore task", false, "its log shows neither a restore nor a skip on an existing database")
}

func (m *Migration) checkReplica(ctx context.Context, rep *Report, j *runbook.Journal, db string) {
	name := "replica " + db
	pos, err := m.Replicas[db].Latest(ctx)
	if err != nil {
		rep.add(name, false, "%v", err)
		return
	}
	seed := j.Lookup(StepSeed + ":" + db)
	if seed == nil || seed.Facts["txid"] == "" {
		rep.add(name, true, "at txid %d (no seed recorded to compare with)", pos.TXID)
		return
	}
	want, _ := strconv.ParseUint(seed.Facts["txid"], 10, 64)
	switch {
	case pos.TXID < want:
		rep.add(name, false, "at txid %d, behind the seed's %d: something replicated over it", pos.TXID, want)
	case pos.TXID == want:
		rep.add(name, true, "at the seed's txid %d (no writes since)", pos.TXID)
	default:
		rep.add(name, true, "advancing: txid %d past the seed's %d, latest write %s", pos.TXID, want, pos.Time.UTC().Format(time.RFC3339))
	}
}

func (m *Migration) checkHTTP(ctx context.Context, rep *Report, name, base string) {
	if base == "" {
		rep.skip(name, "the cluster gave no address reachable from here")
		return
	}
	url := strings.TrimSuffix(base, "/") + m.Service.Health.Path
	code, err := m.get(ctx, url, nil)
	if err != nil {
		rep.add(name, false, "GET %s: %v", url, err)
		return
	}
	rep.add(name, code == http.StatusOK, "GET %s: %d", url, code)
}

func (m *Migration) checkUserData(ctx context.Context, rep *Report, db string, tables []string) {
	name := "user data " + db
	src, err := m.SourceFingerprint(db)
	if err != nil {
		rep.add(name, false, "%v", err)
		return
	}
	i := slices.IndexFunc(m.Service.Databases, func(d ferry.Database) bool { return d.Name == db })
	dbSpec := m.Service.Databases[i]
	got, pos, err := m.restoreAndFingerprint(ctx, dbSpec, nil)
	if err != nil {
		rep.add(name, false, "restore the replica: %v", err)
		return
	}
	var diffs []sqlite.Difference
	if len(tables) == 0 {
		diffs = sqlite.Diff(src, got)
	} else {
		diffs = sqlite.DiffTables(src, got, tables)
	}
	if len(diffs) > 0 {
		var msgs []string
		for _, d := range diffs {
			msgs = append(msgs, d.String())
		}
		rep.add(name, false, "replica at txid %d differs from the stopped source: %s", pos.TXID, strings.Join(msgs, "; "))
		return
	}
	n := len(tables)
	if n == 0 {
		n = len(src.Tables)
	}
	rep.add(name, true, "%d table(s) equal the stopped source (replica txid %d)", n, pos.TXID)
}

func (m *Migration) get(ctx context.Context, target string, header http.Header) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return 0, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	c := m.HTTP
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		// Callers name the URL; keep only the cause. Headers (keys) are
		// never in the error.
		var ue *url.Error
		if errors.As(err, &ue) {
			return 0, ue.Err
		}
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// integration is an app the service talks to, as its settings name it.
type integration struct {
	name   string
	url    string
	header http.Header
}

// checkIntegrations calls each integration's status API with its key
// from the settings file (Overseerr's settings.json shape).
func (m *Migration) checkIntegrations(ctx context.Context, rep *Report) {
	var ints []integration
	dir := m.backupDir("final")
	b, err := backup.Verify(dir)
	if err == nil {
		for _, p := range m.Service.ConfigFiles {
			if f, ok := b.Lookup(p); ok && strings.HasSuffix(p, ".json") {
				if data, err := os.ReadFile(f.Local(dir)); err == nil {
					ints = append(ints, overseerrIntegrations(data)...)
				}
			}
		}
	}
	for _, in := range ints {
		name := "integration " + in.name
		if !m.VerifyOptions.Integrations {
			rep.skip(name, "not contacted (pass --integrations)")
			continue
		}
		code, err := m.get(ctx, in.url, in.header)
		switch {
		case err != nil:
			rep.add(name, false, "%s: %v", in.url, err)
		default:
			rep.add(name, code == http.StatusOK, "%s: %d", in.url, code)
		}
	}
}

func overseerrIntegrations(settings []byte) []integration {
	type arr struct {
		Name     string `json:"name"`
		Hostname string `json:"hostname"`
		Port     int    `json:"port"`
		APIKey   string `json:"apiKey"`
		UseSSL   bool   `json:"useSsl"`
		BaseURL  string `json:"baseUrl"`
	}
	var s struct {
		Plex *struct {
			IP     string `json:"ip"`
			Port   int    `json:"port"`
			UseSSL bool   `json:"useSsl"`
		} `json:"plex"`
		Sonarr []arr `json:"sonarr"`
		Radarr []arr `json:"radarr"`
	}
	if json.Unmarshal(settings, &s) != nil {
		return nil
	}
	scheme := func(ssl bool) string {
		if ssl {
			return "https"
		}
		return "http"
	}
	var out []integration
	for kind, list := range map[string][]arr{"sonarr": s.Sonarr, "radarr": s.Radarr} {
		for _, a := range list {
			if a.Hostname == "" {
				continue
			}
			out = append(out, integration{
				name:   kind + " " + a.Name,
				url:    fmt.Sprintf("%s://%s:%d%s/api/v3/system/status", scheme(a.UseSSL), a.Hostname, a.Port, strings.TrimSuffix(a.BaseURL, "/")),
				header: http.Header{"X-Api-Key": {a.APIKey}},
			})
		}
	}
	if p := s.Plex; p != nil && p.IP != "" {
		out = append(out, integration{name: "plex", url: fmt.Sprintf("%s://%s:%d/identity", scheme(p.UseSSL), p.IP, p.Port)})
	}
	slices.SortFunc(out, func(a, b integration) int { return strings.Compare(a.name, b.name) })
	return out
}
