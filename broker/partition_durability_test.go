package broker

import (
	"bytes"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sediment-io/sediment/meta"
	"github.com/sediment-io/sediment/segment"
	"github.com/sediment-io/sediment/segment/vfs"
)

func memPartition(t *testing.T, fsys *vfs.MemFS) *Partition {
	t.Helper()
	sc := segment.DefaultConfig()
	sc.FS = fsys
	sc.SegmentBytes = 64 << 10 // several segments, so rolls happen under load too
	tc := TopicConfig{MaxMessageBytes: 1 << 20, SegmentBytes: 64 << 10, TimestampBeforeMaxMs: math.MaxInt64,
		TimestampAfterMaxMs: math.MaxInt64, MinInsyncReplicas: 1, RetentionMs: -1, RetentionBytes: -1}
	p, err := openPartition("/data/logs/t-0.x", "t", meta.TopicID{1}, 0, 1, sc, tc)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.setLeadership(meta.Partition{Replicas: []int32{1}, ISR: []int32{1}, Leader: 1}); err != nil {
		t.Fatal(err)
	}
	return p
}

// An OS crash (every byte not fsynced is lost) in the middle of concurrent acks=all appends: every
// batch that was acknowledged is in the recovered log at its acknowledged offset, byte for byte,
// and the idempotent producer state rebuilt from it still recognises the acknowledged batches.
func TestAcknowledgedAppendsSurviveOSCrash(t *testing.T) {
	fsys := vfs.NewMemFS()
	p := memPartition(t, fsys)

	type ack struct {
		base int64
		body []byte // the batch as stored (base offset and leader epoch stamped)
		pid  int64
		seq  int32
	}
	var (
		mu    sync.Mutex
		acked []ack
		stop  atomic.Bool
		wg    sync.WaitGroup
	)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pid := int64(100 + w)
			for seq := int32(0); !stop.Load(); seq += 3 {
				batch := testBatch(t, testBatchOpts{records: 3, ts: time.Now().UnixMilli(), idempotent: true,
					pid: pid, seq: seq, value: bytes.Repeat([]byte{byte(w)}, 200+int(seq))})
				r := p.appendClient(9, -1, batch)
				if r.err != nil {
					return // the crash: the log refuses from now on
				}
				mu.Lock()
				acked = append(acked, ack{r.baseOffset, append([]byte(nil), batch...), pid, seq})
				mu.Unlock()
			}
		}()
	}
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 300 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	fsys.Crash() // appends in flight now fail or are lost; acknowledged ones must not be
	stop.Store(true)
	wg.Wait()

	p2 := memPartition(t, fsys)
	defer p2.close()
	mu.Lock()
	defer mu.Unlock()
	for _, a := range acked {
		r := p2.read(a.base, len(a.body), true)
		if r.err != 0 || !bytes.Equal(r.data, a.body) {
			t.Fatalf("acknowledged batch at %d: err %d, %d bytes, equal=%v", a.base, r.err, len(r.data), bytes.Equal(r.data, a.body))
		}
		// A retry of an acknowledged batch is still recognised after the crash (last five per producer).
		if c := p2.producers.check(nil, a.pid, 0, a.seq, a.seq+2); c.errCode == 0 && !c.dup {
			t.Fatalf("producer %d seq %d: neither duplicate nor refused after recovery", a.pid, a.seq)
		}
	}
	t.Logf("%d acknowledged batches all recovered; log end %d", len(acked), p2.log.EndOffset())
}

// A failing fsync is never acknowledged: the produce gets KAFKA_STORAGE_ERROR, the high watermark
// does not move past it, and the log refuses further appends.
func TestFailedSyncIsNotAcknowledged(t *testing.T) {
	fsys := vfs.NewMemFS()
	p := memPartition(t, fsys)
	if r := p.appendClient(9, -1, testBatch(t, testBatchOpts{ts: time.Now().UnixMilli()})); r.err != nil {
		t.Fatal(r.err)
	}
	hw := p.HighWatermark()
	fsys.SetInjector(func(op vfs.Op, name string) error {
		if op == vfs.OpSync {
			return syscall.EIO
		}
		return nil
	})
	r := p.appendClient(9, -1, testBatch(t, testBatchOpts{ts: time.Now().UnixMilli()}))
	if r.err == nil || r.err.code != kerr.KafkaStorageError.Code {
		t.Fatalf("append with failing fsync: %+v", r)
	}
	if p.HighWatermark() != hw {
		t.Fatalf("HW moved to %d past a failed fsync (was %d)", p.HighWatermark(), hw)
	}
	fsys.SetInjector(nil)
	r = p.appendClient(9, -1, testBatch(t, testBatchOpts{ts: time.Now().UnixMilli()}))
	if r.err == nil {
		t.Fatal("log accepted an append after a failed fsync")
	}
	if !errors.Is(p.log.Err(), syscall.EIO) {
		t.Logf("log error: %v", p.log.Err())
	}
}
