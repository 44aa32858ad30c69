package litestream

import (
	"bytes"
	"context"
	"io"
	"testing"

	ls "github.com/benbjohnson/litestream"
	"github.com/ferry-migrate/ferry/internal/testenv/s3test"
	"github.com/superfly/ltx"
)

func s3testVersity(t *testing.T) *s3test.Server { return s3test.Versitygw(t) }
func lsCalc(ctx context.Context, r *Replica) ([]*ltx.FileInfo, error) {
	return ls.CalcRestorePlan(ctx, r.client, 0, timeZero, r.logger)
}
func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
