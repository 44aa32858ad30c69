// Package standin is a stand-in for Overseerr, for tests that need an app
// which keeps its state in SQLite the way Overseerr does (REFERENCE.md):
//
//   - the database is <config>/db/db.sqlite3 in WAL mode, and the app never
//     checkpoints: every row stays in db.sqlite3-wal, the main file can be
//     a bare 4096-byte header with no tables;
//   - it never closes the database on stop, so nothing is checkpointed when
//     the process exits (the way a Node process killed on SIGTERM leaves it);
//   - <config>/settings.json holds secrets and is written on first start;
//   - GET /api/v1/status answers 200 without auth;
//   - an empty database under a settings.json that says the app was set up
//     is silently given a fresh schema, as Overseerr does, so tests can see
//     that failure mode (the users are gone).
package standin

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/ferry-migrate/ferry/internal/atomicfile"
)

// Version is what GET /api/v1/status reports.
const Version = "1.34.0"

// SeedUsers is how many users a first start creates.
const SeedUsers = 5

// SeedRequests is how many media requests a first start creates.
const SeedRequests = 20

// Options configures Run.
type Options struct {
	Addr      string // listen address, e.g. ":5055"
	ConfigDir string // the config root (/app/config in the image)

	// WriteInterval, when positive, inserts one media_request row per
	// interval while the app runs, so tests can see writes made during
	// replication.
	WriteInterval time.Duration

	// Ready, when not nil, is closed once the app serves.
	Ready chan<- struct{}

	Logger *slog.Logger
}

// Settings is the part of Overseerr's settings.json the stand-in writes.
// Every key and URL in it is a secret: it must never reach a log.
type Settings struct {
	ClientID string `json:"clientId"`
	Main     struct {
		APIKey string `json:"apiKey"`
	} `json:"main"`
	Public struct {
		Initialized bool `json:"initialized"`
	} `json:"public"`
	Sonarr []Integration `json:"sonarr"`
	Radarr []Integration `json:"radarr"`
}

// Integration is one Sonarr or Radarr server in settings.json.
type Integration struct {
	Name   string `json:"name"`
	URL    string `json:"url"`
	APIKey string `json:"apiKey"`
}

// DBPath is the database file below a config dir.
func DBPath(configDir string) string {
	return filepath.Join(configDir, "db", "db.sqlite3")
}

// SettingsPath is settings.json below a config dir.
func SettingsPath(configDir string) string {
	return filepath.Join(configDir, "settings.json")
}

// Run serves until ctx is done, then returns nil after the HTTP server
// stopped. Like Overseerr it never closes or checkpoints the database: the
// handle is left open on purpose, so a process that exits after Run
// returns leaves its rows in the -wal file.
func Run(ctx context.Context, o Options) error {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Join(o.ConfigDir, "db"), 0o755); err != nil {
		return fmt.Errorf("standin: %w", err)
	}
	setUp, err := ensureSettings(o.ConfigDir)
	if err != nil {
		return fmt.Errorf("standin: settings: %w", err)
	}
	db, err := openDB(ctx, DBPath(o.ConfigDir))
	if err != nil {
		return fmt.Errorf("standin: open database: %w", err)
	}
	created, err := ensureSchema(ctx, db)
	if err != nil {
		return fmt.Errorf("standin: schema: %w", err)
	}
	switch {
	case created && !setUp:
		if err := seed(ctx, db); err != nil {
			return fmt.Errorf("standin: seed: %w", err)
		}
		log.Info("first start: created schema and seeded", "users", SeedUsers, "requests", SeedRequests)
	case created:
		// Overseerr's behaviour, reproduced on purpose: settings say the
		// app was set up, the database is empty, and it carries on.
		log.Info("database has no tables; created a fresh schema")
	}

	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return fmt.Errorf("standin: %w", err)
	}
	srv := &http.Server{Handler: handler(db), ReadHeaderTimeout: 5 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("serving", "addr", ln.Addr().String(), "version", Version)
	if o.Ready != nil {
		close(o.Ready)
	}

	var tick <-chan time.Time
	if o.WriteInterval > 0 {
		t := time.NewTicker(o.WriteInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-tick:
			if err := writeRequest(ctx, db); err != nil && ctx.Err() == nil {
				log.Error("write request", "err", err)
			}
		case err := <-serveErr:
			return fmt.Errorf("standin: serve: %w", err)
		case <-ctx.Done():
			shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			err := srv.Shutdown(shutdown)
			log.Info("stopped without closing the database")
			return err
		}
	}
}

