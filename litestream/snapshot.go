package litestream

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc64"
	"io"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/pierrec/lz4/v4"
	"github.com/superfly/ltx"
)

// The seed's fast path: instead of running litestream's DB on a staged
// copy (which adds its bookkeeping tables, encodes a compressed LTX file
// page by page to local disk, fsyncs it, then uploads it), Seed streams a
// snapshot LTX file of the database file straight into the replica's
// WriteLTXFile, compressing and checksumming pages on every core. The
// file is the source itself when it holds every transaction (WAL mode, no
// -wal; see directSource), else a staged copy checkpointed through SQLite
// (checkpointStaged). Unlike litestream's, the snapshot holds no
// _litestream_seq/_litestream_lock tables: litestream creates them when
// it next replicates the database.
//
// The file is the one litestream's first sync writes: level 0, TXID 1-1,
// every page of the database in order except the lock page, LZ4 block
// compressed, no checksum tracking (litestream's L0 files set
// HeaderFlagNoChecksum), and WAL fields that match no real WAL, so a later
// `litestream replicate` of a restored copy starts with a snapshot, as it
// does after restoring a replica litestream seeded itself. encodeSnapshot
// writes the same bytes as ltx.Encoder for the same header and pages
// (TestEncodeSnapshotMatchesEncoder).

// snapshotChunkPages is how many pages one worker compresses at a time.
const snapshotChunkPages = 256

// checkpointStaged folds the staged copy's WAL into its database file (it
// is ferry's copy, never the source) and returns the page size and the
// number of pages. ok is false when the fast path does not apply (an empty
// file, or a file whose size disagrees with its header); the caller then
// uses litestream's own sync.
func checkpointStaged(ctx context.Context, path string) (pageSize, commit uint32, ok bool, err error) {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		return 0, 0, false, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	var mode string
	if err := db.QueryRowContext(ctx, `PRAGMA journal_mode = wal`).Scan(&mode); err != nil {
		return 0, 0, false, fmt.Errorf("staged copy: %w", err)
	} else if mode != "wal" {
		return 0, 0, false, fmt.Errorf("staged copy: enable wal failed, mode=%q", mode)
	}
	var busy, walPages, done int
	if err := db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &walPages, &done); err != nil {
		return 0, 0, false, fmt.Errorf("staged copy: checkpoint: %w", err)
	} else if busy != 0 || walPages != done {
		return 0, 0, false, fmt.Errorf("staged copy: checkpoint incomplete (busy=%d, wal=%d, checkpointed=%d)", busy, walPages, done)
	}
	if err := db.Close(); err != nil {
		return 0, 0, false, err
	}
	if wal, err := os.Stat(path + "-wal"); err == nil && wal.Size() != 0 {
		return 0, 0, false, nil
	}
	return snapshotGeometry(path)
}

// snapshotGeometry reads the page size and page count of the database
// file at path from its header. ok is false when the file is empty, not
// in WAL mode, or its size disagrees with the header.
func snapshotGeometry(path string) (pageSize, commit uint32, ok bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, 0, false, err
	}
	var h [100]byte
	if fi.Size() < int64(len(h)) {
		return 0, 0, false, nil
	}
	if _, err := f.ReadAt(h[:], 0); err != nil {
		return 0, 0, false, err
	}
	ps := int64(binary.BigEndian.Uint16(h[16:]))
	if ps == 1 {
		ps = 65536
	}
	if string(h[:16]) != "SQLite format 3\x00" || h[18] != 2 || h[19] != 2 ||
		!ltx.IsValidPageSize(uint32(ps)) || fi.Size()%ps != 0 || fi.Size()/ps >= 1<<31 {
		return 0, 0, false, nil
	}
	// The header's page count, when valid (version-valid-for equals the
	// change counter), must agree with the file.
	n := binary.BigEndian.Uint32(h[28:])
	if binary.BigEndian.Uint32(h[92:]) == binary.BigEndian.Uint32(h[24:]) && int64(n) != fi.Size()/ps {
		return 0, 0, false, nil
	}
	return uint32(ps), uint32(fi.Size() / ps), true, nil
}

// directSource reports whether the database at path can be uploaded as it
// is, without a staged copy: in WAL mode with no -wal file (or an empty
// one, so the file holds every transaction), and a header that agrees
// with its size.
func directSource(path string) (pageSize, commit uint32, ok bool, err error) {
	if wal, err := os.Stat(path + "-wal"); err == nil && wal.Size() != 0 {
		return 0, 0, false, nil
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, 0, false, err
	}
	if _, err := os.Stat(path + "-journal"); err == nil {
		return 0, 0, false, nil
	}
	return snapshotGeometry(path)
}

