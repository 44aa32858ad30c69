package litestream

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc64"
	"io"
	"math"
	"os"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/pierrec/lz4/v4"
	"github.com/superfly/ltx"
)

// The restore's parallel LTX decoder, for files in the block format
// (every page frame carries its compressed size, which is what
// ltx.Encoder writes): one goroutine splits the file into frames, workers
// decompress batches of pages, hash them and write them into the file.
//
// It checks what ltx.Decoder checks, and more strictly: header and page
// headers valid, page numbers ascending, every page decompressing to
// exactly one page, the page index naming exactly the frames read (page,
// offset and size), its size field, nothing after the trailer, the file
// checksum (CRC-64 of everything but the compressed bytes and the
// checksum itself, computed per batch and combined in order), and a
// snapshot's post-apply checksum. TestParallelDecoderMatchesLibrary holds
// it to ltx.Decoder on good and corrupted files.

// errStopped marks batches skipped after another one failed.
var errStopped = errors.New("decoding stopped")

// batchBytes is about how many decompressed bytes one batch holds.
const batchBytes = 512 << 10

type decPage struct {
	pgno uint32
	head [ltx.PageHeaderSize + 4]byte // page header and size, as hashed
	off  int                          // of the compressed bytes in comp
	n    int
}

type decBatch struct {
	comp  []byte
	pages []decPage
	out   []byte
	res   *batchResult
}

type batchResult struct {
	done chan struct{}
	crc  uint64 // of the batch's hashed bytes
	n    int64  // hashed bytes
	sum  ltx.Checksum
	err  error
}

// parallelDecoder holds the workers of one restore.
type parallelDecoder struct {
	f       *os.File
	ps      int
	perB    int // pages per batch
	jobs    chan *decBatch
	free    chan *decBatch
	wg      sync.WaitGroup
	dirty   atomic.Int64
	failed  atomic.Bool
	commit  uint32 // of the file being decoded (pages beyond are not written)
	lock    uint32
	summing bool // compute the snapshot's post-apply checksum
}

func newParallelDecoder(f *os.File, pageSize uint32) *parallelDecoder {
	workers := max(2, runtime.GOMAXPROCS(0))
	d := &parallelDecoder{
		f: f, ps: int(pageSize), perB: max(1, batchBytes/int(pageSize)),
		jobs: make(chan *decBatch, workers), free: make(chan *decBatch, 2*workers),
		lock: ltx.LockPgno(pageSize),
	}
	for range cap(d.free) {
		d.free <- &decBatch{}
	}
	for range workers {
		d.wg.Go(d.worker)
	}
	return d
}

func (d *parallelDecoder) close() {
	close(d.jobs)
	d.wg.Wait()
}

func (d *parallelDecoder) worker() {
	for b := range d.jobs {
		d.work(b)
		close(b.res.done)
		d.free <- b
	}
}

func (d *parallelDecoder) work(b *decBatch) {
	res := b.res
	if d.failed.Load() {
		res.err = errStopped
		return
	}
	ps := d.ps
	if need := len(b.pages) * ps; cap(b.out) < need {
		b.out = make([]byte, need)
	}
	out := b.out[:len(b.pages)*ps]
	h := ltx.NewHasher()
	var crc uint64
	for i := range b.pages {
		p := &b.pages[i]
		dst := out[i*ps : (i+1)*ps]
		n, err := lz4.UncompressBlock(b.comp[p.off:p.off+p.n], dst)
		if err != nil {
			res.err = fmt.Errorf("decompress page %d: %w", p.pgno, err)
			d.failed.Store(true)
			return
		} else if n != ps {
			res.err = fmt.Errorf("page %d decompressed to %d bytes, page size %d", p.pgno, n, ps)
			d.failed.Store(true)
			return
		}
		crc = crc64.Update(crc, crcISO, p.head[:])
		crc = crc64.Update(crc, crcISO, dst)
		if d.summing && p.pgno != d.lock {
			res.sum ^= ltx.ChecksumPageWithHasher(h, p.pgno, dst)
		}
	}
	res.crc, res.n = crc, int64(len(b.pages))*int64(len(b.pages[0].head)+ps)
	// Write runs of consecutive pages, each with one WriteAt.
	for i := 0; i < len(b.pages); {
		if b.pages[i].pgno > d.commit {
			i++
			continue
		}
		j := i + 1
		for j < len(b.pages) && b.pages[j].pgno == b.pages[j-1].pgno+1 && b.pages[j].pgno <= d.commit {
			j++
		}
		if _, err := d.f.WriteAt(out[i*ps:j*ps], int64(b.pages[i].pgno-1)*int64(ps)); err != nil {
			res.err = err
			d.failed.Store(true)
			return
		}
		if d.dirty.Add(int64((j-i)*ps)) >= 32<<20 {
			d.dirty.Store(0)
			startWriteback(d.f)
		}
		i = j
	}
}