// ensureSettings writes settings.json with fresh secrets when it is absent
// and reports whether it said the app was already set up.
func ensureSettings(dir string) (setUp bool, err error) {
	path := SettingsPath(dir)
	b, err := os.ReadFile(path)
	if err == nil {
		var s Settings
		if err := json.Unmarshal(b, &s); err != nil {
			return false, fmt.Errorf("read %s: %w", path, err)
		}
		return s.Public.Initialized, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	var s Settings
	s.ClientID = secret(16)
	s.Main.APIKey = secret(32)
	s.Public.Initialized = true
	s.Sonarr = []Integration{{Name: "sonarr", URL: "http://sonarr-" + secret(4) + ".internal:8989", APIKey: secret(16)}}
	s.Radarr = []Integration{{Name: "radarr", URL: "http://radarr-" + secret(4) + ".internal:7878", APIKey: secret(16)}}
	b, err = json.MarshalIndent(s, "", "  ")
	if err != nil {
		return false, err
	}
	return false, atomicfile.WriteFile(path, b, 0o600)
}

func secret(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// openDB opens the database in WAL mode with automatic checkpoints off.
// One connection, like Overseerr's TypeORM sqlite driver.
func openDB(ctx context.Context, path string) (*sql.DB, error) {
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=wal_autocheckpoint(0)&_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return nil, err
	}
	if mode != "wal" {
		return nil, fmt.Errorf("journal_mode is %q, want wal", mode)
	}
	return db, nil
}

var schema = []string{
	`CREATE TABLE user (id INTEGER PRIMARY KEY AUTOINCREMENT, email TEXT NOT NULL UNIQUE, username TEXT, plexId INTEGER, permissions INTEGER NOT NULL DEFAULT 0, userType INTEGER NOT NULL DEFAULT 1, createdAt TEXT NOT NULL, updatedAt TEXT NOT NULL)`,
	`CREATE TABLE user_settings (id INTEGER PRIMARY KEY AUTOINCREMENT, locale TEXT NOT NULL DEFAULT '', region TEXT, userId INTEGER UNIQUE REFERENCES user(id) ON DELETE CASCADE)`,
	`CREATE TABLE media (id INTEGER PRIMARY KEY AUTOINCREMENT, mediaType TEXT NOT NULL, tmdbId INTEGER NOT NULL, tvdbId INTEGER, status INTEGER NOT NULL DEFAULT 1, createdAt TEXT NOT NULL, updatedAt TEXT NOT NULL)`,
	`CREATE TABLE media_request (id INTEGER PRIMARY KEY AUTOINCREMENT, status INTEGER NOT NULL, type TEXT NOT NULL, mediaId INTEGER REFERENCES media(id) ON DELETE CASCADE, requestedById INTEGER REFERENCES user(id) ON DELETE CASCADE, createdAt TEXT NOT NULL, updatedAt TEXT NOT NULL)`,
	`CREATE TABLE season (id INTEGER PRIMARY KEY AUTOINCREMENT, seasonNumber INTEGER NOT NULL, status INTEGER NOT NULL DEFAULT 1, mediaId INTEGER REFERENCES media(id) ON DELETE CASCADE)`,
	`CREATE TABLE season_request (id INTEGER PRIMARY KEY AUTOINCREMENT, seasonNumber INTEGER NOT NULL, status INTEGER NOT NULL DEFAULT 1, requestId INTEGER REFERENCES media_request(id) ON DELETE CASCADE)`,
	`CREATE TABLE issue (id INTEGER PRIMARY KEY AUTOINCREMENT, issueType INTEGER NOT NULL, status INTEGER NOT NULL DEFAULT 1, mediaId INTEGER REFERENCES media(id) ON DELETE CASCADE, createdById INTEGER REFERENCES user(id) ON DELETE CASCADE, createdAt TEXT NOT NULL)`,
	`CREATE TABLE issue_comment (id INTEGER PRIMARY KEY AUTOINCREMENT, message TEXT NOT NULL, userId INTEGER REFERENCES user(id) ON DELETE CASCADE, issueId INTEGER REFERENCES issue(id) ON DELETE CASCADE, createdAt TEXT NOT NULL)`,
	`CREATE TABLE session (id TEXT PRIMARY KEY, expiredAt INTEGER NOT NULL, json TEXT NOT NULL)`,
	`CREATE TABLE migrations (id INTEGER PRIMARY KEY AUTOINCREMENT, timestamp INTEGER NOT NULL, name TEXT NOT NULL)`,
}

// ensureSchema creates the tables when the database has none and reports
// whether it did.
func ensureSchema(ctx context.Context, db *sql.DB) (created bool, err error) {
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'user'`).Scan(&n); err != nil {
		return false, err
	}
	if n > 0 {
		return false, nil
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	for _, stmt := range schema {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return false, err
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO migrations (timestamp, name) VALUES (1603944374840, 'InitialMigration1603944374840'), (1672041273674, 'AddUserAvatarCacheFields1672041273674')`); err != nil {
		return false, err
	}
	return true, tx.Commit()
}

