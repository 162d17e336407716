package tiering_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/sediment-io/sediment/meta"
	"github.com/sediment-io/sediment/segment"
	"github.com/sediment-io/sediment/tiering"
)

// BenchmarkReplay64MiB reads a 64 MiB segment from offset 0 to the end in 1 MiB fetches: from MinIO
// through RemoteLog (footer cached after the first fetch; one ranged GET per fetch, no read-ahead yet)
// and from the local segment.Log holding the same batches, alternating within each iteration.
// Reports both rates and remote/local (the replay target is ≥ 0.8 through the broker).
func BenchmarkReplay64MiB(b *testing.B) {
	srv := needMinIO(b)
	ctx := context.Background()
	obj, full := segmentObject64(b)
	data := full[:obj.Footer.DataLen]
	cfg := segment.DefaultConfig()
	cfg.SegmentBytes = 1 << 30
	cfg.FlushPolicy = segment.FlushOS
	l, err := segment.Open(filepath.Join(b.TempDir(), "p"), cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	if _, err := l.AppendReplicated(data); err != nil {
		b.Fatal(err)
	}
	s := newS3(b, srv, srv.Endpoint, uniquePrefix(b))
	key := "segments/bench/0/00000000000000000000-0-0000000000000000.seg"
	if err := s.Put(ctx, key, obj, obj.Size()); err != nil {
		b.Fatal(err)
	}
	segs := []meta.RemoteSegment{{BaseOffset: obj.Footer.BaseOffset, LastOffset: obj.Footer.LastOffset, Size: obj.Size(), ObjectKey: key}}
	end := obj.Footer.LastOffset + 1
	const fetch = 1 << 20
	var remoteT, localT time.Duration
	b.SetBytes(2 * obj.Footer.DataLen)
	for b.Loop() {
		rl := tiering.NewRemoteLog(s, 16) // cold footer cache each round
		t0 := time.Now()
		var n int
		for off := int64(0); off < end; {
			res, err := rl.Read(ctx, segs, off, fetch, true)
			if err != nil {
				b.Fatal(err)
			}
			n += len(res.Data)
			off = res.NextOffset
		}
		t1 := time.Now()
		var m int
		for off := int64(0); off < end; {
			res, err := l.Read(off, segment.ReadOptions{MaxBytes: fetch, MinOneBatch: true})
			if err != nil {
				b.Fatal(err)
			}
			m += len(res.Data)
			off = res.NextOffset
		}
		remoteT += t1.Sub(t0)
		localT += time.Since(t1)
		if n != len(data) || m != len(data) {
			b.Fatalf("read %d remote, %d local bytes, want %d", n, m, len(data))
		}
	}
	mb := float64(b.N) * float64(len(data)) / 1e6
	b.ReportMetric(mb/remoteT.Seconds(), "remote-MB/s")
	b.ReportMetric(mb/localT.Seconds(), "local-MB/s")
	b.ReportMetric(localT.Seconds()/remoteT.Seconds(), "ratio")
}