// seedSnapshot uploads the checkpointed staged database as the replica's
// first LTX file and proves the replica covers it.
//
// unchanged, when set, is called after every page was read and before
// the file is completed; an error from it aborts the upload.
func (r *Replica) seedSnapshot(ctx context.Context, path string, pageSize, commit uint32, unchanged func() error) (Position, error) {
	const txid = ltx.TXID(1)
	f, err := os.Open(path)
	if err != nil {
		return Position{}, err
	}
	defer f.Close()
	hdr := ltx.Header{
		Version:   ltx.Version,
		Flags:     ltx.HeaderFlagNoChecksum,
		PageSize:  pageSize,
		Commit:    commit,
		MinTXID:   txid,
		MaxTXID:   txid,
		Timestamp: time.Now().UnixMilli(),
		// A WAL position at the start of a WAL with salts no real WAL
		// has: litestream, finding this file as its last, snapshots.
		WALOffset: 32,
	}
	pr, pw := io.Pipe()
	ectx, cancel := context.WithCancel(ctx)
	defer cancel()
	encErr := make(chan error, 1)
	go func() {
		_, err := encodeSnapshot(ectx, pw, f, hdr, runtime.GOMAXPROCS(0), unchanged)
		pw.CloseWithError(cmpErr(err, io.EOF))
		encErr <- err
	}()
	_, werr := r.client.WriteLTXFile(ctx, 0, txid, txid, pr)
	pr.CloseWithError(errors.New("upload stopped"))
	cancel()
	eerr := <-encErr
	if werr != nil {
		if eerr != nil && !errors.Is(eerr, io.ErrClosedPipe) && !errors.Is(eerr, context.Canceled) && eerr.Error() != "upload stopped" {
			return Position{}, fmt.Errorf("encode snapshot: %w", eerr)
		}
		return Position{}, werr
	}
	if eerr != nil {
		return Position{}, fmt.Errorf("encode snapshot: %w", eerr)
	}
	return r.proveTXID(ctx, uint64(txid))
}

// proveTXID compares txid with the highest TXID the replica lists (read
// back from the store, not from memory).
func (r *Replica) proveTXID(ctx context.Context, txid uint64) (Position, error) {
	info, err := r.Inspect(ctx)
	if err != nil {
		return Position{}, err
	}
	if txid == 0 || info.TXID != txid {
		return Position{}, fmt.Errorf("%w: source txid %d, replica txid %d", ErrNotCovered, txid, info.TXID)
	}
	return Position{TXID: info.TXID, Time: info.Updated}, nil
}

var crcISO = crc64.MakeTable(crc64.ISO)

// snapChunk is one run of pages: the raw pages as read and their encoded
// frames (page header, compressed size, compressed data).
type snapChunk struct {
	first  uint32   // first page number
	raw    []byte   // pages first.., the lock page included when in range
	frames []byte   // encoded frames, lock page skipped
	sizes  []uint32 // frame size per encoded page
	pgnos  []uint32
	crc    uint64 // CRC-64 of the chunk's hashed bytes (frame heads, raw pages)
	hlen   int64  // their length
	err    error
	done   chan struct{}
}

