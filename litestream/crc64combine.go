package litestream

import (
	"hash/crc64"
	"sync"
)

// crc64Combine returns the CRC-64/ISO (as hash/crc64 computes it) of A||B
// from the CRC of A, the CRC of B and the length of B, so the pieces of
// one long checksum can be computed in parallel (zlib's crc32_combine,
// for 64 bits).
func crc64Combine(crcA, crcB uint64, lenB int64) uint64 {
	if lenB <= 0 {
		return crcA
	}
	return gf2Times(crc64ShiftOp(lenB), crcA) ^ crcB
}

// shiftOps caches the operator for each length (batches mostly share
// one), up to a bound.
var shiftOps struct {
	sync.Mutex
	m map[int64]*[64]uint64
}

// crc64ShiftOp returns the GF(2) operator that advances a CRC state over
// n zero bytes.
func crc64ShiftOp(n int64) *[64]uint64 {
	shiftOps.Lock()
	op := shiftOps.m[n]
	shiftOps.Unlock()
	if op != nil {
		return op
	}
	var odd, even, res [64]uint64
	odd[0] = crc64.ISO // one zero bit
	for i, row := 1, uint64(1); i < 64; i, row = i+1, row<<1 {
		odd[i] = row
	}
	gf2Square(&even, &odd) // two zero bits
	gf2Square(&odd, &even) // four zero bits
	for i := range res {
		res[i] = 1 << i
	}
	for m := n; m > 0; {
		gf2Square(&even, &odd) // 8, 32, 128... zero bits
		if m&1 != 0 {
			res = gf2Compose(&even, &res)
		}
		if m >>= 1; m == 0 {
			break
		}
		gf2Square(&odd, &even) // 16, 64, ... zero bits
		if m&1 != 0 {
			res = gf2Compose(&odd, &res)
		}
		m >>= 1
	}
	shiftOps.Lock()
	if shiftOps.m == nil || len(shiftOps.m) >= 64 {
		shiftOps.m = map[int64]*[64]uint64{}
	}
	shiftOps.m[n] = &res
	shiftOps.Unlock()
	return &res
}

func gf2Times(mat *[64]uint64, vec uint64) uint64 {
	var sum uint64
	for i := 0; vec != 0; i, vec = i+1, vec>>1 {
		if vec&1 != 0 {
			sum ^= mat[i]
		}
	}
	return sum
}

func gf2Square(square, mat *[64]uint64) {
	for i := range mat {
		square[i] = gf2Times(mat, mat[i])
	}
}

// gf2Compose returns a after b.
func gf2Compose(a, b *[64]uint64) [64]uint64 {
	var c [64]uint64
	for i := range b {
		c[i] = gf2Times(a, b[i])
	}
	return c
}
