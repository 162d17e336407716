package tiering_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/sediment-io/sediment/meta"
	"github.com/sediment-io/sediment/segment"
	"github.com/sediment-io/sediment/tiering"
)

func startMeta(t *testing.T) *meta.Node {
	t.Helper()
	cfg := meta.DefaultConfig()
	cfg.NodeID = 1
	cfg.DataDir = t.TempDir()
	cfg.RaftBind = "127.0.0.1:0"
	cfg.RaftHeartbeatTimeout = 200 * time.Millisecond
	cfg.RaftElectionTimeout = 200 * time.Millisecond
	cfg.RaftLeaderLeaseTimeout = 100 * time.Millisecond
	cfg.RaftCommitTimeout = 5 * time.Millisecond
	n, err := meta.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := n.RegisterBroker(ctx, meta.BrokerRegistration{ID: 1, Host: "127.0.0.1", Port: 9092}); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRemoteEndToEndWithMeta: archiver → file:// store → manifest in a real meta node; then the whole
// history read back from the bucket byte-identical, timestamp lookups, remote retention, and topic
// deletion leaving nothing behind.
func TestRemoteEndToEndWithMeta(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n := startMeta(t)
	topic, err := n.CreateTopic(ctx, meta.TopicSpec{Name: "events", Partitions: 1, ReplicationFactor: 1})
	if err != nil {
		t.Fatal(err)
	}
	store, err := tiering.NewFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	scfg := segment.DefaultConfig()
	scfg.SegmentBytes = 8 << 10
	l, err := segment.Open(filepath.Join(t.TempDir(), "events-0"), scfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	rig := &archiverRig{t: t, log: l}
	rig.produce(60)
	man := tiering.MetaManifest{Node: n, Topic: topic.ID, Partition: 0}
	arch := tiering.NewPartitionArchiver(store, topic.ID, 0, &testLog{l: l, limit: -1, epoch: 0}, man, tiering.ArchiverConfig{Compress: true})
	up, err := arch.RunOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	segs := n.State().RemoteSegments(topic.ID, 0)
	if up < 5 || len(segs) != up {
		t.Fatalf("uploaded %d, manifest has %d", up, len(segs))
	}
	for i := 1; i < len(segs); i++ {
		if segs[i].BaseOffset != segs[i-1].LastOffset+1 {
			t.Fatalf("manifest not contiguous at %d: %+v %+v", i, segs[i-1], segs[i])
		}
	}
	end := segs[len(segs)-1].LastOffset + 1
	if rr, err := tiering.OpenRemote(ctx, store, segs[0].ObjectKey, segs[0].Size); err != nil || rr.Footer.Flags&tiering.FlagLZ4Chunks == 0 {
		t.Fatalf("archiver with Compress wrote a verbatim object (%v)", err)
	}

	// The whole uploaded history, read from the bucket, equals the local log.
	rl := tiering.NewRemoteLog(store, 2) // a tiny footer cache: evictions on the way
	var remote, local []byte
	for off := int64(0); off < end; {
		res, err := rl.Read(ctx, segs, off, 3000, true)
		if err != nil {
			t.Fatalf("remote read at %d: %v", off, err)
		}
		if res.NextOffset <= off {
			t.Fatalf("no progress at %d", off)
		}
		remote = append(remote, res.Data...)
		off = res.NextOffset
	}
	for off := int64(0); off < end; {
		res, err := l.Read(off, segment.ReadOptions{MaxBytes: 1 << 20, MaxOffset: end, MinOneBatch: true})
		if err != nil {
			t.Fatal(err)
		}
		local = append(local, res.Data...)
		off = res.NextOffset
	}
	if !bytes.Equal(remote, local) {
		t.Fatalf("remote history %d bytes differs from local %d bytes", len(remote), len(local))
	}
	// Timestamp lookups land on the first batch reaching the target (batch maxTimestamp = base ts + offset + 2).
	hdrs, err := segment.SplitBatches(local)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(hdrs); i += 7 {
		want := hdrs[i]
		off, ts, ok, err := rl.OffsetForTimestamp(ctx, segs, want.MaxTimestamp())
		if err != nil || !ok || off != want.BaseOffset() || ts != want.MaxTimestamp() {
			t.Fatalf("OffsetForTimestamp(%d) = %d %d %v %v; want %d", want.MaxTimestamp(), off, ts, ok, err, want.BaseOffset())
		}
	}
	if _, _, ok, err := rl.OffsetForTimestamp(ctx, segs, hdrs[len(hdrs)-1].MaxTimestamp()+1); ok || err != nil {
		t.Fatalf("timestamp past the remote end found: %v %v", ok, err)
	}

	// Remote retention of the two oldest segments: manifest first, then objects.
	gone := segs[:2]
	if err := tiering.DeleteRemoteSegments(ctx, store, man, gone); err != nil {
		t.Fatal(err)
	}
	rl.Forget(gone[0].ObjectKey, gone[1].ObjectKey)
	segs = n.State().RemoteSegments(topic.ID, 0)
	if segs[0].BaseOffset != gone[1].LastOffset+1 {
		t.Fatalf("manifest starts at %d after retention, want %d", segs[0].BaseOffset, gone[1].LastOffset+1)
	}
	for _, g := range gone {
		if _, err := store.Head(ctx, g.ObjectKey); !errors.Is(err, tiering.ErrNotFound) {
			t.Fatalf("expired object %s still there: %v", g.ObjectKey, err)
		}
	}
	if _, err := rl.Read(ctx, segs, 0, 100, true); !errors.Is(err, segment.ErrOffsetOutOfRange) {
		t.Fatalf("read below the remote start = %v, want ErrOffsetOutOfRange", err)
	}

	// Topic deletion: every object goes, and meta forgets the topic's remote data.
	if err := n.DeleteTopic(ctx, "events"); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(n.State().DeletedTopicsWithRemoteData(), topic.ID) {
		t.Fatal("meta does not list the deleted topic as having remote data")
	}
	if err := tiering.DeleteTopicObjects(ctx, store, n, topic.ID); err != nil {
		t.Fatal(err)
	}
	if objs, err := store.List(ctx, ""); err != nil || len(objs) != 0 {
		t.Fatalf("bucket after topic deletion: %d objects, %v", len(objs), err)
	}
	if left := n.State().DeletedTopicsWithRemoteData(); len(left) != 0 {
		t.Fatalf("meta still lists remote data of deleted topics: %v", left)
	}
}
