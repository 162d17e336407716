package broker

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sediment-io/sediment/tiering"
)

// Replays from the bucket through a chunk cache far smaller than the history: the chunk buffers a
// fetch response's records lie in are released once the connection has written it, so later loads
// reuse them (the cache's reuse counter moves), and every record still arrives as produced. A
// writer that released before its write returned, or a fetch that let its buffers go while the
// response still referenced them, would hand the consumer another chunk's bytes.
func TestTierReadReusesChunkBuffersAfterWrite(t *testing.T) {
	b := newTestBroker(t)
	const chunk = 8 << 10
	b.tier.remote = tiering.NewRemoteLogWith(b.tier.store, tiering.RemoteLogConfig{
		CacheBytes: 6 * chunk, CacheChunkBytes: chunk, PrefetchChunks: 1,
	})
	_, want, _ := tieredTopic(t, b, "reuse", 3000, time.Now().Add(-time.Hour).Truncate(time.Millisecond), 11) // ~750 KiB in 16 KiB segments
	for replay := range 2 {
		before := b.tier.remote.CacheStats()
		// 20 KiB per partition fetch: most responses span two or three chunks.
		consumeAll(t, b, "reuse", want, 30*time.Second, kgo.FetchMaxPartitionBytes(20<<10))
		st := b.tier.remote.CacheStats()
		loads := st.Misses + st.Prefetched - before.Misses - before.Prefetched
		if reused := st.Reused - before.Reused; loads < 50 || reused < loads/2 {
			t.Fatalf("replay %d: %d chunk buffers reused for %d chunk loads (stats %+v): fetch responses do not release their chunks", replay, reused, loads, st)
		}
		// The loads CRC-check the batches as they arrive, so the fetches serving them need not.
		if checked := st.CheckedOnArrival - before.CheckedOnArrival; checked < loads*chunk/2 {
			t.Fatalf("replay %d: %d batch bytes checked on arrival for %d chunk loads of %d bytes", replay, checked, loads, chunk)
		}
	}
}

// loadingWriter runs load before its first Write (another fetch loading chunks while a response
// is on its way to the socket), then collects what is written.
type loadingWriter struct {
	load func()
	out  bytes.Buffer
}

func (w *loadingWriter) Write(b []byte) (int, error) {
	if w.load != nil {
		w.load()
		w.load = nil
	}
	return w.out.Write(b)
}

// A fetch response written in place from chunk buffers (spliced) keeps them held until the socket
// write has returned: chunks loaded meanwhile by other fetches go into other buffers, and the
// response carries the bytes it was built with. Deterministic: the response's chunks have left the
// cache (its Hold is their last reference) and the writer loads new chunks before writing.
func TestFetchWriterReleasesChunksAfterTheWrite(t *testing.T) {
	b := newTestBroker(t)
	cl := newTestClient(t, b, kgo.ProducerLinger(0), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	newTierTopic(t, kadm.NewClient(cl), "held", 512<<10) // reads of 128 KiB within one object
	want := produceTierRecords(t, cl, "held", 3000, time.Now().Add(-time.Hour).Truncate(time.Millisecond), 12)
	p := tierTestPartition(t, b, "held", 0)
	tierAll(t, b, p)
	const chunk = 64 << 10
	b.tier.remote = tiering.NewRemoteLogWith(b.tier.store, tiering.RemoteLogConfig{
		CacheBytes: 2 * chunk, CacheChunkBytes: chunk, PrefetchChunks: -1,
	})
	n := int64(len(want))
	// A read of chunks still loading returns the part that has arrived: read until the result
	// spans the first two chunks whole.
	var r readResult
	waitFor(t, "a read from the bucket across two cached chunks", func() bool {
		r = p.readParts(0, 2*spliceMinRecordBytes, true)
		if r.err != 0 {
			t.Fatalf("read from the bucket: %v", kerr.ErrorForCode(r.err))
		}
		if r.hold != nil && r.parts != nil && r.size() >= spliceMinRecordBytes {
			return true
		}
		r.hold.Release()
		return false
	})
	records := slices.Concat(append([][]byte{r.data}, r.parts...)...)
	// Push the response's chunks out of the cache: two reads far along, released at once.
	for _, off := range []int64{n / 2, 3 * n / 4} {
		other := p.readParts(off, chunk, true)
		other.hold.Release()
	}
	resp := kmsg.NewPtrFetchResponse()
	resp.Version = 12
	rt := kmsg.NewFetchResponseTopic()
	rt.Topic = "held"
	rp := kmsg.NewFetchResponseTopicPartition()
	var split []splitRecordSet
	if r.parts != nil {
		rp.RecordBatches = r.parts[0]
		split = []splitRecordSet{{topic: 0, partition: 0, parts: r.parts}}
	} else {
		rp.RecordBatches = r.data
	}
	rt.Partitions = append(rt.Partitions, rp)
	resp.Topics = append(resp.Topics, rt)
	attachFetch(resp, fetchAttachment{split: split, holds: []*tiering.Hold{r.hold}})

	var fb frameBuilder
	fb.reset()
	fb.add(response{corr: 7, kresp: resp})
	if len(fb.parts) == 0 {
		t.Fatal("the response was not spliced: its records were copied before the write, so the test shows nothing")
	}
	reused := b.tier.remote.CacheStats().Reused
	w := &loadingWriter{load: func() {
		for _, off := range []int64{n / 4, 7 * n / 8} { // two more chunks: what a released buffer would take
			other := p.readParts(off, chunk, true)
			other.hold.Release()
		}
	}}
	if r.hold.Released() {
		t.Fatal("the response's chunks were released before the write")
	}
	if _, err := fb.writeTo(w); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(w.out.Bytes(), records) {
		t.Fatal("the written response does not carry the records it was built with: a chunk buffer was reused before the write")
	}
	if b.tier.remote.CacheStats().Reused == reused {
		t.Fatal("the loads during the write reused no buffer: the test shows nothing")
	}
	if !r.hold.Released() {
		t.Fatal("the response's chunks are still held after the write: the writer does not release them")
	}
}
