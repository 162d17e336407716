package tiering_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/sediment-io/sediment/meta"
	"github.com/sediment-io/sediment/tiering"
)

// BenchmarkRemoteLogReadCPU is the remote read path's own cost per byte, without a network or a
// disk: one 32 MiB segment object in a memory store (bodies read like HTTP bodies), read from offset 0 to the end through a
// RemoteLog in fetches of fetch bytes (1 MiB: kgo's default partition limit; 10 MiB: the limit
// `sediment bench` replays with), with the chunk cache cold (a fresh RemoteLog each iteration:
// every chunk is loaded once, as in a first replay) or warm (kept: a repeated replay), or off.
// What it shows is the copying, zeroing and CRC checking per replayed byte (B/op: bytes allocated
// per iteration; ideal is about one copy of the object when cold, none when warm). api=read is
// RemoteLog.Read (one slice per result: chunks joined), api=parts is ReadParts (the chunk slices,
// as the broker's fetch path takes them).
//
//	go test ./tiering/ -run '^$' -bench RemoteLogReadCPU -benchtime 20x
func BenchmarkRemoteLogReadCPU(b *testing.B) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 7))
	var data []byte
	payload := make([]byte, 256<<10) // franz-go batches of a fast producer are hundreds of KiB
	for off := int64(0); len(data) < 32<<20; off += 256 {
		for j := range payload {
			payload[j] = byte(rng.Uint32())
		}
		data = append(data, makeBatch(off, 256, 1_700_000_000_000+off, 1_700_000_000_000+off, payload)...)
	}
	obj, err := tiering.BuildSegmentObject(bytes.NewReader(data), int64(len(data)), 0)
	if err != nil {
		b.Fatal(err)
	}
	st := httpLikeStore{tiering.NewMemStore()}
	const key = "segments/bench/0/k"
	if err := st.Put(ctx, key, obj, obj.Size()); err != nil {
		b.Fatal(err)
	}
	segs := []meta.RemoteSegment{{BaseOffset: obj.Footer.BaseOffset, LastOffset: obj.Footer.LastOffset, Size: obj.Size(), ObjectKey: key}}
	for _, fetch := range []int{1 << 20, 10 << 20} {
		for _, cache := range []string{"off", "cold", "warm"} {
			for _, api := range []string{"read", "parts"} {
				b.Run(fmt.Sprintf("fetch=%dMiB/cache=%s/api=%s", fetch>>20, cache, api), func(b *testing.B) {
					newRL := func() *tiering.RemoteLog {
						cfg := tiering.RemoteLogConfig{}
						if cache != "off" {
							cfg.CacheBytes = tiering.DefaultCacheBytes
						}
						return tiering.NewRemoteLogWith(st, cfg)
					}
					rl := newRL()
					replay := func() {
						n := 0
						for off := segs[0].BaseOffset; off <= segs[0].LastOffset; {
							if api == "parts" {
								res, err := rl.ReadParts(ctx, segs, off, fetch, true)
								if err != nil {
									b.Fatal(err)
								}
								n += res.Len()
								off = res.NextOffset
								continue
							}
							res, err := rl.Read(ctx, segs, off, fetch, true)
							if err != nil {
								b.Fatal(err)
							}
							n += len(res.Data)
							off = res.NextOffset
						}
						if n != len(data) {
							b.Fatalf("replayed %d bytes, want %d", n, len(data))
						}
					}
					replay() // warm: chunks cached; all: footer decoded, code paths hot
					b.SetBytes(int64(len(data)))
					b.ReportAllocs()
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						if cache != "warm" {
							b.StopTimer()
							rl = newRL()
							b.StartTimer()
						}
						replay()
					}
				})
			}
		}
	}
}

// httpLikeStore hands out Get bodies the way an HTTP response body is: a plain Reader (the memory
// store's bytes.Reader would let io.Copy use WriteTo, which hides how a reader copies from S3).
type httpLikeStore struct{ tiering.Store }

func (s httpLikeStore) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	rc, err := s.Store.Get(ctx, key, off, n)
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{rc, rc}, nil
}
