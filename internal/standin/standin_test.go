package standin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry/internal/standin"
	"github.com/ferry-migrate/ferry/sqlite"
)

// TestStandinEmptyDatabase shows the failure mode a backup without the
// -wal causes: Overseerr (and the stand-in) silently starts over.
func TestStandinEmptyDatabase(t *testing.T) {
	ctx := context.Background()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	run := func(cfg string) {
		ctx, cancel := context.WithCancel(ctx)
		ready := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			done <- standin.Run(ctx, standin.Options{Addr: "127.0.0.1:0", ConfigDir: cfg, Ready: ready, Logger: log})
		}()
		select {
		case <-ready:
		case err := <-done:
			t.Fatal(err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	orig := t.TempDir()
	run(orig)
	// What copying db.sqlite3 alone (with settings.json) gives.
	moved := t.TempDir()
	if err := os.MkdirAll(filepath.Join(moved, "db"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"settings.json", "db/db.sqlite3"} {
		b, err := os.ReadFile(filepath.Join(orig, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(moved, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	fp, err := sqlite.FingerprintFile(ctx, standin.DBPath(moved))
	if err != nil {
		t.Fatal(err)
	}
	if len(fp.Tables) != 0 {
		t.Fatalf("main file alone has tables %v; the stand-in must keep everything in the -wal", fp.Tables)
	}
	run(moved)
	fp, err = sqlite.FingerprintFile(ctx, standin.DBPath(moved))
	if err != nil {
		t.Fatal(err)
	}
	users, ok := fp.Table("user")
	if !ok || users.Rows != 0 {
		t.Fatalf("after a start on the main file alone: user table %+v (present %v), want a fresh empty schema", users, ok)
	}
	fp, err = sqlite.FingerprintFile(ctx, standin.DBPath(orig))
	if err != nil {
		t.Fatal(err)
	}
	if users, _ := fp.Table("user"); users.Rows != standin.SeedUsers {
		t.Fatalf("original (main file + -wal) has %d users, want %d", users.Rows, standin.SeedUsers)
	}

	// settings.json is private and its secrets never reach the log.
	fi, err := os.Stat(standin.SettingsPath(orig))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("settings.json: %v, %v; want mode 0600", fi, err)
	}
	b, err := os.ReadFile(standin.SettingsPath(orig))
	if err != nil {
		t.Fatal(err)
	}
	var s standin.Settings
	if err := json.Unmarshal(b, &s); err != nil || s.Main.APIKey == "" || len(s.Sonarr) == 0 {
		t.Fatalf("settings.json %s: %v; want secrets", b, err)
	}
	for _, secret := range []string{s.ClientID, s.Main.APIKey, s.Sonarr[0].APIKey, s.Radarr[0].URL} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("a settings secret appears in the log")
		}
	}
}
