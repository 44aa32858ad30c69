// Package sqlitetest builds SQLite databases for tests: random blobs of a
// given size, and a fixture that looks like Overseerr after `docker stop`
// (every row in the -wal, a 4096-byte main file).
//
// A test package that uses WALOnly must call HelperMain from its TestMain,
// before m.Run: the fixture is written by a child process (the test binary
// re-executed) that exits without closing its connection, because closing
// the last connection checkpoints the WAL into the main file.
package sqlitetest

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite"
)

// helperEnv names the fixture path the re-executed test binary writes.
const helperEnv = "FERRY_SQLITETEST_WALONLY"

// HelperMain turns the process into the fixture writer when it was
// re-executed by WALOnly; otherwise it returns at once. Call it first in
// TestMain.
func HelperMain() {
	path := os.Getenv(helperEnv)
	if path == "" {
		return
	}
	if err := writeWALOnly(path); err != nil {
		fmt.Fprintln(os.Stderr, "sqlitetest helper:", err)
		os.Exit(2)
	}
	// Exit without closing the connection, as a stopped app that never
	// checkpoints leaves its files.
	os.Exit(0)
}

// OverseerrTables are the tables of the WALOnly fixture with their row
// counts.
var OverseerrTables = map[string]int64{
	"user":           25,
	"user_settings":  25,
	"media":          400,
	"media_request":  300,
	"season":         600,
	"season_request": 450,
	"issue":          20,
	"issue_comment":  60,
	"session":        10,
	"migrations":     80,
}

var overseerrSchema = []string{
	`CREATE TABLE "user" (id INTEGER PRIMARY KEY AUTOINCREMENT, email varchar NOT NULL UNIQUE, username varchar, plexId integer, permissions integer NOT NULL DEFAULT 0, avatar varchar NOT NULL, createdAt datetime NOT NULL DEFAULT (datetime('now')), updatedAt datetime NOT NULL DEFAULT (datetime('now')))`,
	`CREATE TABLE "user_settings" (id INTEGER PRIMARY KEY AUTOINCREMENT, locale varchar NOT NULL DEFAULT '', region varchar, userId integer UNIQUE REFERENCES "user"(id) ON DELETE CASCADE)`,
	`CREATE TABLE "media" (id INTEGER PRIMARY KEY AUTOINCREMENT, mediaType varchar NOT NULL, tmdbId integer NOT NULL, tvdbId integer, status integer NOT NULL DEFAULT 1, ratingKey varchar, createdAt datetime NOT NULL DEFAULT (datetime('now')))`,
	`CREATE INDEX "IDX_media_tmdbId" ON "media" (tmdbId)`,
	`CREATE TABLE "media_request" (id INTEGER PRIMARY KEY AUTOINCREMENT, status integer NOT NULL, mediaId integer REFERENCES "media"(id) ON DELETE CASCADE, requestedById integer REFERENCES "user"(id), is4k boolean NOT NULL DEFAULT 0, createdAt datetime NOT NULL DEFAULT (datetime('now')))`,
	`CREATE TABLE "season" (id INTEGER PRIMARY KEY AUTOINCREMENT, seasonNumber integer NOT NULL, status integer NOT NULL DEFAULT 1, mediaId integer REFERENCES "media"(id) ON DELETE CASCADE)`,
	`CREATE TABLE "season_request" (id INTEGER PRIMARY KEY AUTOINCREMENT, seasonNumber integer NOT NULL, status integer NOT NULL DEFAULT 1, requestId integer REFERENCES "media_request"(id) ON DELETE CASCADE)`,
	`CREATE TABLE "issue" (id INTEGER PRIMARY KEY AUTOINCREMENT, issueType integer NOT NULL, status integer NOT NULL DEFAULT 1, problemSeason integer NOT NULL DEFAULT 0, mediaId integer REFERENCES "media"(id), createdById integer REFERENCES "user"(id))`,
	`CREATE TABLE "issue_comment" (id INTEGER PRIMARY KEY AUTOINCREMENT, message text NOT NULL, userId integer REFERENCES "user"(id), issueId integer REFERENCES "issue"(id) ON DELETE CASCADE)`,
	`CREATE TABLE "session" (expiredAt bigint NOT NULL DEFAULT 0, id varchar(255) PRIMARY KEY NOT NULL, json text NOT NULL)`,
	`CREATE TABLE "migrations" (id INTEGER PRIMARY KEY AUTOINCREMENT, timestamp bigint NOT NULL, name varchar NOT NULL)`,
}

