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
// position": acks=all counts a follower's copy once that follower's fetch reports a durable offset
// past it. Replication is pipelined (replica_durable.go): the fetcher writes what it got
// (appendFromLeader does not fsync) and fetches on; its fetch offset is only its log end, and the
// offset that counts is the durable-offset tag (durableEnd), which its durability reporter
// advances by fsyncing in the background. So whatever durableEnd has reported must survive an OS
// crash of the follower (every byte not fsynced lost, vfs.MemFS). A follower copies a leader's log
// batch by batch, as the fetcher does, syncing every third round as the reporter would, and its
// file system crashes right after an append (an unsynced tail present); after recovery its log
// reaches at least the last durable offset a fetch would have reported, byte-identical to the
// leader's. The leader side (only that offset counts toward the HW) is
// TestUnsyncedFollowerWritesNeverCountTowardHW.
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

	// The crash comes right after an append returned: a durable offset that ran ahead of the
	// fsyncs would lose that tail.
	var last int64 // the durable offset the follower's last fetch reported (its tag)
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
		if i%3 == 2 {
			follower.syncedEnd() // the durability reporter's fsync round
		}
		last = follower.durableEnd() // the durable-offset tag of the next replica fetch
	}
	// One more fetch written, not yet synced: the crash comes with an unsynced tail.
	b := testBatch(t, testBatchOpts{records: 3, ts: time.Now().UnixMilli(), value: []byte("tail")})
	if r := leader.appendClient(9, 1, b); r.err != nil {
		t.Fatalf("leader append: %v", r.err)
	}
	rr, err := leader.log.Read(follower.log.EndOffset(), segment.ReadOptions{MaxBytes: 256 << 10, MaxOffset: leader.log.EndOffset(), MinOneBatch: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := follower.appendFromLeader(rr.Data, leader.HighWatermark(), 0, epoch); err != nil {
		t.Fatal(err)
	}
	if last = follower.durableEnd(); follower.log.EndOffset() <= last {
		t.Fatal("no unsynced tail at the crash: the test would not show anything")
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
