package litestream

import (
	"hash/crc64"
	"math/rand/v2"
	"testing"
)

func TestCRC64Combine(t *testing.T) {
	tab := crc64.MakeTable(crc64.ISO)
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 300000)
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	for _, n := range []int{0, 1, 2, 7, 100, 4106, 65536, 300000} {
		for _, split := range []int{0, 1, n / 3, n} {
			if split > n {
				continue
			}
			a, b := buf[:split], buf[split:n]
			want := crc64.Update(0, tab, buf[:n])
			got := crc64Combine(crc64.Update(0, tab, a), crc64.Update(0, tab, b), int64(len(b)))
			if got != want {
				t.Fatalf("n=%d split=%d: %x, want %x", n, split, got, want)
			}
			// Chained from a non-zero start, as the decoder does.
			pre := buf[n/2 : n/2+10]
			want = crc64.Update(crc64.Update(0, tab, pre), tab, buf[:n])
			got = crc64Combine(crc64Combine(crc64.Update(0, tab, pre), crc64.Update(0, tab, a), int64(len(a))), crc64.Update(0, tab, b), int64(len(b)))
			if got != want {
				t.Fatalf("chained n=%d split=%d: %x, want %x", n, split, got, want)
			}
		}
	}
}
