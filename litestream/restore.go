package litestream

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"time"

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
// The work is pipelined: the plan's files are downloaded ahead in chunks
// by concurrent ranged GETs (planFetcher, a chunk whose body breaks off is
// fetched again); one goroutine splits each file into page frames, in
// order, and workers decompress, hash and write batches of them, runs of
// consecutive pages with one WriteAt each (parallelDecoder), starting
// writeback early so the one fsync at the end is short. A file is fully
// written before the next one's pages are.
//
// Each file's own checksum is verified by the decoder (and a snapshot's
// post-apply checksum against the pages it decoded, which are the pages
// written); the result is then verified against the last file's
// post-apply checksum (the checksum of the whole database after that
// transaction), so a wrong or missing page anywhere fails the restore.
func applyPlan(ctx context.Context, client ls.ReplicaClient, plan []*ltx.FileInfo, f *os.File, logger *slog.Logger) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fetch := newPlanFetcher(ctx, client, plan)
	defer fetch.close()
	defer func() { logger.Debug("restore download", "waited", fetch.waited) }()
	var (
		pageSize uint32
		last     ltx.Header
		trailer  ltx.Trailer
		st       applyState
	)
	defer st.close()
	for i, info := range plan {
		name := ltx.FormatFilename(info.MinTXID, info.MaxTXID)
		rd := fetch.file(i)
		hdr, tr, err := st.apply(rd, f, pageSize)
		if err == nil && rd.remaining() {
			err = errors.New("unexpected data after trailer")
		}
		if err != nil {
			if ferr := fetch.err(); ferr != nil {
				err = ferr
			}
			return fmt.Errorf("apply %s: %w", name, err)
		}
		pageSize, last, trailer = hdr.PageSize, hdr, tr
	}
	st.close()
	if err := f.Truncate(int64(last.Commit) * int64(pageSize)); err != nil {
		return err
	}
	if last.NoChecksum() {
		return nil
	}
	if len(plan) == 1 && last.IsSnapshot() {
		// The decoder compared the snapshot's post-apply checksum with
		// the checksum of the pages it decoded, which are the pages
		// written.
		return nil
	}
	sum, err := checksumFile(f, pageSize, last.Commit)
	if err != nil {
		return fmt.Errorf("checksum restored database: %w", err)
	}
	if sum != trailer.PostApplyChecksum {
		return fmt.Errorf("restored database checksum %s, replica says %s", sum, trailer.PostApplyChecksum)
	}
	return nil
}

// applyState carries the decoder workers across the files of a plan.
type applyState struct {
	dec *parallelDecoder
}

func (st *applyState) close() {
	if st.dec != nil {
		st.dec.close()
		st.dec = nil
	}
}

// apply decodes one LTX file from r into f: block-format files (what
// ltx.Encoder writes) in parallel, older ones with ltx.Decoder. Every
// page is written when it returns.
func (st *applyState) apply(r io.Reader, f *os.File, pageSize uint32) (ltx.Header, ltx.Trailer, error) {
	head := make([]byte, ltx.HeaderSize+ltx.PageHeaderSize)
	if _, err := io.ReadFull(r, head); err != nil {
		return ltx.Header{}, ltx.Trailer{}, err
	}
	flags := binary.BigEndian.Uint16(head[ltx.HeaderSize+4:])
	pgno := binary.BigEndian.Uint32(head[ltx.HeaderSize:])
	if flags&ltx.PageHeaderFlagSize != 0 || pgno == 0 && flags == 0 {
		var hdr ltx.Header
		if err := hdr.UnmarshalBinary(head); err != nil {
			return hdr, ltx.Trailer{}, fmt.Errorf("unmarshal header: %w", err)
		} else if err := hdr.Validate(); err != nil {
			return hdr, ltx.Trailer{}, err
		} else if pageSize != 0 && hdr.PageSize != pageSize {
			return hdr, ltx.Trailer{}, fmt.Errorf("page size %d, earlier files %d", hdr.PageSize, pageSize)
		}
		if st.dec == nil {
			st.dec = newParallelDecoder(f, hdr.PageSize)
		}
		return st.dec.decode(head, r)
	}
	return applyFile(io.MultiReader(bytes.NewReader(head), r), f, pageSize)
}

