package broker

import (
	"math"
	"testing"
	"time"

	"github.com/sediment-io/sediment/meta"
	"github.com/sediment-io/sediment/segment"
)

func benchPartition(b *testing.B, flush segment.FlushPolicy) *Partition {
	b.Helper()
	sc := segment.DefaultConfig()
	sc.FlushPolicy = flush
	sc.FlushInterval = time.Second
	tc := TopicConfig{MaxMessageBytes: 1 << 20, SegmentBytes: 1 << 30, TimestampBeforeMaxMs: math.MaxInt64,
		TimestampAfterMaxMs: math.MaxInt64, MinInsyncReplicas: 1, RetentionMs: -1, RetentionBytes: -1}
	p, err := openPartition(b.TempDir(), "bench", meta.TopicID{1}, 0, 1, sc, tc)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.close() })
	if err := p.setLeadership(meta.Partition{Replicas: []int32{1}, ISR: []int32{1}, Leader: 1}); err != nil {
		b.Fatal(err)
	}
	return p
}

// The produce path of one partition: validation, producer checks, append, durability, HW.
// 16 records of 1 KiB per batch; "parallel" runs concurrent producers sharing fsyncs.
func BenchmarkPartitionAppend(b *testing.B) {
	for _, c := range []struct {
		name     string
		flush    segment.FlushPolicy
		parallel bool
	}{
		{"flush=always", segment.FlushAlways, false},
		{"flush=always/parallel", segment.FlushAlways, true},
		{"flush=os", segment.FlushOS, false},
	} {
		b.Run(c.name, func(b *testing.B) {
			p := benchPartition(b, c.flush)
			batch := testBatch(b, testBatchOpts{records: 16, ts: time.Now().UnixMilli(), value: make([]byte, 1024)})
			b.SetBytes(int64(len(batch)))
			b.ReportAllocs()
			if !c.parallel {
				buf := make([]byte, len(batch))
				for i := 0; i < b.N; i++ {
					copy(buf, batch)
					if r := p.appendClient(9, -1, buf); r.err != nil {
						b.Fatal(r.err)
					}
				}
				return
			}
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				buf := make([]byte, len(batch))
				for pb.Next() {
					copy(buf, batch)
					if r := p.appendClient(9, -1, buf); r.err != nil {
						b.Error(r.err)
						return
					}
				}
			})
		})
	}
}

// The fetch path of one partition: 1 MiB reads from a warm log.
func BenchmarkPartitionRead(b *testing.B) {
	p := benchPartition(b, segment.FlushOS)
	batch := testBatch(b, testBatchOpts{records: 16, ts: time.Now().UnixMilli(), value: make([]byte, 1024)})
	for i := 0; i < 4096; i++ {
		buf := append([]byte(nil), batch...)
		if r := p.appendClient(9, 1, buf); r.err != nil {
			b.Fatal(r.err)
		}
	}
	end := p.HighWatermark()
	b.ReportAllocs()
	b.ResetTimer()
	var off int64
	var total int64
	for i := 0; i < b.N; i++ {
		r := p.read(off, 1<<20, true)
		if r.err != 0 || len(r.data) == 0 {
			b.Fatalf("read at %d: err %d, %d bytes", off, r.err, len(r.data))
		}
		total += int64(len(r.data))
		off += int64(len(r.data)/len(batch)) * 16
		if off >= end {
			off = 0
		}
	}
	b.SetBytes(total / int64(b.N))
}
