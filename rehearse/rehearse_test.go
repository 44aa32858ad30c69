package rehearse_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/config"
	"github.com/ferry-migrate/ferry/examples"
	"github.com/ferry-migrate/ferry/internal/testenv"
	"github.com/ferry-migrate/ferry/rehearse"
)

func spec(t testing.TB) *ferry.Service {
	t.Helper()
	svc, err := config.Load("../examples/overseerr/ferry.hcl")
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func needTools(t testing.TB) {
	t.Helper()
	testenv.LookPath(t, "busybox")
	testenv.LookPath(t, "litestream")
}

func TestRehearseBundledExample(t *testing.T) {
	needTools(t)
	for _, warm := range []bool{false, true} {
		t.Run(fmt.Sprintf("warm=%t", warm), func(t *testing.T) {
			res, err := rehearse.Run(context.Background(), rehearse.Options{
				Service: spec(t), DataFS: examples.OverseerrData, DataRoot: examples.OverseerrDataRoot, Warm: warm,
			})
			if err != nil {
				t.Fatal(err)
			}
			if !res.Parity || res.Downtime <= 0 {
				t.Fatalf("parity %t downtime %s", res.Parity, res.Downtime)
			}
			src, got := res.Source["db"], res.Restored["db"]
			if u, _ := src.Table("user"); u.Rows != 5 {
				t.Fatalf("source has %d users, the bundled data has 5", u.Rows)
			}
			if u, _ := got.Table("user"); u.Rows != 5 {
				t.Fatalf("restored %d users, want 5", u.Rows)
			}
		})
	}
}

// bigData is the bundled example's config directory with mib MiB of
// random blobs added to its database, in a table that is not user data.
func bigData(b *testing.B, mib int) string {
	b.Helper()
	dir := b.TempDir()
	if err := os.CopyFS(dir, mustSub(b)); err != nil {
		b.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "db", "db.sqlite3")+"?_pragma=journal_mode(wal)")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE blob (id INTEGER PRIMARY KEY, data BLOB)`); err != nil {
		b.Fatal(err)
	}
	tx, _ := db.Begin()
	buf := make([]byte, 1024)
	for i := 0; i < mib*1024; i++ {
		rand.Read(buf)
		if _, err := tx.Exec(`INSERT INTO blob (data) VALUES (?)`, buf); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	return dir
}

// BenchmarkDowntime measures the downtime of a rehearsal (source stopped
// -> new allocation healthy) cold (seed after the stop) and warm (seed
// before it, final sync after), in the same run, with the ratio.
//
//	go test -run '^$' -bench Downtime -benchtime 1x ./rehearse/
func BenchmarkDowntime(b *testing.B) {
	needTools(b)
	mib := 512
	if testing.Short() {
		mib = 64
	}
	data := bigData(b, mib)
	var cold, warm float64
	for b.Loop() {
		for _, w := range []bool{false, true} {
			res, err := rehearse.Run(context.Background(), rehearse.Options{Service: spec(b), Data: data, Warm: w})
			if err != nil {
				b.Fatal(err)
			}
			if w {
				warm += res.Downtime.Seconds()
			} else {
				cold += res.Downtime.Seconds()
			}
		}
	}
	b.ReportMetric(float64(mib), "MiB")
	b.ReportMetric(cold/float64(b.N), "cold-s")
	b.ReportMetric(warm/float64(b.N), "warm-s")
	b.ReportMetric(warm/cold, "warm/cold")
}
func mustSub(t testing.TB) fs.FS {
	sub, err := fs.Sub(examples.OverseerrData, examples.OverseerrDataRoot)
	if err != nil {
		t.Fatal(err)
	}
	return sub
}

// TestRehearseTwoDatabases: the media server's two databases, under a
// path with spaces, are restored by one script and arrive whole.
func TestRehearseTwoDatabases(t *testing.T) {
	needTools(t)
	svc, err := config.Load("../examples/media-server/ferry.hcl")
	if err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	dbDir := filepath.Join(data, "Library", "Application Support", "Plex Media Server", "Plug-in Support", "Databases")
	if err := os.MkdirAll(dbDir, 0o755); err != nil {
		t.Fatal(err)
	}
	tables := map[string][]string{
		"com.plexapp.plugins.library.db":       svc.Databases[0].UserTables,
		"com.plexapp.plugins.library.blobs.db": svc.Databases[1].UserTables,
	}
	for file, names := range tables {
		db, err := sql.Open("sqlite", "file:"+filepath.Join(dbDir, file)+"?_pragma=journal_mode(wal)")
		if err != nil {
			t.Fatal(err)
		}
		for i, n := range names {
			if _, err := db.Exec(fmt.Sprintf(`CREATE TABLE %s (id INTEGER PRIMARY KEY, v TEXT)`, n)); err != nil {
				t.Fatal(err)
			}
			for r := 0; r <= i; r++ {
				db.Exec(fmt.Sprintf(`INSERT INTO %s (v) VALUES ('row %d')`, n, r))
			}
		}
		db.Close()
	}
	if err := os.WriteFile(filepath.Join(dbDir, "..", "..", "Preferences.xml"), []byte(`<Preferences PlexOnlineToken="canary-token"/>`), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := rehearse.Run(context.Background(), rehearse.Options{Service: svc, Data: data})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Parity || len(res.Restored) != 2 {
		t.Fatalf("parity %t, restored %d databases", res.Parity, len(res.Restored))
	}
	if b, _ := res.Restored["blobs"].Table("blobs"); b.Rows != 1 {
		t.Errorf("blobs has %d rows, want 1", b.Rows)
	}
	if m, _ := res.Restored["library"].Table("metadata_item_views"); m.Rows != 7 {
		t.Errorf("metadata_item_views has %d rows, want 7", m.Rows)
	}
}