// frameRef is where a page's frame sits in the file, for the index check.
type frameRef struct {
	pgno uint32
	off  int64
	size int64
}

// decode applies one block-format LTX file whose first bytes (header and
// first page header) are head and the rest r. Its pages are all written
// when it returns.
func (d *parallelDecoder) decode(head []byte, r io.Reader) (ltx.Header, ltx.Trailer, error) {
	var hdr ltx.Header
	if err := hdr.UnmarshalBinary(head[:ltx.HeaderSize]); err != nil {
		return hdr, ltx.Trailer{}, fmt.Errorf("unmarshal header: %w", err)
	}
	if err := hdr.Validate(); err != nil {
		return hdr, ltx.Trailer{}, err
	}
	if int(hdr.PageSize) != d.ps {
		return hdr, ltx.Trailer{}, fmt.Errorf("page size %d, earlier files %d", hdr.PageSize, d.ps)
	}
	d.commit = hdr.Commit
	d.summing = hdr.IsSnapshot() && !hdr.NoChecksum()
	d.failed.Store(false)
	maxComp := lz4.CompressBlockBound(d.ps)

	var (
		results []*batchResult
		frames  []frameRef
		pos     = int64(ltx.HeaderSize) // offset of the next frame
		prev    uint32
		cur     *decBatch
		phb     = head[ltx.HeaderSize:]
		err     error
	)
	dispatch := func() {
		if cur != nil && len(cur.pages) > 0 {
			cur.res = &batchResult{done: make(chan struct{})}
			results = append(results, cur.res)
			d.jobs <- cur
			cur = nil
		}
	}
	wait := func() error {
		dispatch()
		var first error
		for _, res := range results {
			<-res.done
			if res.err != nil && (first == nil || first == errStopped) {
				first = res.err
			}
		}
		return first
	}
	for {
		var ph ltx.PageHeader
		if err = ph.UnmarshalBinary(phb); err != nil {
			break
		}
		if ph.IsZero() {
			break
		}
		if err = ph.Validate(); err != nil {
			break
		}
		if ph.Flags&ltx.PageHeaderFlagSize == 0 {
			err = errors.New("page frame without size (mixed formats)")
			break
		}
		if ph.Pgno <= prev {
			err = fmt.Errorf("out-of-order page numbers: %d,%d", prev, ph.Pgno)
			break
		}
		prev = ph.Pgno
		var p decPage
		p.pgno = ph.Pgno
		copy(p.head[:], phb)
		if _, err = io.ReadFull(r, p.head[ltx.PageHeaderSize:]); err != nil {
			err = fmt.Errorf("read data size: %w", err)
			break
		}
		p.n = int(binary.BigEndian.Uint32(p.head[ltx.PageHeaderSize:]))
		if p.n == 0 || p.n > maxComp {
			err = fmt.Errorf("page %d: compressed size %d out of range", ph.Pgno, p.n)
			break
		}
		if cur == nil {
			if d.failed.Load() {
				break
			}
			cur = <-d.free
			cur.comp, cur.pages = cur.comp[:0], cur.pages[:0]
		}
		p.off = len(cur.comp)
		cur.comp = grow(cur.comp, p.n)
		if _, err = io.ReadFull(r, cur.comp[p.off:p.off+p.n]); err != nil {
			err = fmt.Errorf("read compressed data: %w", err)
			break
		}
		cur.pages = append(cur.pages, p)
		size := int64(len(p.head) + p.n)
		frames = append(frames, frameRef{pgno: p.pgno, off: pos, size: size})
		pos += size
		if len(cur.pages) == d.perB {
			dispatch()
		}
		if _, err = io.ReadFull(r, phb); err != nil {
			break
		}
	}
	if cur != nil && err != nil {
		d.free <- cur
		cur = nil
	}
	if werr := wait(); err == nil {
		err = werr
	}
	if err != nil {
		return hdr, ltx.Trailer{}, err
	}

	// Hash in file order: header, the batches, the end of pages.
	crc := crc64.Update(0, crcISO, head[:ltx.HeaderSize])
	var sum ltx.Checksum
	for _, res := range results {
		crc = crc64Combine(crc, res.crc, res.n)
		sum ^= res.sum
	}
	crc = crc64.Update(crc, crcISO, phb)

	// The page index must name exactly the frames read.
	br := &hashingByteReader{r: bufio.NewReaderSize(r, 64<<10)}
	var i int
	for {
		pgno, err := binary.ReadUvarint(br)
		if err != nil {
			return hdr, ltx.Trailer{}, fmt.Errorf("read page index: %w", unexpected(err))
		}
		if pgno == 0 {
			break
		}
		off, err := binary.ReadUvarint(br)
		if err != nil {
			return hdr, ltx.Trailer{}, fmt.Errorf("read page index: %w", unexpected(err))
		}
		size, err := binary.ReadUvarint(br)
		if err != nil {
			return hdr, ltx.Trailer{}, fmt.Errorf("read page index: %w", unexpected(err))
		}
		if pgno > uint64(hdr.Commit) {
			return hdr, ltx.Trailer{}, fmt.Errorf("read page index: page index pgno %d exceeds commit %d", pgno, hdr.Commit)
		}
		if i >= len(frames) || off > math.MaxInt64 || size > math.MaxInt64 ||
			frames[i] != (frameRef{pgno: uint32(pgno), off: int64(off), size: int64(size)}) {
			return hdr, ltx.Trailer{}, errors.New("page index does not match the decoded page numbers")
		}
		i++
	}
	if i != len(frames) {
		return hdr, ltx.Trailer{}, fmt.Errorf("page index has %d entries but %d pages were decoded", i, len(frames))
	}
	indexLen := br.n
	var sizeField [8]byte
	if _, err := io.ReadFull(br, sizeField[:]); err != nil {
		return hdr, ltx.Trailer{}, fmt.Errorf("read page index size: %w", unexpected(err))
	}
	if binary.BigEndian.Uint64(sizeField[:]) != uint64(indexLen) {
		return hdr, ltx.Trailer{}, fmt.Errorf("page index size mismatch: field=%d read=%d", binary.BigEndian.Uint64(sizeField[:]), indexLen)
	}
	crc = crc64.Update(crc, crcISO, br.consumed())
	tb := make([]byte, ltx.TrailerSize)
	if _, err := io.ReadFull(br.r, tb); err != nil {
		return hdr, ltx.Trailer{}, fmt.Errorf("read trailer: %w", unexpected(err))
	}
	crc = crc64.Update(crc, crcISO, tb[:ltx.TrailerChecksumOffset])
	var tr ltx.Trailer
	if err := tr.UnmarshalBinary(tb); err != nil {
		return hdr, tr, fmt.Errorf("unmarshal trailer: %w", err)
	}
	if _, err := br.r.ReadByte(); err == nil {
		return hdr, tr, errors.New("unexpected data after trailer")
	} else if !errors.Is(err, io.EOF) {
		return hdr, tr, fmt.Errorf("read after trailer: %w", err)
	}
	if ltx.ChecksumFlag|ltx.Checksum(crc) != tr.FileChecksum {
		return hdr, tr, ltx.ErrChecksumMismatch
	}
	if d.summing && tr.PostApplyChecksum != ltx.ChecksumFlag|sum {
		return hdr, tr, fmt.Errorf("post-apply checksum in trailer (%s) does not match calculated checksum (%s)", tr.PostApplyChecksum, ltx.ChecksumFlag|sum)
	}
	return hdr, tr, nil
}

func grow(b []byte, n int) []byte {
	if len(b)+n > cap(b) {
		nb := make([]byte, len(b), max(2*cap(b), len(b)+n, batchBytes))
		copy(nb, b)
		b = nb
	}
	return b[:len(b)+n]
}

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// hashingByteReader keeps the bytes read through it (the page index).
type hashingByteReader struct {
	r   *bufio.Reader
	buf []byte
	n   int
}

func (h *hashingByteReader) ReadByte() (byte, error) {
	c, err := h.r.ReadByte()
	if err == nil {
		h.buf = append(h.buf, c)
		h.n++
	}
	return c, err
}

func (h *hashingByteReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.buf = append(h.buf, p[:n]...)
	return n, err
}

// consumed returns every byte read so far.
func (h *hashingByteReader) consumed() []byte { return h.buf }
