package migrate

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/backup"
)

// TestIntegrationsAnsweredPerIntegration: each integration named in
// Overseerr's settings is called with its own key and reported alone.
func TestIntegrationsAnsweredPerIntegration(t *testing.T) {
	sonarr := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/sonarr/api/v3/system/status" || r.Header.Get("X-Api-Key") != "sonarr-key" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, `{"version":"4"}`)
	}))
	defer sonarr.Close()
	radarr := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "wrong key", http.StatusUnauthorized)
	}))
	defer radarr.Close()
	plex := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/identity" {
			fmt.Fprint(w, "<MediaContainer/>")
		}
	}))
	defer plex.Close()

	hp := func(u string) (string, string) {
		h, p, _ := net.SplitHostPort(strings.TrimPrefix(u, "http://"))
		return h, p
	}
	sh, sp := hp(sonarr.URL)
	rh, rp := hp(radarr.URL)
	ph, pp := hp(plex.URL)
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "settings.json"), fmt.Appendf(nil, `{
	  "plex": {"ip": %q, "port": %s, "useSsl": false},
	  "sonarr": [{"name": "Sonarr", "hostname": %q, "port": %s, "apiKey": "sonarr-key", "baseUrl": "/sonarr"}],
	  "radarr": [{"name": "Radarr", "hostname": %q, "port": %s, "apiKey": "radarr-key-SECRET"}]
	}`, ph, pp, sh, sp, rh, rp), 0o600)

	m := &Migration{
		Service:       &ferry.Service{ConfigFiles: []string{"/app/config/settings.json"}},
		Dir:           t.TempDir(),
		VerifyOptions: VerifyOptions{Integrations: true},
	}
	// The final backup holds the settings, as the final-backup step leaves it.
	fetch := backup.DirFetcher(func(p string) (string, error) { return filepath.Join(src, filepath.Base(p)), nil })
	if _, err := backup.Write(context.Background(), m.backupDir("final"), fetch, backup.Request{Files: m.Service.ConfigFiles}, backup.Options{}); err != nil {
		t.Fatal(err)
	}
	rep := &Report{}
	m.checkIntegrations(context.Background(), rep)
	got := map[string]bool{}
	for _, c := range rep.Checks {
		got[c.Name] = c.OK
		if strings.Contains(c.Detail, "SECRET") {
			t.Errorf("check %q quotes a key: %s", c.Name, c.Detail)
		}
	}
	want := map[string]bool{"integration plex": true, "integration sonarr Sonarr": true, "integration radarr Radarr": false}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("checks %v, want %v", rep.Checks, want)
	}

	// Not asked for: reported as skipped, nothing contacted.
	m.VerifyOptions.Integrations = false
	rep = &Report{}
	m.checkIntegrations(context.Background(), rep)
	for _, c := range rep.Checks {
		if !c.Skipped {
			t.Errorf("%s ran without --integrations", c.Name)
		}
	}
	if !rep.OK() {
		t.Error("skipped checks fail the report")
	}
}
