package broker

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sediment-io/sediment/meta"
	"github.com/sediment-io/sediment/tiering"
)

// TestTierReadCorruptObject: one byte of a segment object in the bucket flips (bit rot, a faulty
// proxy), inside its first batch. A read of that batch answers KAFKA_STORAGE_ERROR with no data,
// never the damaged batch; the segment's later batches and the segments around it read intact; a consumer from offset 0 gets every
// record before the damaged segment, byte-identical, and nothing from it onwards; the broker
// logs an error naming the object.
func TestTierReadCorruptObject(t *testing.T) {
	const topic = "rot"
	b, logs, want, p, segs := tieredSegmentsInBucket(t, topic, false)
	bad := segs[len(segs)/2]

	// Flip one byte inside the object's first batch (past its 61-byte header: covered by its CRC).
	ctx := testCtx(t)
	rc, err := b.tier.store.Get(ctx, bad.ObjectKey, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	obj[100] ^= 0x20
	if err := b.tier.store.Put(ctx, bad.ObjectKey, bytes.NewReader(obj), int64(len(obj))); err != nil {
		t.Fatal(err)
	}

	if r := p.read(bad.BaseOffset, 1<<20, true); r.err != kerr.KafkaStorageError.Code || len(r.data) != 0 {
		t.Fatalf("read of the damaged batch at %d: err %d, %d bytes; want KAFKA_STORAGE_ERROR and no data",
			bad.BaseOffset, r.err, len(r.data))
	}
	// Only that batch is withheld: the segment's last batch, and the segments around it, read intact.
	if raw := readRaw(t, p, bad.LastOffset, bad.LastOffset+1, 4<<10); len(raw) == 0 {
		t.Fatal("nothing read from the damaged segment's last batch")
	}
	before, after := segs[len(segs)/2-1], segs[len(segs)/2+1]
	if raw := readRaw(t, p, before.BaseOffset, before.LastOffset+1, 4<<10); len(raw) == 0 {
		t.Fatal("nothing read from the segment before the damaged one")
	}
	if raw := readRaw(t, p, after.BaseOffset, after.LastOffset+1, 4<<10); len(raw) == 0 {
		t.Fatal("nothing read from the segment after the damaged one")
	}

	// A consumer from 0: everything before the damaged segment, then only errors.
	got, fetchErrs := consumeUpToHole(t, b, topic, want, bad.BaseOffset)
	logged := checkRefusedReads(t, b, logs, topic, bad.ObjectKey, "tiering: damaged data in the object store, not served", "sediment_tier_remote_corrupt_reads_total")
	t.Logf("consumer: %d records, then %d fetch errors; logged: %v", got, fetchErrs, logged)
}

// checkRefusedReads checks what the broker shows after refusing reads of the object key of topic
// (damaged, or missing from the bucket): one error line with msg naming the object, however often
// the consumer asked; the counter metric at every refused read (at least 2); and no outage
// declared, so other cold reads keep their full timeout. It returns the logged error.
func checkRefusedReads(t *testing.T, b *Broker, logs *capturedLog, topic, key, msg, metric string) any {
	t.Helper()
	lines := logs.withMsg(t, msg, map[string]any{"topic": topic, "level": "ERROR"})
	if len(lines) != 1 || !strings.Contains(fmt.Sprint(lines[0]["err"]), key) {
		t.Fatalf("error lines %q: %v; want one naming %s", msg, lines, key)
	}
	if n := metricInt(t, scrape(t, b), metric); n < 2 {
		t.Errorf("%s = %d, want every refused read (at least 2)", metric, n)
	}
	if b.tier.remote.Failing(time.Hour) {
		t.Errorf("refused reads of %s made the store count as failing", key)
	}
	return lines[0]["err"]
}

// tieredSegmentsInBucket starts a broker on the file store with a tiered one-partition topic of 600
// records whose history is in the bucket only, in at least 4 objects (segs, the manifest). byBroker:
// the broker's own upload task moved it there and keeps running (remote retention included);
// otherwise the test moved it by hand (tierAll) and no task runs.
func tieredSegmentsInBucket(t *testing.T, topic string, byBroker bool) (*Broker, *capturedLog, []producedRecord, *Partition, []meta.RemoteSegment) {
	t.Helper()
	cfg := testBrokerConfig(t, t.TempDir())
	if byBroker {
		tieredConfig(&cfg)
	}
	logs := captureLogs(&cfg)
	b, err := Start(testCtx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	base := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	var (
		want []producedRecord
		p    *Partition
	)
	if byBroker {
		_, want, p = tieredTopicWith(t, b, topic, 600, base, 11, tierByBroker) // nothing read from the bucket yet: nothing cached
	} else {
		_, want, p = tieredTopic(t, b, topic, 600, base, 11)
		b.tier.remote = tiering.NewRemoteLog(b.tier.store, 16) // nothing cached before the caller damages the bucket
	}
	segs := b.meta.State().RemoteSegments(p.topicID, 0)
	if len(segs) < 4 {
		t.Fatalf("%d remote segments, want at least 4", len(segs))
	}
	return b, logs, want, p, segs
}

// consumeUpToHole consumes partition 0 of topic from offset 0 (resetting to the earliest offset on
// OFFSET_OUT_OF_RANGE, kgo's default, as auto.offset.reset=earliest) and checks it gets want's
// records below hole once each, in order and byte-identical, then nothing for two seconds of
// asking. It returns how many records and fetch errors it saw.
func consumeUpToHole(t *testing.T, b *Broker, topic string, want []producedRecord, hole int64) (got, fetchErrs int) {
	t.Helper()
	cl := newTestClient(t, b, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(0)}}),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxPartitionBytes(32<<10))
	deadline := time.Now().Add(30 * time.Second)
	var quietSince time.Time
	for time.Now().Before(deadline) {
		pctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		fs := cl.PollFetches(pctx)
		cancel()
		fs.EachError(func(_ string, _ int32, err error) {
			if err != context.DeadlineExceeded {
				fetchErrs++
			}
		})
		for it := fs.RecordIter(); !it.Done(); {
			r := it.Next()
			if r.Offset != int64(got) || r.Offset >= hole {
				t.Fatalf("consumer got offset %d (next expected %d; hole from %d)", r.Offset, got, hole)
			}
			if w := want[got]; !bytes.Equal(r.Key, w.key) || !bytes.Equal(r.Value, w.value) || !r.Timestamp.Equal(w.ts) {
				t.Fatalf("record %d differs from what was produced", got)
			}
			got++
		}
		if int64(got) == hole {
			if quietSince.IsZero() {
				quietSince = time.Now()
			} else if time.Since(quietSince) > 2*time.Second {
				break // two more seconds of asking served nothing from the hole
			}
		}
	}
	if int64(got) != hole {
		t.Fatalf("consumer read %d records, want the %d before the hole", got, hole)
	}
	return got, fetchErrs
}
