package tiering_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/sediment-io/sediment/tiering"
)

// BenchmarkBuildSegmentObject measures building a ~16 MiB segment object (validating every batch and
// indexing it) verbatim and with lz4 chunks, on log-like text and on incompressible payloads.
func BenchmarkBuildSegmentObject(b *testing.B) {
	for _, text := range []bool{true, false} {
		data, _ := genSegmentC(rand.New(rand.NewPCG(3, 4)), 0, 11000, text)
		for _, compress := range []bool{false, true} {
			b.Run(fmt.Sprintf("text=%v/lz4=%v", text, compress), func(b *testing.B) {
				b.SetBytes(int64(len(data)))
				b.ReportAllocs()
				var stored int64
				for b.Loop() {
					obj, err := tiering.BuildSegmentObjectWith(bytes.NewReader(data), int64(len(data)), tiering.BuildOptions{Compress: compress})
					if err != nil {
						b.Fatal(err)
					}
					stored = obj.Footer.StoredLen
				}
				b.ReportMetric(float64(stored)/float64(len(data)), "stored/logical")
			})
		}
	}
}
