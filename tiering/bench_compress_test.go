package tiering_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/sediment-io/sediment/meta"
	"github.com/sediment-io/sediment/segment"
	"github.com/sediment-io/sediment/tiering"
)

// jsonSegment builds ~size bytes of batches of 10 JSON-like event records each (random ids, users,
// SKUs and amounts in a fixed shape: what an uncompressed producer of application events sends;
// lz4 stores it at roughly a quarter), or of random bytes when random is set.
func jsonSegment(size int, random bool) []byte {
	r := rand.New(rand.NewPCG(5, 6))
	events := []string{"page_view", "add_to_cart", "checkout", "search", "login", "logout"}
	var data []byte
	off, ts := int64(0), int64(1_700_000_000_000)
	var p bytes.Buffer
	for len(data) < size {
		p.Reset()
		for range 10 {
			fmt.Fprintf(&p, `{"id":"%016x","ts":%d,"user":"user-%06d","event":%q,"session":"%08x","items":[`,
				r.Uint64(), ts, r.IntN(1_000_000), events[r.IntN(len(events))], r.Uint32())
			for j := range 1 + r.IntN(4) {
				fmt.Fprintf(&p, `{"sku":"SKU-%07d","qty":%d,"price":%d.%02d,"currency":"EUR"},`, r.IntN(10_000_000), j+1, r.IntN(500), r.IntN(100))
			}
			fmt.Fprintf(&p, `{}],"ip":"10.%d.%d.%d","agent":"Mozilla/5.0 (X11; Linux x86_64)"}`, r.IntN(256), r.IntN(256), r.IntN(256))
		}
		payload := p.Bytes()
		if random {
			for i := range payload {
				payload[i] = byte(r.Uint32())
			}
		}
		data = append(data, makeBatch(off, 10, ts, ts+9, payload)...)
		off += 10
		ts += 10
	}
	return data
}

// BenchmarkTierCompression compares remote.log.segment.compression.type none and lz4 side by side on
// the same ~32 MiB closed segment and the same MinIO, alternating (and swapping the order) within each
// iteration. Upload = PartitionArchiver.RunOnce as the broker runs it (read the segment file, the lz4
// probe, build the object, Put; the manifest is in memory); replay = a cold RemoteLog with the broker's
// default chunk cache reading offset 0 to the end in 1 MiB fetches. Rates are of segment bytes.
// Reports each rate, lz4/none ratios, and stored/logical bytes of each.
func BenchmarkTierCompression(b *testing.B) {
	srv := needMinIO(b)
	for _, kind := range []string{"json", "random"} {
		b.Run(kind, func(b *testing.B) {
			data := jsonSegment(32<<20, kind == "random")
			cfg := segment.DefaultConfig()
			cfg.SegmentBytes = 64 << 20
			cfg.FlushPolicy = segment.FlushOS
			l, err := segment.Open(filepath.Join(b.TempDir(), "p"), cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			if _, err := l.AppendReplicated(data); err != nil {
				b.Fatal(err)
			}
			if err := l.Roll(); err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			s := newS3(b, srv, srv.Endpoint, uniquePrefix(b))
			var up, rep [2]time.Duration
			var stored [2]int64
			b.SetBytes(2 * int64(len(data)))
			for i := 0; b.Loop(); i++ {
				for k := range 2 {
					m := (i + k) % 2 // 0 none, 1 lz4; the first one alternates
					man := &fakeManifest{}
					var topic meta.TopicID
					topic[0] = byte(m + 1)
					arch := tiering.NewPartitionArchiver(s, topic, 0, &testLog{l: l, limit: -1}, man, tiering.ArchiverConfig{Compress: m == 1})
					t0 := time.Now()
					if n, err := arch.RunOnce(ctx); err != nil || n != 1 {
						b.Fatalf("RunOnce = %d, %v", n, err)
					}
					t1 := time.Now()
					segs := man.RemoteSegments()
					stored[m] = segs[0].Size
					rl := tiering.NewRemoteLogWith(s, tiering.RemoteLogConfig{MaxFooters: 16, CacheBytes: tiering.DefaultCacheBytes})
					n := 0
					for off := segs[0].BaseOffset; off <= segs[0].LastOffset; {
						res, err := rl.Read(ctx, segs, off, 1<<20, true)
						if err != nil {
							b.Fatal(err)
						}
						n += len(res.Data)
						off = res.NextOffset
					}
					up[m] += t1.Sub(t0)
					rep[m] += time.Since(t1)
					if n != len(data) {
						b.Fatalf("replayed %d of %d bytes", n, len(data))
					}
					s.Delete(ctx, segs[0].ObjectKey)
				}
			}
			mb := float64(b.N) * float64(len(data)) / 1e6
			b.ReportMetric(mb/up[0].Seconds(), "none-upload-MB/s")
			b.ReportMetric(mb/up[1].Seconds(), "lz4-upload-MB/s")
			b.ReportMetric(up[0].Seconds()/up[1].Seconds(), "upload-lz4/none")
			b.ReportMetric(mb/rep[0].Seconds(), "none-replay-MB/s")
			b.ReportMetric(mb/rep[1].Seconds(), "lz4-replay-MB/s")
			b.ReportMetric(rep[0].Seconds()/rep[1].Seconds(), "replay-lz4/none")
			b.ReportMetric(float64(stored[0])/float64(len(data)), "none-stored/logical")
			b.ReportMetric(float64(stored[1])/float64(len(data)), "lz4-stored/logical")
		})
	}
}

// BenchmarkTierCompressionCPU is the CPU side of BenchmarkTierCompression without MinIO: building the
// object from a ~32 MiB JSON-like segment (validate, index, and for lz4 compress) and reading it all
// back from a MemStore through RemoteReader (for lz4: CRC and decompress every chunk), none and lz4
// alternating within each iteration. Rates are of segment bytes.
func BenchmarkTierCompressionCPU(b *testing.B) {
	data := jsonSegment(32<<20, false)
	ctx := context.Background()
	s := tiering.NewMemStore()
	var build, read [2]time.Duration
	b.SetBytes(2 * int64(len(data)))
	for i := 0; b.Loop(); i++ {
		for k := range 2 {
			m := (i + k) % 2
			t0 := time.Now()
			obj, err := tiering.BuildSegmentObjectWith(bytes.NewReader(data), int64(len(data)), tiering.BuildOptions{Compress: m == 1})
			if err != nil {
				b.Fatal(err)
			}
			build[m] += time.Since(t0)
			key := fmt.Sprintf("o%d", m)
			if err := s.Put(ctx, key, obj, obj.Size()); err != nil {
				b.Fatal(err)
			}
			t1 := time.Now()
			rr, err := tiering.OpenRemote(ctx, s, key, obj.Size())
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			for off := obj.Footer.BaseOffset; off <= obj.Footer.LastOffset; {
				res, err := rr.Read(ctx, off, 1<<20, true)
				if err != nil {
					b.Fatal(err)
				}
				n += len(res.Data)
				off = res.NextOffset
			}
			read[m] += time.Since(t1)
			if n != len(data) {
				b.Fatalf("read %d of %d bytes", n, len(data))
			}
		}
	}
	mb := float64(b.N) * float64(len(data)) / 1e6
	b.ReportMetric(mb/build[0].Seconds(), "none-build-MB/s")
	b.ReportMetric(mb/build[1].Seconds(), "lz4-build-MB/s")
	b.ReportMetric(mb/read[0].Seconds(), "none-read-MB/s")
	b.ReportMetric(mb/read[1].Seconds(), "lz4-read-MB/s")
}
