package broker

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestTierReadMissingObject: an object the manifest still lists is deleted from the bucket behind
// Sediment's back (an operator, a lifecycle rule). A read of it answers KAFKA_STORAGE_ERROR, not
// OFFSET_OUT_OF_RANGE: a consumer resetting to the earliest offset (kgo's default, as Java's
// auto.offset.reset=earliest) would otherwise jump back to offset 0, read the history again and
// hit the same hole, for ever. The consumer gets every record before the hole once, in order,
// then only retriable errors; the segments after the hole read intact; one error line names the
// object however often the consumer asks. The history was moved to the bucket by the broker's own
// upload task, which keeps running (its retention passes meet the hole too).
func TestTierReadMissingObject(t *testing.T) {
	const topic = "hole"
	b, logs, want, p, segs := tieredSegmentsInBucket(t, topic, true)
	gone := segs[len(segs)/2]
	if err := b.tier.store.Delete(testCtx(t), gone.ObjectKey); err != nil {
		t.Fatal(err)
	}

	if r := p.read(gone.BaseOffset, 1<<20, true); r.err != kerr.KafkaStorageError.Code || len(r.data) != 0 {
		t.Fatalf("read of the missing object at %d: err %d, %d bytes; want KAFKA_STORAGE_ERROR and no data",
			gone.BaseOffset, r.err, len(r.data))
	}
	after := segs[len(segs)/2+1]
	if raw := readRaw(t, p, after.BaseOffset, after.LastOffset+1, 4<<10); len(raw) == 0 {
		t.Fatal("nothing read from the segment after the missing one")
	}

	consumeUpToHole(t, b, topic, want, gone.BaseOffset) // no reset to 0, no records from the hole
	checkRefusedReads(t, b, logs, topic, gone.ObjectKey, "tiering: a manifest entry's object is missing from the bucket, not served", "sediment_tier_remote_missing_object_reads_total")

	// The operator's way out: DeleteRecords past the hole. A consumer from the earliest offset
	// then starts right after it, and remote retention drops the manifest entries below the new
	// log start, the missing object's among them (deleting a missing key is a no-op on every
	// store: tiering/objstoretest).
	next := gone.LastOffset + 1
	res, err := newTestAdmin(t, b).DeleteRecords(testCtx(t), kadmOffsets(topic, 0, next))
	if err != nil {
		t.Fatal(err)
	}
	if dr, _ := res.Lookup(topic, 0); dr.Err != nil || dr.LowWatermark != next {
		t.Fatalf("DeleteRecords past the hole: %+v", dr)
	}
	cl := newTestClient(t, b, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	pctx, cancel := context.WithTimeout(testCtx(t), 15*time.Second)
	defer cancel()
	fs := cl.PollRecords(pctx, 1)
	if err := fs.Err0(); err != nil {
		t.Fatal(err)
	}
	r := fs.Records()[0]
	if w := want[next]; r.Offset != next || !bytes.Equal(r.Value, w.value) {
		t.Fatalf("after DeleteRecords the consumer starts at offset %d, want %d with the produced value", r.Offset, next)
	}
	waitFor(t, "remote retention to drop the manifest entries below the new log start", func() bool {
		segs := b.meta.State().RemoteSegments(p.topicID, 0)
		return len(segs) > 0 && segs[0].BaseOffset >= next
	})
}

// TestObjectLostCatchesUpFirst: a missing object is called lost only if the manifest still lists it
// after this broker's meta replica has caught up with what is committed. A replica that had not yet
// applied retention's removal of the entry (the entry is listed, then gone after the catch-up) is a
// read that raced retention: OFFSET_OUT_OF_RANGE, no error line, no missing-object count. A failed
// catch-up (no meta leader) keeps the safe answer, lost. Nothing is caught up when the entry is
// already gone.
func TestObjectLostCatchesUpFirst(t *testing.T) {
	errNoLeader := errors.New("no leader")
	for _, c := range []struct {
		name         string
		listed       []bool // what covered answers, call by call
		catchUpErr   error
		want         bool
		wantCatchUps int
	}{
		{"entry already gone", []bool{false}, nil, false, 0},
		{"replica lagged retention's removal", []bool{true, false}, nil, false, 1},
		{"listed after catching up: lost", []bool{true, true}, nil, true, 1},
		{"catch-up failed: lost", []bool{true}, errNoLeader, true, 1},
	} {
		calls, catchUps := 0, 0
		covered := func() bool {
			if calls >= len(c.listed) {
				t.Fatalf("%s: covered asked %d times", c.name, calls+1)
			}
			calls++
			return c.listed[calls-1]
		}
		catchUp := func(context.Context) error { catchUps++; return c.catchUpErr }
		if got := objectLost(context.Background(), covered, catchUp); got != c.want || catchUps != c.wantCatchUps {
			t.Fatalf("%s: lost=%v after %d catch-ups, want %v after %d", c.name, got, catchUps, c.want, c.wantCatchUps)
		}
	}
}