// encodeSnapshot writes an LTX snapshot of the commit pages of f, under
// hdr, to w: pages are read and compressed by workers in parallel and
// indexed and written in order (the file checksum is combined from the
// workers' checksums of their chunks). It returns the bytes written.
// check, when set, runs after the last page was read; its error stops
// the encoding before the file is complete.
func encodeSnapshot(ctx context.Context, w io.Writer, f io.ReaderAt, hdr ltx.Header, workers int, check func() error) (int64, error) {
	if err := hdr.Validate(); err != nil {
		return 0, err
	}
	if !hdr.IsSnapshot() || !hdr.NoChecksum() || hdr.Commit == 0 {
		return 0, errors.New("encode snapshot: want a non-empty snapshot header without checksums")
	}
	workers = max(workers, 1)
	ps := int(hdr.PageSize)
	lockPgno := ltx.LockPgno(hdr.PageSize)
	bound := lz4.CompressBlockBound(ps)

	var (
		n     int64
		crc   uint64
		index []byte // varint records, appended in order
	)
	write := func(b []byte, hash bool) error {
		if hash {
			crc = crc64.Update(crc, crcISO, b)
		}
		m, err := w.Write(b)
		n += int64(m)
		if err == nil && m < len(b) {
			err = io.ErrShortWrite
		}
		return err
	}
	hb, _ := hdr.MarshalBinary()
	if err := write(hb, true); err != nil {
		return n, err
	}

	pool := sync.Pool{New: func() any {
		return &snapChunk{
			raw:    make([]byte, snapshotChunkPages*ps),
			frames: make([]byte, 0, snapshotChunkPages*(ltx.PageHeaderSize+4+bound)),
		}
	}}
	jobs := make(chan *snapChunk)
	order := make(chan *snapChunk, 2*workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			var c lz4.Compressor
			for ch := range jobs {
				ch.err = compressChunk(&c, f, ch, ps, hdr.Commit, lockPgno, bound)
				close(ch.done)
			}
		})
	}
	ctx, cancel := context.WithCancel(ctx)
	defer func() { cancel(); wg.Wait() }()
	go func() {
		defer close(order)
		defer close(jobs)
		for first := uint32(1); first <= hdr.Commit; first += snapshotChunkPages {
			ch := pool.Get().(*snapChunk)
			ch.first, ch.err, ch.done = first, nil, make(chan struct{})
			select {
			case order <- ch:
			case <-ctx.Done():
				return
			}
			select {
			case jobs <- ch:
			case <-ctx.Done():
				close(ch.done)
				ch.err = ctx.Err()
				return
			}
		}
	}()

	var rec []byte
	for ch := range order {
		<-ch.done
		if ch.err != nil {
			return n, ch.err
		}
		if err := ctx.Err(); err != nil {
			return n, err
		}
		crc = crc64Combine(crc, ch.crc, ch.hlen)
		off := 0
		for i, pgno := range ch.pgnos {
			fr := ch.frames[off : off+int(ch.sizes[i])]
			rec = binary.AppendUvarint(rec[:0], uint64(pgno))
			rec = binary.AppendUvarint(rec, uint64(n+int64(off)))
			rec = binary.AppendUvarint(rec, uint64(len(fr)))
			index = append(index, rec...)
			off += len(fr)
		}
		if err := write(ch.frames, false); err != nil {
			return n, err
		}
		pool.Put(ch)
	}
	if err := ctx.Err(); err != nil {
		return n, err
	}
	if check != nil {
		if err := check(); err != nil {
			return n, err
		}
	}

	// End of pages, page index, its end marker and size, trailer.
	if err := write(make([]byte, ltx.PageHeaderSize), true); err != nil {
		return n, err
	}
	index = binary.AppendUvarint(index, 0)
	index = binary.BigEndian.AppendUint64(index, uint64(len(index)))
	if err := write(index, true); err != nil {
		return n, err
	}
	tr := ltx.Trailer{}
	tb, _ := tr.MarshalBinary()
	crc = crc64.Update(crc, crcISO, tb[:ltx.TrailerChecksumOffset])
	tr.FileChecksum = ltx.ChecksumFlag | ltx.Checksum(crc)
	if err := tr.Validate(hdr); err != nil {
		return n, err
	}
	tb, _ = tr.MarshalBinary()
	return n, write(tb, false)
}

// compressChunk reads the chunk's pages and encodes their frames.
func compressChunk(c *lz4.Compressor, f io.ReaderAt, ch *snapChunk, ps int, commit, lockPgno uint32, bound int) error {
	last := min(ch.first+snapshotChunkPages-1, commit)
	raw := ch.raw[:int(last-ch.first+1)*ps]
	if m, err := f.ReadAt(raw, int64(ch.first-1)*int64(ps)); m != len(raw) {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("read pages %d-%d: %w", ch.first, last, err)
	}
	ch.frames, ch.sizes, ch.pgnos = ch.frames[:0], ch.sizes[:0], ch.pgnos[:0]
	var crc uint64
	defer func() { ch.crc, ch.hlen = crc, int64(len(ch.pgnos))*int64(ltx.PageHeaderSize+4+ps) }()
	for pgno := ch.first; pgno <= last; pgno++ {
		if pgno == lockPgno {
			continue
		}
		p := int(pgno - ch.first)
		start := len(ch.frames)
		ch.frames = binary.BigEndian.AppendUint32(ch.frames, pgno)
		ch.frames = binary.BigEndian.AppendUint16(ch.frames, ltx.PageHeaderFlagSize)
		ch.frames = append(ch.frames, 0, 0, 0, 0)
		dst := ch.frames[len(ch.frames) : len(ch.frames)+bound]
		m, err := c.CompressBlock(raw[p*ps:(p+1)*ps], dst)
		if err != nil {
			return fmt.Errorf("compress page %d: %w", pgno, err)
		} else if m == 0 {
			return fmt.Errorf("compress page %d: lz4 block compression failed", pgno)
		}
		binary.BigEndian.PutUint32(ch.frames[start+ltx.PageHeaderSize:], uint32(m))
		crc = crc64.Update(crc, crcISO, ch.frames[start:start+ltx.PageHeaderSize+4])
		crc = crc64.Update(crc, crcISO, raw[p*ps:(p+1)*ps])
		ch.frames = ch.frames[:len(ch.frames)+m]
		ch.sizes = append(ch.sizes, uint32(len(ch.frames)-start))
		ch.pgnos = append(ch.pgnos, pgno)
	}
	return nil
}
