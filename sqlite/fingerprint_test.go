package sqlite_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/sqlite"
	"github.com/ferry-migrate/ferry/sqlite/sqlitetest"
)

func TestMain(m *testing.M) {
	sqlitetest.HelperMain()
	os.Exit(m.Run())
}

func fileSum(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return string(s[:])
}

func dirState(t testing.TB, dir string) map[string]string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, e := range ents {
		m[e.Name()] = fileSum(t, filepath.Join(dir, e.Name()))
	}
	return m
}

func exec1(t testing.TB, path, q string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(q); err != nil {
		t.Fatal(err)
	}
}

// The WAL-only fixture counts all its rows, and fingerprinting it leaves
// every byte of the directory (db, -wal, -shm) as it was, adding nothing.
func TestFingerprintWALOnlyLeavesSourceUntouched(t *testing.T) {
	dir := t.TempDir()
	path := sqlitetest.WALOnly(t, dir)
	before := dirState(t, dir)

	fp, err := sqlite.FingerprintFile(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if !fp.OK() {
		t.Fatalf("integrity = %q", fp.Integrity)
	}
	for name, want := range sqlitetest.OverseerrTables {
		tb, ok := fp.Table(name)
		if !ok || tb.Rows != want {
			t.Errorf("table %s: rows = %d (present %v), want %d", name, tb.Rows, ok, want)
		}
	}
	after := dirState(t, dir)
	if len(after) != len(before) {
		t.Fatalf("files before %d, after %d", len(before), len(after))
	}
	for name, sum := range before {
		if after[name] != sum {
			t.Errorf("%s changed", name)
		}
	}

	// Copying the main file alone loses everything: the fingerprint tells.
	lone := filepath.Join(t.TempDir(), "lone.sqlite3")
	copyFile(t, path, lone)
	fl, err := sqlite.FingerprintFile(context.Background(), lone)
	if err != nil {
		t.Fatal(err)
	}
	if d := sqlite.Diff(fp, fl); len(d) == 0 {
		t.Fatal("main file alone fingerprints equal to db+wal")
	}
}

func copyFile(t testing.TB, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// A checkpointed and vacuumed copy has a different layout but the same
// fingerprint; a changed row, an added row and a schema change are named.
func TestFingerprintDiff(t *testing.T) {
	ctx := context.Background()
	src := sqlitetest.WALOnly(t, t.TempDir())
	a, err := sqlite.FingerprintFile(ctx, src)
	if err != nil {
		t.Fatal(err)
	}

	vac := filepath.Join(t.TempDir(), "vac.db")
	exec1(t, src, "VACUUM INTO '"+vac+"'")
	b, err := sqlite.FingerprintFile(ctx, vac)
	if err != nil {
		t.Fatal(err)
	}
	if d := sqlite.Diff(a, b); d != nil {
		t.Fatalf("vacuumed copy differs: %v", d)
	}

	exec1(t, vac, `UPDATE issue_comment SET message = 'edited' WHERE id = 3; INSERT INTO media_request(status, mediaId, requestedById) VALUES (1, 1, 1)`)
	c, err := sqlite.FingerprintFile(ctx, vac)
	if err != nil {
		t.Fatal(err)
	}
	d := sqlite.Diff(a, c)
	got := map[string]string{}
	for _, x := range d {
		got[x.Table] = x.What
	}
	if len(d) != 2 || got["issue_comment"] != "content" || got["media_request"] != "rows" {
		t.Fatalf("diff = %v", d)
	}
	if d := sqlite.DiffTables(a, c, []string{"user", "media"}); d != nil {
		t.Fatalf("user tables differ: %v", d)
	}
	if d := sqlite.DiffTables(a, c, []string{"user", "nope"}); len(d) != 1 || d[0].What != "missing" {
		t.Fatalf("missing table: %v", d)
	}

	exec1(t, vac, `CREATE INDEX extra ON user(username)`)
	e, err := sqlite.FingerprintFile(ctx, vac)
	if err != nil {
		t.Fatal(err)
	}
	if d := sqlite.Diff(c, e); len(d) != 1 || d[0].What != "schema" {
		t.Fatalf("schema change: %v", d)
	}

	// JSON round trip with stable names.
	js, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"integrity":"ok"`, `"schema_hash"`, `"tables"`, `"rows"`, `"hash"`} {
		if !strings.Contains(string(js), k) {
			t.Errorf("json lacks %s: %s", k, js)
		}
	}
	var back sqlite.Fingerprint
	if err := json.Unmarshal(js, &back); err != nil || sqlite.Diff(a, &back) != nil {
		t.Fatalf("round trip: %v %v", err, sqlite.Diff(a, &back))
	}
	if s := a.String(); !strings.Contains(s, "issue_comment") || !strings.Contains(s, "integrity: ok") {
		t.Fatalf("String() = %s", s)
	}
}

// Duplicate rows do not cancel out; row order does not matter.
func TestFingerprintOrderAndDuplicates(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p1, p2, p3 := filepath.Join(dir, "1.db"), filepath.Join(dir, "2.db"), filepath.Join(dir, "3.db")
	exec1(t, p1, `CREATE TABLE t(a, b); INSERT INTO t VALUES (1,'x'),(2,'y'),(2,'y')`)
	exec1(t, p2, `CREATE TABLE t(a, b); INSERT INTO t VALUES (2,'y'),(2,'y'),(1,'x')`)
	exec1(t, p3, `CREATE TABLE t(a, b); INSERT INTO t VALUES (1,'x'),(1,'x'),(1,'x')`)
	f1, _ := sqlite.FingerprintFile(ctx, p1)
	f2, _ := sqlite.FingerprintFile(ctx, p2)
	f3, err := sqlite.FingerprintFile(ctx, p3)
	if err != nil {
		t.Fatal(err)
	}
	if d := sqlite.Diff(f1, f2); d != nil {
		t.Fatalf("order matters: %v", d)
	}
	if d := sqlite.Diff(f1, f3); len(d) != 1 || d[0].What != "content" {
		t.Fatalf("duplicates: %v", d)
	}
	// Integer 1 and text '1' are different values.
	p4, p5 := filepath.Join(dir, "4.db"), filepath.Join(dir, "5.db")
	exec1(t, p4, `CREATE TABLE t(a); INSERT INTO t VALUES (1)`)
	exec1(t, p5, `CREATE TABLE t(a); INSERT INTO t VALUES ('1')`)
	f4, _ := sqlite.FingerprintFile(ctx, p4)
	f5, _ := sqlite.FingerprintFile(ctx, p5)
	if sqlite.Diff(f4, f5) == nil {
		t.Fatal("1 and '1' hash equal")
	}
}

func TestFingerprintCorrupt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	sqlitetest.Random(t, path, 2)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	junk := make([]byte, 4096)
	for i := range junk {
		junk[i] = 0xAB
	}
	if _, err := f.WriteAt(junk, 4096*50); err != nil {
		t.Fatal(err)
	}
	f.Close()
	fp, err := sqlite.FingerprintFile(context.Background(), path)
	if err == nil && fp.OK() {
		t.Fatal("corrupt database fingerprints as ok")
	}
}

// BenchmarkFingerprint runs FingerprintFile and sha256sum on the same file
// and reports their ratio (goal <= 2).
func BenchmarkFingerprint(b *testing.B) {
	sizes := []int{64}
	if !testing.Short() {
		sizes = append(sizes, 512)
	}
	sum, err := exec.LookPath("sha256sum")
	if err != nil {
		b.Skip("sha256sum not found")
	}
	for _, mib := range sizes {
		b.Run(fmt.Sprintf("%dMiB", mib), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "r.db")
			sqlitetest.Random(b, path, mib)
			if _, err := os.ReadFile(path); err != nil { // warm the page cache
				b.Fatal(err)
			}
			var fpTime, shaTime time.Duration
			for b.Loop() {
				t0 := time.Now()
				if out, err := exec.Command(sum, path).CombinedOutput(); err != nil {
					b.Fatalf("%v: %s", err, out)
				}
				t1 := time.Now()
				fp, err := sqlite.FingerprintFile(context.Background(), path)
				if err != nil || !fp.OK() {
					b.Fatal(err, fp)
				}
				fpTime += time.Since(t1)
				shaTime += t1.Sub(t0)
			}
			b.ReportMetric(fpTime.Seconds()/float64(b.N), "fingerprint-s")
			b.ReportMetric(shaTime.Seconds()/float64(b.N), "sha256sum-s")
			b.ReportMetric(fpTime.Seconds()/shaTime.Seconds(), "ratio")
		})
	}
}
