package broker

import (
	"bytes"
	"testing"
	"time"

	"github.com/sediment-io/sediment/meta"
	"github.com/sediment-io/sediment/segment"
	"github.com/sediment-io/sediment/segment/vfs"
)

// logBytesUpTo is a replica's raw local log from its local start up to offset end (exclusive).
func logBytesUpTo(t *testing.T, p *Partition, end int64) []byte {
	t.Helper()
	var out []byte
	for off := p.log.LocalStartOffset(); off < end; {
		rr, err := p.log.Read(off, segment.ReadOptions{MaxBytes: 1 << 20, MaxOffset: end, MinOneBatch: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(rr.Data) == 0 {
			break
		}
		out = append(out, rr.Data...)
		off = rr.NextOffset
	}
	return out
}

// Issue 5, "with flush policy always, a follower fsyncs before its next fetch reports the
// position": acks=all counts a follower's copy once that follower's next Fetch carries an offset
// past it, and the fetcher takes that offset from the log end right after appendFromLeader. So
// whatever offset appendFromLeader has made visible must survive an OS crash of the follower (every
// byte not fsynced lost, vfs.MemFS). A follower copies a leader's log batch by batch, as the
// fetcher does, and its file system crashes right after an append; after recovery its log
// reaches at least the last position a fetch would have reported, byte-identical to the leader's.
func TestFollowerAppendDurableBeforeItsPositionIsReported(t *testing.T) {
	const epoch = 3
	leader := memPartition(t, vfs.NewMemFS())
	defer leader.close()
	if err := leader.setLeadership(meta.Partition{Replicas: []int32{1}, ISR: []int32{1}, Leader: 1, LeaderEpoch: epoch}); err != nil {
		t.Fatal(err)
	}
	ffs := vfs.NewMemFS()
	follower := memPartition(t, ffs)
	if err := follower.setLeadership(meta.Partition{Replicas: []int32{1, 2}, ISR: []int32{1, 2}, Leader: 2, LeaderEpoch: epoch}); err != nil {
		t.Fatal(err)
	}

	// The crash comes right after an append returned, the moment a fetch would report it: a
	// follower that only scheduled its fsync would lose that tail.
	var last int64 // the FetchOffset the follower's last fetch reported
	for i := 0; last < 2000; i++ {
		// A few leader appends per "fetch", so that responses hold several batches.
		for j := 0; j < 1+i%3; j++ {
			b := testBatch(t, testBatchOpts{records: 1 + j, ts: time.Now().UnixMilli(), value: bytes.Repeat([]byte{byte(i)}, 100+i%700)})
			if r := leader.appendClient(9, 1, b); r.err != nil {
				t.Fatalf("leader append: %v", r.err)
			}
		}
		from := follower.log.EndOffset()
		rr, err := leader.log.Read(from, segment.ReadOptions{MaxBytes: 256 << 10, MaxOffset: leader.log.EndOffset(), MinOneBatch: true})
		if err != nil {
			t.Fatalf("leader read at %d: %v", from, err)
		}
		if err := follower.appendFromLeader(rr.Data, leader.HighWatermark(), 0, epoch); err != nil {
			t.Fatalf("follower append at %d: %v", from, err)
		}
		last = follower.log.EndOffset() // rp.FetchOffset of the next replica fetch
	}
	ffs.Crash()
	follower.close()

	recovered := memPartition(t, ffs)
	defer recovered.close()
	if end := recovered.log.EndOffset(); end < last {
		t.Fatalf("follower reported offset %d to the leader, recovered only up to %d after a crash", last, end)
	}
	if !bytes.Equal(logBytesUpTo(t, recovered, last), logBytesUpTo(t, leader, last)) {
		t.Fatalf("follower's recovered log below its reported offset %d differs from the leader's", last)
	}
	t.Logf("follower crashed after reporting offset %d; recovered log end %d (leader %d)", last, recovered.log.EndOffset(), leader.log.EndOffset())
}