// applyFile decodes one LTX file from r into f with ltx.Decoder.
func applyFile(r io.Reader, f *os.File, pageSize uint32) (ltx.Header, ltx.Trailer, error) {
	dec := ltx.NewDecoder(r)
	dec.SetRetainPageIndex(false)
	if err := dec.DecodeHeader(); err != nil {
		return ltx.Header{}, ltx.Trailer{}, err
	}
	hdr := dec.Header()
	if pageSize != 0 && hdr.PageSize != pageSize {
		return hdr, ltx.Trailer{}, fmt.Errorf("page size %d, earlier files %d", hdr.PageSize, pageSize)
	}
	w := newPageWriter(f, int(hdr.PageSize))
	defer w.close()
	var ph ltx.PageHeader
	for {
		data := w.slot()
		err := dec.DecodePage(&ph, data)
		if err == io.EOF {
			break
		} else if err != nil {
			return hdr, ltx.Trailer{}, err
		}
		if ph.Pgno > hdr.Commit {
			continue // beyond this transaction's end of file
		}
		if err := w.commit(ph.Pgno); err != nil {
			return hdr, ltx.Trailer{}, err
		}
	}
	// Later files overwrite this one's pages: all written before return.
	if err := w.flush(); err != nil {
		return hdr, ltx.Trailer{}, err
	}
	if err := w.close(); err != nil {
		return hdr, ltx.Trailer{}, err
	}
	if err := dec.Close(); err != nil {
		return hdr, ltx.Trailer{}, err
	}
	return hdr, dec.Trailer(), nil
}

// runBytes is how many bytes of consecutive pages one write covers at
// most.
const runBytes = 1 << 20

func runPages(ps int) int { return max(1, runBytes/ps) }

// pageWriter collects decoded pages into runs of consecutive page numbers
// and writes each run with one WriteAt, in order, from its own goroutine.
type pageWriter struct {
	f      *os.File
	ps     int
	free   chan []byte
	runs   chan pageRun
	done   chan struct{}
	err    error // set by the writer goroutine before done closes
	cur    []byte
	start  uint32 // page number of cur's first page
	n      int    // pages in cur
	max    int    // pages per run
	closed bool
}

type pageRun struct {
	buf   []byte
	start uint32
	n     int
}

func newPageWriter(f *os.File, ps int) *pageWriter {
	w := &pageWriter{f: f, ps: ps, max: runPages(ps), free: make(chan []byte, 4), runs: make(chan pageRun, 3), done: make(chan struct{})}
	for range cap(w.free) {
		w.free <- make([]byte, w.max*ps)
	}
	w.cur = <-w.free
	go w.loop()
	return w
}

func (w *pageWriter) loop() {
	defer close(w.done)
	var dirty int64
	for run := range w.runs {
		if w.err == nil {
			b := run.buf[:run.n*w.ps]
			if _, err := w.f.WriteAt(b, int64(run.start-1)*int64(w.ps)); err != nil {
				w.err = err
			}
			// Start writeback now rather than in the final fsync.
			if dirty += int64(len(b)); dirty >= 32<<20 {
				startWriteback(w.f)
				dirty = 0
			}
		}
		w.free <- run.buf
	}
}

// slot returns the buffer the next decoded page goes into.
func (w *pageWriter) slot() []byte {
	return w.cur[w.n*w.ps : (w.n+1)*w.ps]
}

// commit keeps the page in the slot as page pgno.
func (w *pageWriter) commit(pgno uint32) error {
	if w.n == 0 {
		w.start, w.n = pgno, 1
	} else if pgno == w.start+uint32(w.n) {
		w.n++
	} else {
		// Not consecutive: write the run so far and start a new one
		// with this page.
		page := w.slot()
		if err := w.send(); err != nil {
			return err
		}
		copy(w.cur, page)
		w.start, w.n = pgno, 1
	}
	if w.n == w.max {
		return w.send()
	}
	return nil
}

// flush writes the pending run.
func (w *pageWriter) flush() error {
	if w.n == 0 {
		return w.failed()
	}
	return w.send()
}

func (w *pageWriter) failed() error {
	select {
	case <-w.done:
		return w.err
	default:
		return nil
	}
}

func (w *pageWriter) send() error {
	if err := w.failed(); err != nil {
		return err
	}
	w.runs <- pageRun{buf: w.cur, start: w.start, n: w.n}
	w.cur, w.n = <-w.free, 0
	return nil
}

// close waits for every run to be written.
func (w *pageWriter) close() error {
	if !w.closed {
		w.closed = true
		close(w.runs)
	}
	<-w.done
	return w.err
}

