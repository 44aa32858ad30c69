package litestream

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	ferry "github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/internal/testenv/s3test"
	"github.com/ferry-migrate/ferry/sqlite/sqlitetest"
)

// BenchmarkReplica measures, against versitygw on loopback, Seed and
// Restore of a database of random 1 KiB blobs and, in the same run, a raw
// multipart PUT and a GET of the same bytes. Metrics:
//
//	seed-vs-put, restore-vs-get: throughput ratio to raw (goal >= 0.7)
//	restore-rss-MiB: peak RSS of a process that only restores (goal <= 150
//	at 512 MiB), measured in a child process
//
// go test -run '^$' -bench Replica -benchtime 1x ./litestream/   (add -short for 64 MiB only)
func BenchmarkReplica(b *testing.B) {
	sizes := []int{64}
	if !testing.Short() {
		sizes = append(sizes, 512)
	}
	srv := s3test.Versitygw(b)
	for _, mib := range sizes {
		b.Run(fmt.Sprintf("%dMiB", mib), func(b *testing.B) {
			ctx := context.Background()
			dir := b.TempDir()
			src := filepath.Join(dir, "src.db")
			sqlitetest.Random(b, src, mib)
			fi, _ := os.Stat(src)
			bucket := srv.CreateBucket(b, "")
			var put, get, seed, restore time.Duration
			var rss int64
			for i := 0; b.Loop(); i++ {
				put += timed(b, func() error { return rawPut(ctx, srv, bucket, src) })
				get += timed(b, func() error { return rawGet(ctx, srv, bucket, filepath.Join(dir, fmt.Sprint("get", i))) })

				path := fmt.Sprint("db", i)
				r := openReplica(b, srv, bucket, path)
				r.LeaseSettle = time.Millisecond
				seed += timed(b, func() error { _, err := r.Seed(ctx, src, SeedOptions{}); return err })
				dst := filepath.Join(dir, fmt.Sprint("restored", i))
				restore += timed(b, func() error { _, err := r.Restore(ctx, dst, RestoreOptions{}); return err })
				os.Remove(dst)
				rss = max(rss, childRestoreRSS(b, srv, bucket, path, filepath.Join(dir, fmt.Sprint("child", i))))
			}
			n := float64(b.N)
			b.ReportMetric(float64(fi.Size())/(1<<20), "db-MiB")
			b.ReportMetric(put.Seconds()/n, "put-s")
			b.ReportMetric(seed.Seconds()/n, "seed-s")
			b.ReportMetric(put.Seconds()/seed.Seconds(), "seed-vs-put")
			b.ReportMetric(get.Seconds()/n, "get-s")
			b.ReportMetric(restore.Seconds()/n, "restore-s")
			b.ReportMetric(get.Seconds()/restore.Seconds(), "restore-vs-get")
			b.ReportMetric(float64(rss)/1024, "restore-rss-MiB")
		})
	}
}

func timed(b *testing.B, f func() error) time.Duration {
	b.Helper()
	t := time.Now()
	if err := f(); err != nil {
		b.Fatal(err)
	}
	return time.Since(t)
}

// rawPut uploads the file as ferry's client does (16 MiB parts, 4 at once).
func rawPut(ctx context.Context, srv *s3test.Server, bucket, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	up := manager.NewUploader(srv.Client(), func(u *manager.Uploader) { u.PartSize = 16 << 20; u.Concurrency = 4 })
	_, err = up.Upload(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("raw"), Body: f})
	return err
}

func rawGet(ctx context.Context, srv *s3test.Server, bucket, dst string) error {
	out, err := srv.Client().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("raw")})
	if err != nil {
		return err
	}
	defer out.Body.Close()
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer os.Remove(dst)
	if _, err := f.ReadFrom(out.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// childRestoreEnv makes the test binary a process that only restores, so
// its peak RSS is the restore's.
const childRestoreEnv = "FERRY_BENCH_RESTORE"

func childRestoreRSS(b *testing.B, srv *s3test.Server, bucket, path, dst string) int64 {
	exe, _ := os.Executable()
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childRestoreEnv+"="+strconv.Quote(srv.Endpoint)+" "+bucket+" "+path+" "+dst,
		"AWS_ACCESS_KEY_ID="+srv.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+srv.SecretAccessKey)
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("child restore: %v\n%s", err, out)
	}
	defer os.Remove(dst)
	// Not rusage's maxrss: Linux carries the parent's high-water mark
	// across the vfork+exec that os/exec does.
	var kib int64
	if _, err := fmt.Sscanf(string(out), "VmHWM: %d kB", &kib); err != nil {
		b.Fatalf("child output %q: %v", out, err)
	}
	return kib
}

// childRestoreMain runs in the child: restore and exit.
func childRestoreMain() {
	spec := os.Getenv(childRestoreEnv)
	if spec == "" {
		return
	}
	var endpoint, bucket, path, dst string
	if _, err := fmt.Sscanf(spec, "%q %s %s %s", &endpoint, &bucket, &path, &dst); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	creds, _ := CredentialsFromEnv()
	r, err := Open(context.Background(), ferry.ObjectStore{Endpoint: endpoint, Bucket: bucket, PathStyle: true}, path, creds, nil)
	if err == nil {
		_, err = r.Restore(context.Background(), dst, RestoreOptions{})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			fmt.Println(strings.Join(strings.Fields(line), " "))
		}
	}
	os.Exit(0)
}
