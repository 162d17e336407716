package tiering_test

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sediment-io/sediment/meta"
	"github.com/sediment-io/sediment/segment"
	"github.com/sediment-io/sediment/tiering"
	"github.com/sediment-io/sediment/tiering/objstoretest"
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

// BenchmarkReplayFourPartitionsGETBytes replays four partitions of two 24 MiB objects each from
// offset 0, the four read concurrently 10 MiB each per round (as one consumer's fetches of four
// partitions from sediment bench), through a RemoteLog with the broker's default cache over a
// memory store, and reports the bytes fetched per byte of the objects (1.0: every chunk fetched
// once; more: chunks evicted before they were read and fetched again) for chunk sizes and
// prefetch depths. No network: what it measures is the cache's policy, not speed
// (TestReplayFourPartitionsFetchesEachChunkOnce asserts the default's 1.0 with GET latency).
//
//	go test ./tiering/ -run '^$' -bench ReplayFourPartitionsGETBytes -benchtime 1x
func BenchmarkReplayFourPartitionsGETBytes(b *testing.B) {
	st := &getBytesStore{Store: httpLikeStore{tiering.NewMemStore()}}
	parts, total := putReplayPartitions(b, st, 2, 24<<20, 256<<10)
	for _, cfg := range []struct{ chunk, prefetch int }{{4, 3}, {8, 2}, {8, 3}} {
		b.Run(fmt.Sprintf("chunk=%dMiB/prefetch=%d", cfg.chunk, cfg.prefetch), func(b *testing.B) {
			var got, gets int64
			for b.Loop() {
				rl := tiering.NewRemoteLogWith(st, tiering.RemoteLogConfig{CacheBytes: tiering.DefaultCacheBytes,
					CacheChunkBytes: int64(cfg.chunk) << 20, PrefetchChunks: cfg.prefetch})
				b0, g0 := st.bytes.Load(), st.gets.Load()
				replayRounds(b, rl, parts, 10<<20)
				time.Sleep(50 * time.Millisecond) // let the last prefetches land before counting
				got, gets = st.bytes.Load()-b0, st.gets.Load()-g0
			}
			b.ReportMetric(float64(got)/float64(total), "GET-bytes/object-bytes")
			b.ReportMetric(float64(gets), "GETs/replay")
		})
	}
}

// getBytesStore counts Gets and the bytes they ask for.
type getBytesStore struct {
	tiering.Store
	gets, bytes atomic.Int64
}

func (s *getBytesStore) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	s.gets.Add(1)
	s.bytes.Add(n)
	return s.Store.Get(ctx, key, off, n)
}

// BenchmarkColdFetchLatency is the wait of a consumer's first fetch from an object no one read
// before, through a RemoteLog with the broker's default chunk cache, against a model of one S3
// connection: each GET answers after 20 ms and its body flows at 100 MB/s (a memory store behind
// objstoretest.RateStore). Reported: the first fetch's wait (the footer's GET included) and the
// time to read the first 64 MiB in fetches of that size. With whole-chunk loads the first fetch
// waited for a 16 MiB chunk whatever it asked for.
//
//	go test ./tiering/ -run '^$' -bench ColdFetchLatency -benchtime 5x
func BenchmarkColdFetchLatency(b *testing.B) {
	ctx := context.Background()
	obj, _ := segmentObject64(b)
	st := &objstoretest.RateStore{Store: tiering.NewMemStore(), Latency: 20 * time.Millisecond, BytesPerSec: 100e6}
	key := "segments/bench/0/00000000000000000000-0-0000000000000000.seg"
	if err := st.Put(ctx, key, obj, obj.Size()); err != nil {
		b.Fatal(err)
	}
	segs := []meta.RemoteSegment{{BaseOffset: obj.Footer.BaseOffset, LastOffset: obj.Footer.LastOffset, Size: obj.Size(), ObjectKey: key}}
	for _, fetch := range []int{1 << 20, 10 << 20} {
		b.Run(fmt.Sprintf("fetch=%dMiB", fetch>>20), func(b *testing.B) {
			var first, all time.Duration
			for b.Loop() {
				rl := tiering.NewRemoteLogWith(st, tiering.RemoteLogConfig{CacheBytes: tiering.DefaultCacheBytes})
				t0 := time.Now()
				var n int
				for off := int64(0); off <= obj.Footer.LastOffset; {
					res, err := rl.Read(ctx, segs, off, fetch, true)
					if err != nil {
						b.Fatal(err)
					}
					if n == 0 {
						first += time.Since(t0)
					}
					n += len(res.Data)
					off = res.NextOffset
				}
				all += time.Since(t0)
				if int64(n) != obj.Footer.DataLen {
					b.Fatalf("read %d bytes, want %d", n, obj.Footer.DataLen)
				}
			}
			b.ReportMetric(float64(first.Milliseconds())/float64(b.N), "first-fetch-ms")
			b.ReportMetric(float64(obj.Footer.DataLen)*float64(b.N)/1e6/all.Seconds(), "replay-MB/s")
		})
	}
}