// checksumFile is ltx.ChecksumReader of the first commit pages of f, in
// parallel (the checksum is an XOR of per-page checksums).
func checksumFile(f *os.File, pageSize, commit uint32) (ltx.Checksum, error) {
	workers := uint32(max(1, min(runtime.GOMAXPROCS(0), 4)))
	per := (commit + workers - 1) / workers
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		sum  ltx.Checksum
		ferr error
	)
	lock := ltx.LockPgno(pageSize)
	for w := uint32(0); w < workers; w++ {
		first, last := w*per+1, min((w+1)*per, commit)
		if first > last {
			continue
		}
		wg.Go(func() {
			var s ltx.Checksum
			h := ltx.NewHasher()
			per := runPages(int(pageSize))
			buf := make([]byte, per*int(pageSize))
			for p := first; p <= last; p += uint32(per) {
				n := min(per, int(last-p+1))
				b := buf[:n*int(pageSize)]
				if _, err := f.ReadAt(b, int64(p-1)*int64(pageSize)); err != nil {
					mu.Lock()
					ferr = cmpErr(ferr, err)
					mu.Unlock()
					return
				}
				for i := range n {
					if pgno := p + uint32(i); pgno != lock {
						s ^= ltx.ChecksumPageWithHasher(h, pgno, b[i*int(pageSize):(i+1)*int(pageSize)])
					}
				}
			}
			mu.Lock()
			sum ^= s
			mu.Unlock()
		})
	}
	wg.Wait()
	if ferr != nil {
		return 0, ferr
	}
	return ltx.ChecksumFlag | sum, nil
}

// Download pipeline.

const (
	fetchChunk   = 4 << 20 // bytes per ranged GET
	fetchBuffers = 6       // chunks held at once (downloading or unread)
	fetchWorkers = 4       // GETs in flight
	fetchRetries = 3       // attempts per chunk when a body read fails
)

// planFetcher downloads the plan's files ahead of the decoder, in chunks,
// and hands them back in order.
type planFetcher struct {
	ctx    context.Context
	cancel context.CancelFunc
	client ls.ReplicaClient
	plan   []*ltx.FileInfo
	free   chan []byte
	order  chan *fetchSeg
	jobs   chan *fetchSeg
	wg     sync.WaitGroup

	mu       sync.Mutex
	firstErr error

	pending *fetchSeg     // next segment, read from order, not yet consumed
	waited  time.Duration // decoder's time waiting for downloads
}

type fetchSeg struct {
	file   int
	off, n int64 // n < 0: the whole object, size unknown
	buf    []byte
	data   []byte // what was read
	err    error
	done   chan struct{}
}

func newPlanFetcher(ctx context.Context, client ls.ReplicaClient, plan []*ltx.FileInfo) *planFetcher {
	ctx, cancel := context.WithCancel(ctx)
	p := &planFetcher{
		ctx: ctx, cancel: cancel, client: client, plan: plan,
		free:  make(chan []byte, fetchBuffers),
		order: make(chan *fetchSeg, fetchBuffers),
		jobs:  make(chan *fetchSeg),
	}
	for range fetchBuffers {
		p.free <- nil // allocated on first use
	}
	for range fetchWorkers {
		p.wg.Go(p.worker)
	}
	p.wg.Go(p.produce)
	return p
}

func (p *planFetcher) produce() {
	defer close(p.order)
	defer close(p.jobs)
	for i, info := range p.plan {
		size := info.Size
		for off := int64(0); off < size || (size <= 0 && off == 0); off += fetchChunk {
			seg := &fetchSeg{file: i, off: off, n: -1, done: make(chan struct{})}
			if size > 0 {
				seg.n = min(fetchChunk, size-off)
			}
			select {
			case seg.buf = <-p.free:
			case <-p.ctx.Done():
				return
			}
			select {
			case p.order <- seg:
			case <-p.ctx.Done():
				return
			}
			select {
			case p.jobs <- seg:
			case <-p.ctx.Done():
				seg.err = p.ctx.Err()
				close(seg.done)
				return
			}
			if size <= 0 {
				break
			}
		}
	}
}

func (p *planFetcher) worker() {
	for seg := range p.jobs {
		seg.err = p.fetch(seg)
		if seg.err != nil {
			p.mu.Lock()
			p.firstErr = cmpErr(p.firstErr, seg.err)
			p.mu.Unlock()
		}
		close(seg.done)
	}
}

