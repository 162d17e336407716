package broker

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sediment-io/sediment/meta"
	"github.com/sediment-io/sediment/tiering"
)

// local.retention.bytes bounds a tiered topic's local copy by size (local.retention.ms left at -2,
// i.e. retention.ms = 7 days, so only the byte bound can act):
//   - while uploads fail, no local segment goes, however far over the bound the local copy is
//     (only uploaded segments may be deleted locally);
//   - once uploaded, the oldest local segments are deleted, whole, until deleting one more would
//     leave less than local.retention.bytes (Kafka's retention.bytes rule over the local segments);
//   - the log start offset stays 0 (the bucket still has everything) and a consumer from offset 0
//     reads every record.
func TestTierLocalRetentionBytes(t *testing.T) {
	ds := &downStore{}
	b := newTestBroker(t, tieredConfig, func(c *Config) {
		c.tierStoreWrap = func(s tiering.Store) tiering.Store { ds.Store = s; return ds }
	})
	const limit = 5000
	createTopic(t, b, "lrb", 1, map[string]*string{
		"segment.bytes":         ptr("2048"),
		"local.retention.bytes": ptr(fmt.Sprint(limit)),
		"remote.storage.enable": ptr("true"),
	})
	p := tierPartition(t, b, "lrb", 0)
	if tc := p.config(); tc.LocalRetentionMs != -2 || tc.LocalRetentionBytes != limit || tc.RetentionBytes != -1 {
		t.Fatalf("topic config: local.retention.ms %d local.retention.bytes %d retention.bytes %d", tc.LocalRetentionMs, tc.LocalRetentionBytes, tc.RetentionBytes)
	}
	cl := newTestClient(t, b, kgo.DefaultProduceTopic("lrb"), kgo.ProducerBatchCompression(kgo.NoCompression()))
	const n, size = 60, 500

	// Store down: nothing is uploaded, so nothing may go locally.
	ds.down.Store(true)
	produceValues(t, cl, 0, n, size)
	localBytes := func() (total int64, segs int) {
		for _, s := range p.log.Segments() {
			total += s.Size
			segs++
		}
		return total, segs
	}
	time.Sleep(500 * time.Millisecond) // ten retention checks (log.retention.check.interval.ms = 50)
	if ls := p.log.LocalStartOffset(); ls != 0 {
		t.Fatalf("local start %d while nothing was uploaded: a segment not in the bucket was deleted", ls)
	}
	if total, segs := localBytes(); total < 3*limit || segs < 10 {
		t.Fatalf("local copy %d bytes in %d segments: the test needs it well over %d", total, segs, limit)
	}

	// Store back: uploads drain, then the local copy shrinks to the bound.
	ds.down.Store(false)
	settled := func() bool {
		if err := localInvariant(p); err != nil {
			t.Fatal(err)
		}
		segs := p.log.Segments()
		if uploadedEnd(b.meta.State().RemoteSegments(p.topicID, 0)) < segs[len(segs)-1].BaseOffset {
			return false // closed segments still to upload
		}
		total, _ := localBytes()
		return len(segs) >= 2 && total-segs[0].Size < limit
	}
	waitFor(t, "uploads to drain and the local copy to come down to local.retention.bytes", settled)
	time.Sleep(200 * time.Millisecond) // more retention checks: nothing further may go
	segs := p.log.Segments()
	total, _ := localBytes()
	if total < limit {
		t.Fatalf("local copy %d bytes after retention, below local.retention.bytes %d: too much deleted", total, limit)
	}
	if total-segs[0].Size >= limit {
		t.Fatalf("local copy %d bytes with an oldest segment of %d: it should have gone (limit %d)", total, segs[0].Size, limit)
	}
	// Whole segments: the local start is a segment boundary of the uploaded log.
	manifest := checkManifest(t, b.meta.State(), p.topicID, 0, storeHead(ds))
	ls := p.log.LocalStartOffset()
	if ls == 0 || !slices.ContainsFunc(manifest, func(s meta.RemoteSegment) bool { return s.BaseOffset == ls }) || segs[0].BaseOffset != ls {
		t.Fatalf("local start %d (first local segment %d) is not the base of an uploaded segment", ls, segs[0].BaseOffset)
	}
	if p.log.StartOffset() != 0 || manifest[0].BaseOffset != 0 {
		t.Fatalf("log start %d, manifest from %d: local retention must not move the log start", p.log.StartOffset(), manifest[0].BaseOffset)
	}
	consumeAllValues(t, []string{b.Addr()}, "lrb", n, size)
}
