package broker

import (
	"encoding/binary"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// BenchmarkFetchFromLog: one connection fetching 8 partitions × 1 MiB (from the page cache) per
// request, as franz-go's consumer does, the client only reading the frames. Measures the broker's
// read + encode + write per response byte (the consume phase of `sediment bench` without the
// client's decoding).
func BenchmarkFetchFromLog(b *testing.B) {
	b.Run("cache", func(b *testing.B) { benchmarkFetchFromLog(b, false) })
	// cold: the page cache of the log files is dropped before every fetch (timer stopped), so
	// each fetch reads the disk, as the consume phase of `sediment bench` does.
	b.Run("cold", func(b *testing.B) { benchmarkFetchFromLog(b, true) })
}

func benchmarkFetchFromLog(b *testing.B, cold bool) {
	br := newTestBroker(b)
	ctx := testCtx(b)
	if _, err := newTestAdmin(b, br).CreateTopic(ctx, 8, 1, nil, "fb"); err != nil {
		b.Fatal(err)
	}
	cl := newTestClient(b, br, kgo.DefaultProduceTopic("fb"), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		kgo.ProducerBatchMaxBytes(128<<10), kgo.ProducerLinger(0), kgo.ProducerBatchCompression(kgo.NoCompression()))
	val := make([]byte, 1024)
	for range 8 * 1600 { // over 1 MiB per partition, in batches of at most 128 KiB
		cl.Produce(ctx, &kgo.Record{Value: val}, func(_ *kgo.Record, err error) {
			if err != nil {
				b.Error(err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	req := kmsg.NewPtrFetchRequest()
	req.Version = 12
	req.MaxBytes = 50 << 20
	req.MinBytes = 1
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = "fb"
	for p := range int32(8) {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.PartitionMaxBytes = p, 1<<20
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	fr := frame(req, 1)
	rc := dialRaw(b, br)
	var body []byte
	fetch := func() int {
		rc.write(fr)
		var size [4]byte
		if _, err := io.ReadFull(rc.br, size[:]); err != nil {
			b.Fatal(err)
		}
		n := int(binary.BigEndian.Uint32(size[:]))
		if cap(body) < n {
			body = make([]byte, n)
		}
		if _, err := io.ReadFull(rc.br, body[:n]); err != nil {
			b.Fatal(err)
		}
		return n
	}
	n := fetch()
	if n < 7<<20 {
		b.Fatalf("response of %d bytes, want about 8 MiB", n)
	}
	b.SetBytes(int64(n))
	b.ReportAllocs()
	cpu0, dropCPU := processCPU(), int64(0)
	b.ResetTimer()
	for range b.N {
		if cold {
			b.StopTimer()
			c := processCPU()
			dropPageCache(b, br.cfg.DataDir)
			dropCPU += processCPU() - c
			b.StartTimer()
		}
		fetch()
	}
	b.StopTimer()
	cpu0 += dropCPU
	// CPU time (user + system, broker and reading client) per response: steadier than wall time
	// on a shared machine, where other processes' load stretches the wall clock.
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
}

// dropPageCache writes back and evicts the page cache of every file under dir.
func dropPageCache(b *testing.B, dir string) {
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() || !strings.HasSuffix(path, ".log") {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		unix.Fdatasync(int(f.Fd()))
		return unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
	})
	if err != nil {
		b.Fatal(err)
	}
}

// processCPU is this process's user + system CPU time in nanoseconds.
func processCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
