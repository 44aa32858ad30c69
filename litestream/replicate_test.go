package litestream

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/internal/testenv/s3test"
	"github.com/ferry-migrate/ferry/sqlite/sqlitetest"
)

// Warm migration: replicate a live database, write more, final Sync, stop;
// the restore holds every row. A second writer is refused while the first
// runs and admitted after Close.
func TestReplicateWarm(t *testing.T) {
	ctx := context.Background()
	srv := s3test.Local(t)
	bucket := srv.CreateBucket(t, "")
	src := sqlitetest.WALOnly(t, t.TempDir())
	r := openReplica(t, srv, bucket, "db")

	rep, err := r.Replicate(ctx, src, ReplicateOptions{Holder: "sidecar"})
	if err != nil {
		t.Fatal(err)
	}
	other := openReplica(t, srv, bucket, "db")
	var held *LeaseHeldError
	if _, err := other.Replicate(ctx, src, ReplicateOptions{}); !errors.As(err, &held) || held.Lease.Holder != "sidecar" {
		t.Fatalf("second writer: %v", err)
	}
	writeRows(t, src, 50)
	pos, err := rep.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Close(ctx); err != nil {
		t.Fatal(err)
	}
	want := fingerprint(t, src)
	if tb, _ := want.Table("media"); tb.Rows != sqlitetest.OverseerrTables["media"]+50 {
		t.Fatalf("media rows %d", tb.Rows)
	}
	dst := filepath.Join(t.TempDir(), "r.db")
	got, err := r.Restore(ctx, dst, RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.TXID < pos.TXID {
		t.Fatalf("restored txid %d < synced %d", got.TXID, pos.TXID)
	}
	sameFingerprint(t, want, dst)

	info, err := r.Inspect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Lease != nil {
		t.Fatalf("lease not released: %+v", info.Lease)
	}
}

// ferry's restore (LTX pages straight into the file) produces the same
// bytes as litestream's own restore, latest and at an earlier TXID, from a
// replica of many incremental files.
func TestFastRestoreMatchesLibrary(t *testing.T) {
	ctx := context.Background()
	srv := s3test.Local(t)
	bucket := srv.CreateBucket(t, "")
	src := sqlitetest.WALOnly(t, t.TempDir())
	r := openReplica(t, srv, bucket, "db")
	rep, err := r.Replicate(ctx, src, ReplicateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var positions []Position
	for range 5 {
		writeRows(t, src, 30)
		pos, err := rep.Sync(ctx)
		if err != nil {
			t.Fatal(err)
		}
		positions = append(positions, pos)
	}
	if err := rep.Close(ctx); err != nil {
		t.Fatal(err)
	}
	info, _ := r.Inspect(ctx)
	if info.Levels[0].Files < 3 {
		t.Fatalf("want several L0 files: %+v", info.Levels)
	}
	lib := openReplica(t, srv, bucket, "db")
	lib.libraryRestore = true
	for _, opt := range []RestoreOptions{{}, {TXID: positions[2].TXID}} {
		dir := t.TempDir()
		a, b := filepath.Join(dir, "fast"), filepath.Join(dir, "lib")
		pa, err := r.Restore(ctx, a, opt)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := lib.Restore(ctx, b, opt); err != nil {
			t.Fatal(err)
		}
		if fileBytes(t, a) != fileBytes(t, b) {
			t.Fatalf("restore %+v: fast and library outputs differ", opt)
		}
		if opt.TXID != 0 && pa.TXID != opt.TXID {
			t.Fatalf("restored txid %d, asked %d", pa.TXID, opt.TXID)
		}
	}
}

// A local-directory replica (litestream's file layout) seeds, refuses a
// second concurrent writer and restores.
func TestDirReplica(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	r := OpenDir(dir, testLogger(t))
	r.LeaseSettle = 10 * time.Millisecond
	src := sqlitetest.WALOnly(t, t.TempDir())
	l := r.leaser("other")
	if err := l.acquire(ctx); err != nil {
		t.Fatal(err)
	}
	var held *LeaseHeldError
	if _, err := r.Seed(ctx, src, SeedOptions{}); !errors.As(err, &held) {
		t.Fatalf("seed under a held lease: %v", err)
	}
	if err := l.release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Seed(ctx, src, SeedOptions{}); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "r.db")
	if _, err := r.Restore(ctx, dst, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	sameFingerprint(t, fingerprint(t, src), dst)
}
