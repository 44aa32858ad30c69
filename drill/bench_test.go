package drill_test

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ferry-migrate/ferry/drill"
	"github.com/ferry-migrate/ferry/internal/testenv/s3test"
	"github.com/ferry-migrate/ferry/litestream"
	"github.com/ferry-migrate/ferry/sqlite/sqlitetest"
)

// BenchmarkRestoreDrill times the restore drill (restore with the
// integrity check, fingerprint) of a replica of random 1 KiB blobs against
// a raw download of the same objects in the same run, and reports the
// ratio drill/raw. 512 MiB runs unless -short.
//
//	go test -run '^$' -bench RestoreDrill -benchtime 1x ./drill/
func BenchmarkRestoreDrill(b *testing.B) {
	sizes := []int{64, 512}
	if testing.Short() {
		sizes = sizes[:1]
	}
	srv := s3test.Versitygw(b)
	for _, mib := range sizes {
		b.Run(fmt.Sprintf("%dMiB", mib), func(b *testing.B) {
			ctx := context.Background()
			bucket := srv.CreateBucket(b, fmt.Sprintf("bench-%d", mib))
			svc := service(srv, bucket)
			svc.Databases[0].UserTables = nil // random blobs: no app tables
			reps := open(b, svc, creds(srv))
			db := filepath.Join(b.TempDir(), "bench.db")
			sqlitetest.Random(b, db, mib)
			if _, err := reps["db"].Seed(ctx, db, litestream.SeedOptions{}); err != nil {
				b.Fatal(err)
			}
			var raw, dr time.Duration
			var bytes int64
			for b.Loop() {
				start := time.Now()
				bytes = download(b, srv.Client(), bucket)
				raw += time.Since(start)
				start = time.Now()
				if res, err := drill.Restore(ctx, svc, reps, b.TempDir(), time.Now); err != nil {
					b.Fatal(err, res[0].Problems)
				}
				dr += time.Since(start)
			}
			n := float64(b.N)
			b.ReportMetric(raw.Seconds()/n, "raw-s")
			b.ReportMetric(dr.Seconds()/n, "drill-s")
			b.ReportMetric(dr.Seconds()/raw.Seconds(), "drill/raw")
			b.ReportMetric(float64(bytes)/(1<<20), "replica-MiB")
		})
	}
}

// download GETs every object of the bucket, discarding the bytes.
func download(b *testing.B, c *s3.Client, bucket string) int64 {
	ctx := context.Background()
	out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	if err != nil {
		b.Fatal(err)
	}
	var n int64
	for _, o := range out.Contents {
		if !strings.HasSuffix(*o.Key, ".ltx") {
			continue
		}
		obj, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: o.Key})
		if err != nil {
			b.Fatal(err)
		}
		m, err := io.Copy(io.Discard, obj.Body)
		obj.Body.Close()
		if err != nil {
			b.Fatal(err)
		}
		n += m
	}
	return n
}
