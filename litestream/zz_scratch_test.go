package litestream

import (
	"fmt"
	"context"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/sqlite/sqlitetest"
	"github.com/superfly/ltx"
)

func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestScratchEncode(t *testing.T) {
	src := os.Getenv("SCRATCH_DB")
	if src == "" {
		src = filepath.Join(t.TempDir(), "r.db")
		sqlitetest.Random(t, src, 512)
	}
	f, _ := os.Open(src)
	fi, _ := f.Stat()
	hdr := ltx.Header{Version: ltx.Version, Flags: ltx.HeaderFlagNoChecksum, PageSize: 4096,
		Commit: uint32(fi.Size() / 4096), MinTXID: 1, MaxTXID: 1, Timestamp: 1, WALOffset: 32}
	for _, w := range []int{1, 2, 3} {
		c0, t0 := cpuNow(), time.Now()
		n, err := encodeSnapshot(context.Background(), io.Discard, f, hdr, w, nil)
		t.Logf("workers %d: %d bytes in %s, cpu %s, err %v", w, n, time.Since(t0), cpuNow()-c0, err)
	}
}

func TestScratchIC(t *testing.T) {
	src := os.Getenv("SCRATCH_DB")
	for _, q := range []string{"", "&_pragma=mmap_size(2147483648)", "&_pragma=cache_size(-65536)", "&_pragma=mmap_size(2147483648)&_pragma=cache_size(-65536)", ""} {
		t0 := time.Now()
		err := integrityCheckQ(context.Background(), src, q)
		t.Logf("%q: %s %v", q, time.Since(t0), err)
	}
}

func TestScratchFetch(t *testing.T) {
	ctx := context.Background()
	srv := s3testVersity(t)
	bucket := srv.CreateBucket(t, "")
	r := openReplica(t, srv, bucket, "db")
	r.LeaseSettle = time.Millisecond
	src := os.Getenv("SCRATCH_DB")
	if _, err := r.Seed(ctx, src, SeedOptions{}); err != nil {
		t.Fatal(err)
	}
	plan, _ := lsCalc(ctx, r)
	for i := 0; i < 2; i++ {
		c0, t0 := cpuNow(), time.Now()
		fetch := newPlanFetcher(ctx, r.client, plan)
		n, err := io.Copy(io.Discard, fetch.file(0))
		fetch.close()
		t.Logf("fetch %d bytes %s cpu %s %v", n, time.Since(t0), cpuNow()-c0, err)
	}
	// decode alone from memory
	fetch := newPlanFetcher(ctx, r.client, plan)
	data, _ := io.ReadAll(fetch.file(0))
	fetch.close()
	dir := t.TempDir()
	for i, mode := range []string{"fresh", "fresh", "falloc", "falloc", "nowb", "nowb", "fresh"} {
		out, _ := os.Create(filepath.Join(dir, fmt.Sprint("out", i)))
		if mode == "falloc" {
			syscall.Fallocate(int(out.Fd()), 0, 0, 536391680)
		}
		noWriteback = mode == "nowb"
		c0, t0 := cpuNow(), time.Now()
		var st applyState
		_, _, err := st.apply(bytesReader(data), out, 0)
		st.close()
		d := time.Since(t0)
		t1 := time.Now()
		out.Sync()
		t.Logf("%s decode %s cpu %s sync %s %v", mode, d, cpuNow()-c0, time.Since(t1), err)
		out.Close()
		os.Remove(out.Name())
	}
	noWriteback = false
}