func seed(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	now := time.Now().UTC().Format(time.RFC3339Nano)
	for i := 1; i <= SeedUsers; i++ {
		if _, err := tx.ExecContext(ctx, `INSERT INTO user (email, username, plexId, permissions, createdAt, updatedAt) VALUES (?, ?, ?, ?, ?, ?)`,
			fmt.Sprintf("user%d@example.com", i), fmt.Sprintf("user%d", i), 1000+i, 2, now, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO user_settings (locale, region, userId) VALUES ('en', 'US', ?)`, i); err != nil {
			return err
		}
	}
	for i := 1; i <= SeedRequests; i++ {
		kind := "movie"
		if i%3 == 0 {
			kind = "tv"
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO media (mediaType, tmdbId, status, createdAt, updatedAt) VALUES (?, ?, 2, ?, ?)`, kind, 500+i, now, now)
		if err != nil {
			return err
		}
		mediaID, _ := res.LastInsertId()
		res, err = tx.ExecContext(ctx, `INSERT INTO media_request (status, type, mediaId, requestedById, createdAt, updatedAt) VALUES (2, ?, ?, ?, ?, ?)`, kind, mediaID, 1+i%SeedUsers, now, now)
		if err != nil {
			return err
		}
		if kind == "tv" {
			reqID, _ := res.LastInsertId()
			if _, err := tx.ExecContext(ctx, `INSERT INTO season (seasonNumber, mediaId) VALUES (1, ?)`, mediaID); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO season_request (seasonNumber, requestId) VALUES (1, ?)`, reqID); err != nil {
				return err
			}
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO issue (issueType, mediaId, createdById, createdAt) VALUES (1, 1, 2, ?)`, now); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO issue_comment (message, userId, issueId, createdAt) VALUES ('audio out of sync', 2, 1, ?)`, now); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO session (id, expiredAt, json) VALUES (?, ?, '{"cookie":{}}')`, secret(8), time.Now().Add(720*time.Hour).UnixMilli()); err != nil {
		return err
	}
	return tx.Commit()
}

// writeRequest inserts one movie request, as a user would.
func writeRequest(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	now := time.Now().UTC().Format(time.RFC3339Nano)
	res, err := tx.ExecContext(ctx, `INSERT INTO media (mediaType, tmdbId, status, createdAt, updatedAt) VALUES ('movie', abs(random() % 100000), 2, ?, ?)`, now, now)
	if err != nil {
		return err
	}
	mediaID, _ := res.LastInsertId()
	if _, err := tx.ExecContext(ctx, `INSERT INTO media_request (status, type, mediaId, requestedById, createdAt, updatedAt) VALUES (1, 'movie', ?, (SELECT min(id) FROM user), ?, ?)`, mediaID, now, now); err != nil {
		return err
	}
	return tx.Commit()
}

func handler(db *sql.DB) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"version": Version, "commitTag": "standin", "updateAvailable": false,
			"commitsBehind": 0, "restartRequired": false,
		})
	})
	// Not an Overseerr endpoint: lets tests count what the app sees
	// without reading its files.
	mux.HandleFunc("GET /standin/counts", func(w http.ResponseWriter, r *http.Request) {
		counts := map[string]int{}
		for _, t := range []string{"user", "media_request"} {
			var n int
			if err := db.QueryRowContext(r.Context(), "SELECT count(*) FROM "+t).Scan(&n); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			counts[t] = n
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(counts)
	})
	return mux
}