func writeWALOnly(path string) error {
	ctx := context.Background()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(wal)&_pragma=wal_autocheckpoint(0)")
	if err != nil {
		return err
	}
	db.SetMaxOpenConns(1)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	for _, s := range overseerrSchema {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	ins := func(n int64, q string, args func(i int64) []any) error {
		for i := int64(1); i <= n; i++ {
			if _, err := tx.ExecContext(ctx, q, args(i)...); err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
		}
		return nil
	}
	T := OverseerrTables
	steps := []error{
		ins(T["user"], `INSERT INTO "user"(email, username, plexId, permissions, avatar) VALUES (?,?,?,?,?)`, func(i int64) []any {
			return []any{fmt.Sprintf("user%d@example.com", i), fmt.Sprintf("user%d", i), r.Int64N(1e7), 2, "/avatar.png"}
		}),
		ins(T["user_settings"], `INSERT INTO user_settings(locale, region, userId) VALUES ('en', 'US', ?)`, func(i int64) []any { return []any{i} }),
		ins(T["media"], `INSERT INTO media(mediaType, tmdbId, tvdbId, status, ratingKey) VALUES (?,?,?,?,?)`, func(i int64) []any {
			return []any{[]string{"movie", "tv"}[i%2], 1000 + i, r.Int64N(1e6), 1 + i%5, fmt.Sprint(r.Int64())}
		}),
		ins(T["media_request"], `INSERT INTO media_request(status, mediaId, requestedById, is4k) VALUES (?,?,?,?)`, func(i int64) []any {
			return []any{1 + i%3, 1 + i%T["media"], 1 + i%T["user"], i%7 == 0}
		}),
		ins(T["season"], `INSERT INTO season(seasonNumber, status, mediaId) VALUES (?,?,?)`, func(i int64) []any { return []any{i % 10, 1 + i%5, 1 + i%T["media"]} }),
		ins(T["season_request"], `INSERT INTO season_request(seasonNumber, status, requestId) VALUES (?,?,?)`, func(i int64) []any { return []any{i % 10, 1 + i%3, 1 + i%T["media_request"]} }),
		ins(T["issue"], `INSERT INTO issue(issueType, status, mediaId, createdById) VALUES (?,?,?,?)`, func(i int64) []any { return []any{1 + i%4, 1 + i%2, 1 + i%T["media"], 1 + i%T["user"]} }),
		ins(T["issue_comment"], `INSERT INTO issue_comment(message, userId, issueId) VALUES (?,?,?)`, func(i int64) []any {
			return []any{fmt.Sprintf("comment %d: it does not play %x", i, r.Uint64()), 1 + i%T["user"], 1 + i%T["issue"]}
		}),
		ins(T["session"], `INSERT INTO session(expiredAt, id, json) VALUES (?,?,?)`, func(i int64) []any {
			return []any{1_900_000_000_000 + i, fmt.Sprintf("sess-%016x", r.Uint64()), `{"cookie":{},"userId":1}`}
		}),
		ins(T["migrations"], `INSERT INTO migrations(timestamp, name) VALUES (?,?)`, func(i int64) []any { return []any{1_600_000_000_000 + i, fmt.Sprintf("Migration%d", i)} }),
	}
	for _, err := range steps {
		if err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.Size() != 4096 {
		return fmt.Errorf("main file is %d bytes, want 4096 (rows were checkpointed)", fi.Size())
	}
	return nil
}

// WALOnly writes the Overseerr-like fixture into dir and returns the path
// of its database: a 4096-byte main file holding no tables, with every
// table and row (OverseerrTables) only in the -wal, as a process leaves
// them when it exits without closing. The -shm is left too.
func WALOnly(t testing.TB, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "db.sqlite3")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+path)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("write WAL-only fixture (does TestMain call sqlitetest.HelperMain?): %v\n%s", err, out)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	wi, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != 4096 || wi.Size() == 0 {
		t.Fatalf("fixture: main file %d bytes, wal %d bytes; want 4096 and > 0", fi.Size(), wi.Size())
	}
	return path
}

// Random creates a database at path holding about mib MiB of random
// 1 KiB blobs in table "blobs", in WAL mode with the WAL checkpointed, and
// returns the number of rows. The content depends only on mib.
func Random(t testing.TB, path string, mib int) int64 {
	t.Helper()
	n, err := CreateRandom(context.Background(), path, mib)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// CreateRandom is Random for callers outside tests (benchmark scripts).
func CreateRandom(ctx context.Context, path string, mib int) (int64, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(off)&_pragma=synchronous(off)")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, `CREATE TABLE blobs (id INTEGER PRIMARY KEY, data BLOB NOT NULL)`); err != nil {
		return 0, err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(ctx, `INSERT INTO blobs(data) VALUES (?)`)
	if err != nil {
		return 0, err
	}
	r := rand.NewChaCha8([32]byte{byte(mib), byte(mib >> 8)})
	buf := make([]byte, 1024)
	n := int64(mib) * 1024 * 1024 / 1370 // 3 rows of 1 KiB per 4 KiB page
	for range n {
		r.Read(buf)
		if _, err := st.ExecContext(ctx, buf); err != nil {
			return 0, err
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	if _, err := db.ExecContext(ctx, `PRAGMA journal_mode=wal`); err != nil {
		return 0, err
	}
	return n, nil
}