func (p *planFetcher) fetch(seg *fetchSeg) error {
	info := p.plan[seg.file]
	name := ltx.FormatFilename(info.MinTXID, info.MaxTXID)
	var err error
	for attempt := 0; attempt < fetchRetries; attempt++ {
		if cerr := p.ctx.Err(); cerr != nil {
			return cerr
		}
		var rc io.ReadCloser
		if seg.n < 0 {
			rc, err = p.client.OpenLTXFile(p.ctx, info.Level, info.MinTXID, info.MaxTXID, 0, 0)
		} else {
			rc, err = p.client.OpenLTXFile(p.ctx, info.Level, info.MinTXID, info.MaxTXID, seg.off, seg.n)
		}
		if err != nil {
			// The client retried what can be retried.
			return fmt.Errorf("open %s: %w", name, err)
		}
		if seg.n < 0 {
			var b []byte
			b, err = io.ReadAll(rc)
			seg.data = b
		} else {
			if cap(seg.buf) < int(seg.n) {
				seg.buf = make([]byte, max(fetchChunk, seg.n))
			}
			seg.data = seg.buf[:seg.n]
			_, err = io.ReadFull(rc, seg.data)
			if err == nil {
				// Exactly the range asked for: nothing may follow.
				var one [1]byte
				if m, _ := rc.Read(one[:]); m != 0 {
					err = fmt.Errorf("%s: more data than the %d bytes asked for at %d", name, seg.n, seg.off)
				}
			}
		}
		rc.Close()
		if err == nil {
			return nil
		}
		// A body cut off mid-way: fetch the chunk again.
	}
	return fmt.Errorf("read %s at %d: %w", name, seg.off, err)
}

// fileReader reads one plan file from the fetched segments.
type fileReader struct {
	p    *planFetcher
	file int
	cur  *fetchSeg
	pos  int
	eof  bool
}

// file returns a reader over plan file i; files are read in plan order.
func (p *planFetcher) file(i int) *fileReader { return &fileReader{p: p, file: i} }

func (p *planFetcher) err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.firstErr
}

// next returns the next segment of file i, nil at its end.
func (p *planFetcher) next(i int) (*fetchSeg, error) {
	if p.pending == nil {
		seg, ok := <-p.order
		if !ok {
			if err := p.ctx.Err(); err != nil {
				return nil, err
			}
			return nil, nil
		}
		p.pending = seg
	}
	seg := p.pending
	if seg.file != i {
		return nil, nil
	}
	p.pending = nil
	start := time.Now()
	select {
	case <-seg.done:
	case <-p.ctx.Done():
		return nil, p.ctx.Err()
	}
	p.waited += time.Since(start)
	if seg.err != nil {
		return nil, seg.err
	}
	return seg, nil
}

func (r *fileReader) Read(b []byte) (int, error) {
	for r.cur == nil || r.pos == len(r.cur.data) {
		if r.eof {
			return 0, io.EOF
		}
		if r.cur != nil {
			r.p.free <- r.cur.buf
			r.cur = nil
		}
		seg, err := r.p.next(r.file)
		if err != nil {
			return 0, err
		} else if seg == nil {
			r.eof = true
			return 0, io.EOF
		}
		r.cur, r.pos = seg, 0
	}
	n := copy(b, r.cur.data[r.pos:])
	r.pos += n
	return n, nil
}

// remaining reports whether the file has unread bytes (after the decoder
// saw its trailer).
func (r *fileReader) remaining() bool {
	var one [1]byte
	n, _ := r.Read(one[:])
	return n > 0
}

// close stops the downloads and waits for them.
func (p *planFetcher) close() {
	p.cancel()
	go func() {
		for range p.order {
		}
	}()
	p.wg.Wait()
}

// prelistedClient serves LTXFiles (without metadata) from listings of
// every level made at once, so CalcRestorePlan's walk over the levels
// costs one round trip instead of one per level.
type prelistedClient struct {
	ls.ReplicaClient
	levels [ls.SnapshotLevel + 1][]ltx.FileInfo
}

func prelist(ctx context.Context, c ls.ReplicaClient) (*prelistedClient, error) {
	p := &prelistedClient{ReplicaClient: c}
	var (
		wg   sync.WaitGroup
		errs [ls.SnapshotLevel + 1]error
	)
	for level := range p.levels {
		wg.Go(func() {
			itr, err := c.LTXFiles(ctx, level, 0, false)
			if err != nil {
				errs[level] = err
				return
			}
			for itr.Next() {
				p.levels[level] = append(p.levels[level], *itr.Item())
			}
			errs[level] = itr.Close()
		})
	}
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *prelistedClient) LTXFiles(ctx context.Context, level int, seek ltx.TXID, useMetadata bool) (ltx.FileIterator, error) {
	if useMetadata || level < 0 || level >= len(p.levels) {
		return p.ReplicaClient.LTXFiles(ctx, level, seek, useMetadata)
	}
	var out []*ltx.FileInfo
	for _, info := range p.levels[level] {
		if info.MinTXID >= seek {
			out = append(out, &info)
		}
	}
	return ltx.NewFileInfoSliceIterator(out), nil
}
