package litestream

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"

	ls "github.com/benbjohnson/litestream"
	"github.com/superfly/ltx"
)

// applyPlan builds the database of a v0.5 restore plan in f by decoding
// every LTX file of the plan, in order, straight into the file: a page
// from a later file overwrites the same page from an earlier one, and the
// file ends at the last file's commit. This is what litestream's restore
// computes, without its compactor re-encoding (and recompressing) every
// page on the way, which makes it CPU bound.
//
// Each file's own checksum is verified by the decoder; the result is then
// verified against the last file's post-apply checksum (the checksum of
// the whole database after that transaction), so a wrong or missing page
// anywhere fails the restore.
func applyPlan(ctx context.Context, client ls.ReplicaClient, plan []*ltx.FileInfo, f *os.File) error {
	var (
		pageSize uint32
		last     ltx.Header
		trailer  ltx.Trailer
	)
	for _, info := range plan {
		rc, err := client.OpenLTXFile(ctx, info.Level, info.MinTXID, info.MaxTXID, 0, 0)
		if err != nil {
			return fmt.Errorf("open %s: %w", ltx.FormatFilename(info.MinTXID, info.MaxTXID), err)
		}
		hdr, tr, err := applyFile(rc, f, pageSize)
		rc.Close()
		if err != nil {
			return fmt.Errorf("apply %s: %w", ltx.FormatFilename(info.MinTXID, info.MaxTXID), err)
		}
		pageSize, last, trailer = hdr.PageSize, hdr, tr
	}
	if err := f.Truncate(int64(last.Commit) * int64(pageSize)); err != nil {
		return err
	}
	if last.NoChecksum() {
		return nil
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	sum, err := ltx.ChecksumReader(bufio.NewReaderSize(f, 1<<20), int(pageSize))
	if err != nil {
		return fmt.Errorf("checksum restored database: %w", err)
	}
	if sum != trailer.PostApplyChecksum {
		return fmt.Errorf("restored database checksum %s, replica says %s", sum, trailer.PostApplyChecksum)
	}
	return nil
}

func applyFile(r io.Reader, f *os.File, pageSize uint32) (ltx.Header, ltx.Trailer, error) {
	dec := ltx.NewDecoder(bufio.NewReaderSize(r, 1<<20))
	if err := dec.DecodeHeader(); err != nil {
		return ltx.Header{}, ltx.Trailer{}, err
	}
	hdr := dec.Header()
	if pageSize != 0 && hdr.PageSize != pageSize {
		return hdr, ltx.Trailer{}, fmt.Errorf("page size %d, earlier files %d", hdr.PageSize, pageSize)
	}
	data := make([]byte, hdr.PageSize)
	var ph ltx.PageHeader
	for {
		err := dec.DecodePage(&ph, data)
		if err == io.EOF {
			break
		} else if err != nil {
			return hdr, ltx.Trailer{}, err
		}
		if ph.Pgno > hdr.Commit {
			continue // beyond this transaction's end of file
		}
		if _, err := f.WriteAt(data, int64(ph.Pgno-1)*int64(hdr.PageSize)); err != nil {
			return hdr, ltx.Trailer{}, err
		}
	}
	if err := dec.Close(); err != nil {
		return hdr, ltx.Trailer{}, err
	}
	return hdr, dec.Trailer(), nil
}
