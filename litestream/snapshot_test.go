package litestream

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"

	"os"
	"path/filepath"
	"testing"

	"github.com/superfly/ltx"

	"github.com/ferry-migrate/ferry/internal/testenv/s3test"
	"github.com/ferry-migrate/ferry/sqlite/sqlitetest"
)

// encodeWithLibrary is what litestream does for a snapshot: every page
// but the lock page, in order, through ltx.Encoder.
func encodeWithLibrary(t *testing.T, f interface {
	ReadAt([]byte, int64) (int, error)
}, hdr ltx.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc, err := ltx.NewEncoder(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if err := enc.EncodeHeader(hdr); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, hdr.PageSize)
	for pgno := uint32(1); pgno <= hdr.Commit; pgno++ {
		if pgno == hdr.LockPgno() {
			continue
		}
		if _, err := f.ReadAt(data, int64(pgno-1)*int64(hdr.PageSize)); err != nil {
			t.Fatal(err)
		}
		if err := enc.EncodePage(ltx.PageHeader{Pgno: pgno}, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// patternFile is a database-sized ReaderAt with distinct page contents,
// mostly compressible, without a file.
type patternFile struct{ pageSize int64 }

func (p patternFile) ReadAt(b []byte, off int64) (int, error) {
	for i := 0; i < len(b); i += int(p.pageSize) {
		pg := uint64(off/p.pageSize) + uint64(i)/uint64(p.pageSize)
		page := b[i:min(len(b), i+int(p.pageSize))]
		clear(page)
		for j := 0; j+8 <= len(page) && j < 256; j += 8 {
			binary.BigEndian.PutUint64(page[j:], pg*0x9e3779b97f4a7c15+uint64(j))
		}
	}
	return len(b), nil
}

// ferry's parallel snapshot encoder writes the same bytes as ltx.Encoder,
// for a real database and across the lock page.
func TestEncodeSnapshotMatchesEncoder(t *testing.T) {
	ctx := context.Background()
	src := filepath.Join(t.TempDir(), "r.db")
	sqlitetest.Random(t, src, 3)
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	hdr := ltx.Header{Version: ltx.Version, Flags: ltx.HeaderFlagNoChecksum, PageSize: 4096,
		Commit: uint32(fi.Size() / 4096), MinTXID: 1, MaxTXID: 1, Timestamp: 1700000000000, WALOffset: 32}
	cases := []struct {
		name string
		f    interface {
			ReadAt([]byte, int64) (int, error)
		}
		hdr ltx.Header
	}{{"random", f, hdr}}
	if !testing.Short() {
		// 64 KiB pages put the lock page (at 1 GiB) at page 16385.
		big := hdr
		big.PageSize, big.Commit = 65536, 16385+300
		cases = append(cases, struct {
			name string
			f    interface {
				ReadAt([]byte, int64) (int, error)
			}
			hdr ltx.Header
		}{"lockpage", patternFile{65536}, big})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := encodeWithLibrary(t, tc.f, tc.hdr)
			for _, workers := range []int{1, 3} {
				var got bytes.Buffer
				n, err := encodeSnapshot(ctx, &got, tc.f, tc.hdr, workers, nil)
				if err != nil {
					t.Fatal(err)
				}
				if n != int64(got.Len()) || !bytes.Equal(got.Bytes(), want) {
					t.Fatalf("workers=%d: %d bytes (n=%d), library %d; differ", workers, got.Len(), n, len(want))
				}
			}
			if err := ltx.NewDecoder(bytes.NewReader(want)).Verify(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A failing reader fails the encoding instead of producing a file.
func TestEncodeSnapshotReadError(t *testing.T) {
	hdr := ltx.Header{Version: ltx.Version, Flags: ltx.HeaderFlagNoChecksum, PageSize: 4096,
		Commit: 1000, MinTXID: 1, MaxTXID: 1, Timestamp: 1, WALOffset: 32}
	var buf bytes.Buffer
	_, err := encodeSnapshot(context.Background(), &buf, shortFile{500 * 4096}, hdr, 2, nil)
	if err == nil {
		t.Fatal("no error for a short file")
	}
}

type shortFile struct{ size int64 }

func (s shortFile) ReadAt(b []byte, off int64) (int, error) {
	n := max(0, min(int64(len(b)), s.size-off))
	clear(b[:n])
	if int(n) < len(b) {
		return int(n), os.ErrClosed
	}
	return int(n), nil
}

// A replica ferry seeded is a starting point for litestream's replicate
// of the restored database: it continues the replica (new TXIDs after
// the seed's) and a restore then holds the later writes.
func TestReplicateAfterSeedAndRestore(t *testing.T) {
	ctx := context.Background()
	srv := s3test.Local(t)
	bucket := srv.CreateBucket(t, "")
	src := sqlitetest.WALOnly(t, t.TempDir())
	r := openReplica(t, srv, bucket, "db")
	seeded, err := r.Seed(ctx, src, SeedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	restored := filepath.Join(t.TempDir(), "app.db")
	if _, err := r.Restore(ctx, restored, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	rep, err := r.Replicate(ctx, restored, ReplicateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	writeRows(t, restored, 25)
	pos, err := rep.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if pos.TXID <= seeded.TXID {
		t.Fatalf("replicate after restore at txid %d, seed %d", pos.TXID, seeded.TXID)
	}
	want := fingerprint(t, restored)
	if tb, _ := want.Table("media"); tb.Rows != sqlitetest.OverseerrTables["media"]+25 {
		t.Fatalf("media rows %d", tb.Rows)
	}
	again := filepath.Join(t.TempDir(), "again.db")
	if _, err := r.Restore(ctx, again, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	sameFingerprint(t, want, again)
}

// A source that changed while it was read in place aborts the upload:
// the replica holds nothing.
func TestSeedSnapshotChangedAborts(t *testing.T) {
	ctx := context.Background()
	srv := s3test.Local(t)
	r := openReplica(t, srv, srv.CreateBucket(t, ""), "db")
	src := filepath.Join(t.TempDir(), "r.db")
	sqlitetest.Random(t, src, 30) // more than one multipart part
	ps, commit, ok, err := directSource(src)
	if err != nil || !ok {
		t.Fatalf("direct source: %v %v", ok, err)
	}
	_, err = r.seedSnapshot(ctx, src, ps, commit, func() error { return errStagingChanged })
	if !errors.Is(err, errStagingChanged) {
		t.Fatalf("err = %v", err)
	}
	info, err := r.Inspect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Version != 0 {
		t.Fatalf("replica after aborted seed: %+v", info)
	}
}

// A replica seeded from a database read in place (several encoder chunks)
// restores to the same bytes with ferry's restore and litestream's.
func TestSeedInPlaceRestoresLikeLibrary(t *testing.T) {
	ctx := context.Background()
	srv := s3test.Local(t)
	bucket := srv.CreateBucket(t, "")
	src := filepath.Join(t.TempDir(), "r.db")
	sqlitetest.Random(t, src, 5)
	if _, ok := func() (uint32, bool) { _, c, ok, _ := directSource(src); return c, ok }(); !ok {
		t.Fatal("fixture not read in place")
	}
	r := openReplica(t, srv, bucket, "db")
	if _, err := r.Seed(ctx, src, SeedOptions{}); err != nil {
		t.Fatal(err)
	}
	lib := openReplica(t, srv, bucket, "db")
	lib.libraryRestore = true
	dir := t.TempDir()
	a, b := filepath.Join(dir, "fast"), filepath.Join(dir, "lib")
	if _, err := r.Restore(ctx, a, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := lib.Restore(ctx, b, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	if fileBytes(t, a) != fileBytes(t, b) {
		t.Fatal("fast and library restores differ")
	}
	sameFingerprint(t, fingerprint(t, src), a)
}
