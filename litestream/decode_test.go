package litestream

import (
	"bytes"
	"encoding/binary"
	"hash/crc64"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/pierrec/lz4/v4"
	"github.com/superfly/ltx"
)

// encodeTestLTX encodes pages (pgno -> data) with ltx.Encoder.
func encodeTestLTX(t *testing.T, hdr ltx.Header, pgnos []uint32, page func(uint32) []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc, err := ltx.NewEncoder(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if err := enc.EncodeHeader(hdr); err != nil {
		t.Fatal(err)
	}
	var sum ltx.Checksum
	for _, pgno := range pgnos {
		data := page(pgno)
		sum ^= ltx.ChecksumPage(pgno, data)
		if err := enc.EncodePage(ltx.PageHeader{Pgno: pgno}, data); err != nil {
			t.Fatal(err)
		}
	}
	if !hdr.NoChecksum() {
		enc.SetPostApplyChecksum(ltx.ChecksumFlag | sum)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func testPage(seed uint32, ps int) []byte {
	rng := rand.New(rand.NewPCG(uint64(seed), 7))
	b := make([]byte, ps)
	for i := 0; i < ps/2; i++ { // half random, half zeros: compressible
		b[i] = byte(rng.Uint32())
	}
	return b
}

// decodeBoth applies data with the parallel decoder and with ltx.Decoder
// (applyFile) into fresh files and returns the files and errors.
func decodeBoth(t *testing.T, data []byte) (par, seq []byte, perr, serr error) {
	t.Helper()
	dir := t.TempDir()
	a, _ := os.Create(filepath.Join(dir, "par"))
	b, _ := os.Create(filepath.Join(dir, "seq"))
	defer a.Close()
	defer b.Close()
	var st applyState
	_, ptr, perr := st.apply(bytes.NewReader(data), a, 0)
	st.close()
	_, str, serr := applyFile(bytes.NewReader(data), b, 0)
	if perr == nil && serr == nil && ptr != str {
		t.Fatalf("trailers differ: %+v %+v", ptr, str)
	}
	par, _ = os.ReadFile(a.Name())
	seq, _ = os.ReadFile(b.Name())
	os.Remove(a.Name())
	os.Remove(b.Name())
	return par, seq, perr, serr
}

// The parallel decoder writes what ltx.Decoder decodes, and rejects every
// file ltx.Decoder rejects (truncated or with any byte changed).
func TestParallelDecoderMatchesLibrary(t *testing.T) {
	const ps = 4096
	snapPgnos := make([]uint32, 700)
	for i := range snapPgnos {
		snapPgnos[i] = uint32(i + 1)
	}
	var sparse []uint32
	for p := uint32(3); p <= 700; p += 7 {
		sparse = append(sparse, p)
	}
	files := map[string][]byte{
		"snapshot-nochecksum": encodeTestLTX(t, ltx.Header{Version: ltx.Version, Flags: ltx.HeaderFlagNoChecksum, PageSize: ps, Commit: 700, MinTXID: 1, MaxTXID: 1, Timestamp: 1, WALOffset: 32}, snapPgnos, func(p uint32) []byte { return testPage(p, ps) }),
		"snapshot-checksum":   encodeTestLTX(t, ltx.Header{Version: ltx.Version, PageSize: ps, Commit: 700, MinTXID: 1, MaxTXID: 5, Timestamp: 1}, snapPgnos, func(p uint32) []byte { return testPage(p+9, ps) }),
		"incremental":         encodeTestLTX(t, ltx.Header{Version: ltx.Version, Flags: ltx.HeaderFlagNoChecksum, PageSize: ps, Commit: 705, MinTXID: 6, MaxTXID: 9, Timestamp: 2}, sparse, func(p uint32) []byte { return testPage(p+99, ps) }),
	}
	for name, data := range files {
		t.Run(name, func(t *testing.T) {
			par, seq, perr, serr := decodeBoth(t, data)
			if perr != nil || serr != nil {
				t.Fatalf("good file: parallel %v, library %v", perr, serr)
			}
			if !bytes.Equal(par, seq) {
				t.Fatal("outputs differ")
			}
			rng := rand.New(rand.NewPCG(3, 4))
			positions := []int{0, 5, 12, 50, 99, 100, 104, 105, 106, 109, 110, len(data) - 1, len(data) - 9, len(data) - 17, len(data) - 20}
			for range 50 {
				positions = append(positions, rng.IntN(len(data)))
			}
			for _, pos := range positions {
				bad := bytes.Clone(data)
				bad[pos] ^= byte(1 + rng.IntN(255))
				_, _, perr, serr := decodeBoth(t, bad)
				if serr != nil && perr == nil {
					t.Fatalf("byte %d of %d changed: library fails (%v), parallel does not", pos, len(data), serr)
				}
			}
			for _, n := range []int{0, 50, 100, 106, 110, 5000, len(data) / 2, len(data) - 1, len(data) - 16} {
				_, _, perr, serr := decodeBoth(t, data[:n])
				if serr == nil || perr == nil {
					t.Fatalf("truncated to %d: parallel %v, library %v", n, perr, serr)
				}
			}
			_, _, perr, _ = decodeBoth(t, append(bytes.Clone(data), 0))
			if perr == nil {
				t.Fatal("data after trailer accepted")
			}
		})
	}
}

// encodeLegacyLTX writes a snapshot in the older LTX page format (each
// page an LZ4 frame, no size field), which ltx.Decoder still reads.
func encodeLegacyLTX(t *testing.T, hdr ltx.Header, pages [][]byte) []byte {
	t.Helper()
	var out bytes.Buffer
	crc := uint64(0)
	hb, _ := hdr.MarshalBinary()
	out.Write(hb)
	crc = crc64.Update(crc, crcISO, hb)
	var index []byte
	for i, data := range pages {
		pgno := uint32(i + 1)
		off := out.Len()
		ph := ltx.PageHeader{Pgno: pgno}
		pb, _ := ph.MarshalBinary()
		out.Write(pb)
		crc = crc64.Update(crc, crcISO, pb)
		zw := lz4.NewWriter(&out)
		if _, err := zw.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		crc = crc64.Update(crc, crcISO, data)
		index = binary.AppendUvarint(index, uint64(pgno))
		index = binary.AppendUvarint(index, uint64(off))
		index = binary.AppendUvarint(index, uint64(out.Len()-off))
	}
	zero := make([]byte, ltx.PageHeaderSize)
	out.Write(zero)
	crc = crc64.Update(crc, crcISO, zero)
	index = binary.AppendUvarint(index, 0)
	index = binary.BigEndian.AppendUint64(index, uint64(len(index)))
	out.Write(index)
	crc = crc64.Update(crc, crcISO, index)
	tr := ltx.Trailer{}
	tb, _ := tr.MarshalBinary()
	crc = crc64.Update(crc, crcISO, tb[:ltx.TrailerChecksumOffset])
	tr.FileChecksum = ltx.ChecksumFlag | ltx.Checksum(crc)
	tb, _ = tr.MarshalBinary()
	out.Write(tb)
	return out.Bytes()
}

// Files in the older page format restore through ltx.Decoder.
func TestLegacyFormatRestores(t *testing.T) {
	const ps = 4096
	var pages [][]byte
	var want []byte
	for p := range 300 {
		pages = append(pages, testPage(uint32(p), ps))
		want = append(want, pages[p]...)
	}
	data := encodeLegacyLTX(t, ltx.Header{Version: ltx.Version, Flags: ltx.HeaderFlagNoChecksum, PageSize: ps, Commit: 300, MinTXID: 1, MaxTXID: 1, Timestamp: 1}, pages)
	if err := ltx.NewDecoder(bytes.NewReader(data)).Verify(); err != nil {
		t.Fatalf("legacy fixture: %v", err)
	}
	par, seq, perr, serr := decodeBoth(t, data)
	if perr != nil || serr != nil {
		t.Fatalf("parallel %v, library %v", perr, serr)
	}
	if !bytes.Equal(par, want) || !bytes.Equal(seq, want) {
		t.Fatal("legacy file restored wrong bytes")
	}
}
