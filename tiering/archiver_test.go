package tiering_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sediment-io/sediment/meta"
	"github.com/sediment-io/sediment/segment"
	"github.com/sediment-io/sediment/segment/vfs"
	"github.com/sediment-io/sediment/tiering"
)

// testLog adapts a real segment.Log to tiering.LogView.
type testLog struct {
	l     *segment.Log
	limit int64 // -1 = EndOffset
	epoch int32
}

func (t *testLog) Segments() []segment.SegmentInfo { return t.l.Segments() }
func (t *testLog) LeaderEpoch() int32              { return t.epoch }
func (t *testLog) UploadLimit() int64 {
	if t.limit < 0 {
		return t.l.EndOffset()
	}
	return t.limit
}

// fakeManifest applies meta's rules for AddRemoteSegment (no overlap, unique keys) and can fail.
type fakeManifest struct {
	mu            sync.Mutex
	segs          []meta.RemoteSegment
	failNext      int // error without applying
	applyThenFail int // apply, then report an error (lost reply)
}

func (m *fakeManifest) RemoteSegments() []meta.RemoteSegment {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]meta.RemoteSegment(nil), m.segs...)
}

func (m *fakeManifest) AddRemoteSegment(ctx context.Context, s meta.RemoteSegment) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failNext > 0 {
		m.failNext--
		return errors.New("injected: raft not leader")
	}
	if n := len(m.segs); n > 0 && s.BaseOffset <= m.segs[n-1].LastOffset {
		return fmt.Errorf("overlap: %d..%d after %d", s.BaseOffset, s.LastOffset, m.segs[n-1].LastOffset)
	}
	m.segs = append(m.segs, s)
	if m.applyThenFail > 0 {
		m.applyThenFail--
		return errors.New("injected: commit applied, reply lost")
	}
	return nil
}

// faultyStore fails Puts: before storing, or after storing (the "answered 500 but applied" case).
type faultyStore struct {
	tiering.Store
	mu                  sync.Mutex
	failPut, applyThenF int
}

func (f *faultyStore) Put(ctx context.Context, key string, body io.ReaderAt, size int64) error {
	f.mu.Lock()
	fail, apply := f.failPut > 0, f.failPut == 0 && f.applyThenF > 0
	if fail {
		f.failPut--
	} else if apply {
		f.applyThenF--
	}
	f.mu.Unlock()
	if fail {
		return errors.New("injected: 503 SlowDown (retries exhausted)")
	}
	if err := f.Store.Put(ctx, key, body, size); err != nil {
		return err
	}
	if apply {
		return errors.New("injected: 500 after the object was stored")
	}
	return nil
}

type archiverRig struct {
	t        *testing.T
	log      *segment.Log
	view     *testLog
	mem      *tiering.MemStore
	faults   *faultyStore
	ops      *loggingStore // innermost: logs what reached the store
	manifest *fakeManifest
	arch     *tiering.PartitionArchiver
	topic    meta.TopicID
	ids      int
	now      time.Time
}

func newArchiverRig(t *testing.T) *archiverRig {
	cfg := segment.DefaultConfig()
	cfg.SegmentBytes = 8 << 10
	l, err := segment.Open(filepath.Join(t.TempDir(), "p"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	rig := &archiverRig{t: t, log: l, view: &testLog{l: l, limit: -1, epoch: 5}, mem: tiering.NewMemStore(), manifest: &fakeManifest{}, now: time.Now()}
	rig.topic[15] = 0x0f
	rig.ops = &loggingStore{Store: rig.mem}
	rig.faults = &faultyStore{Store: rig.ops}
	rig.arch = tiering.NewPartitionArchiver(rig.faults, rig.topic, 7, rig.view, rig.manifest, tiering.ArchiverConfig{
		NewUploadID: func() string { rig.ids++; return fmt.Sprintf("%016x", rig.ids) },
		Now:         func() time.Time { return rig.now },
		OrphanGrace: time.Minute,
	})
	return rig
}

// produce appends n batches of 3 records (~1 KiB each); with 8 KiB segments that rolls every ~8 batches.
// Payloads are half random bytes, half a repeated text line: lz4 shrinks them by ~40%, so an archiver
// with Compress passes its probe (worthCompressing) and writes lz4 chunks.
func (r *archiverRig) produce(n int) {
	rnd := rand.New(rand.NewPCG(uint64(r.log.EndOffset()), 1))
	for i := 0; i < n; i++ {
		payload := make([]byte, 1000)
		for j := range payload[:500] {
			payload[j] = byte(rnd.Uint32())
		}
		line := fmt.Sprintf("level=info msg=\"order accepted\" batch=%d ", i)
		for j := 500; j < len(payload); j++ {
			payload[j] = line[j%len(line)]
		}
		ts := int64(1_700_000_000_000) + r.log.EndOffset()
		if _, err := r.log.Append(makeBatch(0, 3, ts, ts+2, payload), 5); err != nil {
			r.t.Fatal(err)
		}
	}
}

// key is the object key the archiver builds for base offset and upload number id.
func (r *archiverRig) key(base int64, id int) string {
	return tiering.SegmentKey{Topic: r.topic, Partition: 7, BaseOffset: base, LeaderEpoch: 5, UploadID: fmt.Sprintf("%016x", id)}.String()
}

// objSize is the size of the object for closed segment si from byte position 0.
func (r *archiverRig) objSize(si segment.SegmentInfo) int64 {
	raw, err := readFile(si.Path, si.Size)
	if err != nil {
		r.t.Fatal(err)
	}
	obj, err := tiering.BuildSegmentObject(bytes.NewReader(raw), si.Size, 0)
	if err != nil {
		r.t.Fatal(err)
	}
	return obj.Size()
}

func (r *archiverRig) closed() []segment.SegmentInfo {
	var out []segment.SegmentInfo
	for _, s := range r.log.Segments() {
		if s.Closed {
			out = append(out, s)
		}
	}
	return out
}

func (r *archiverRig) expectOps(want ...string) {
	r.t.Helper()
	if got := r.ops.take(); got != strings.Join(want, "\n") {
		r.t.Fatalf("store operations:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}

// checkManifest: contiguous, each entry's object exists and reads back the log's bytes.
func (r *archiverRig) checkManifest(wantEntries int) {
	r.t.Helper()
	ctx := context.Background()
	segs := r.manifest.RemoteSegments()
	if len(segs) != wantEntries {
		r.t.Fatalf("manifest has %d entries, want %d: %+v", len(segs), wantEntries, segs)
	}
	for i, s := range segs {
		if i > 0 && s.BaseOffset != segs[i-1].LastOffset+1 {
			r.t.Fatalf("manifest gap/overlap between %+v and %+v", segs[i-1], s)
		}
		rr, err := tiering.OpenRemote(ctx, r.mem, s.ObjectKey, s.Size)
		if err != nil {
			r.t.Fatalf("entry %d: %v", i, err)
		}
		got, err := rr.Read(ctx, s.BaseOffset, 1<<30, true)
		if err != nil {
			r.t.Fatal(err)
		}
		local, err := r.log.Read(s.BaseOffset, segment.ReadOptions{MaxBytes: len(got.Data), MinOneBatch: true})
		if err != nil {
			r.t.Fatal(err)
		}
		if !bytes.Equal(got.Data, local.Data) || got.NextOffset != s.LastOffset+1 {
			r.t.Fatalf("entry %d (%d..%d): remote %d bytes next %d, local %d bytes", i, s.BaseOffset, s.LastOffset, len(got.Data), got.NextOffset, len(local.Data))
		}
	}
	r.ops.take() // the checks' own GETs
}

func TestArchiverUploadsClosedSegmentsBelowHW(t *testing.T) {
	r := newArchiverRig(t)
	ctx := context.Background()
	r.produce(30)
	closed := r.closed()
	if len(closed) < 3 {
		t.Fatalf("only %d closed segments", len(closed))
	}
	// High watermark at the second segment's last offset (that record is not committed yet): only
	// the first segment is wholly below it.
	r.view.limit = closed[1].NextOffset - 1
	n, err := r.arch.RunOnce(ctx)
	if err != nil || n != 1 {
		t.Fatalf("RunOnce = %d, %v; want 1 upload", n, err)
	}
	r.expectOps(fmt.Sprintf("PUT %s %d", r.key(closed[0].BaseOffset, 1), r.objSize(closed[0])))
	// High watermark inside the third closed segment: the second goes too.
	r.view.limit = closed[2].BaseOffset + 1
	if n, err = r.arch.RunOnce(ctx); err != nil || n != 1 {
		t.Fatalf("RunOnce = %d, %v; want 1 upload", n, err)
	}
	r.expectOps(fmt.Sprintf("PUT %s %d", r.key(closed[1].BaseOffset, 2), r.objSize(closed[1])))
	r.checkManifest(2)
	if up := r.arch.Uploaded(); up != closed[1].NextOffset {
		t.Fatalf("Uploaded = %d, want %d", up, closed[1].NextOffset)
	}
	// Nothing new: no requests at all.
	if n, err := r.arch.RunOnce(ctx); n != 0 || err != nil {
		t.Fatalf("idle RunOnce = %d, %v", n, err)
	}
	r.expectOps()
	// HW reaches the end: the rest of the closed segments, never the active one.
	r.view.limit = -1
	n, err = r.arch.RunOnce(ctx)
	if err != nil || n != len(closed)-2 {
		t.Fatalf("RunOnce = %d, %v; want %d", n, err, len(closed)-2)
	}
	var want []string
	for i, s := range closed[2:] {
		want = append(want, fmt.Sprintf("PUT %s %d", r.key(s.BaseOffset, 3+i), r.objSize(s)))
	}
	r.expectOps(want...)
	r.checkManifest(len(closed))
	// Orphan collection with nothing orphaned: one LIST, no DELETE.
	r.now = r.now.Add(time.Hour)
	if del, err := r.arch.CollectOrphans(ctx); err != nil || len(del) != 0 {
		t.Fatalf("CollectOrphans = %v, %v", del, err)
	}
	r.expectOps(fmt.Sprintf("LIST %s -> %d", tiering.PartitionPrefix(r.topic, 7), len(closed)))
}

func TestArchiverFailuresAndOrphans(t *testing.T) {
	r := newArchiverRig(t)
	ctx := context.Background()
	r.produce(20)
	closed := r.closed()
	s0, s1 := closed[0], closed[1]
	p := tiering.PartitionPrefix(r.topic, 7)

	// 1. PUT fails outright: nothing stored, nothing committed, the pass stops.
	r.faults.failPut = 1
	if n, err := r.arch.RunOnce(ctx); n != 0 || err == nil {
		t.Fatalf("RunOnce with a failing PUT = %d, %v", n, err)
	}
	r.expectOps() // the failure happened before the store
	r.checkManifest(0)

	// 2. PUT stored but answered with an error: the object is an orphan; the pass stops.
	r.faults.applyThenF = 1
	if n, err := r.arch.RunOnce(ctx); n != 0 || err == nil {
		t.Fatalf("RunOnce with PUT-applied-but-error = %d, %v", n, err)
	}
	r.expectOps(fmt.Sprintf("PUT %s %d", r.key(s0.BaseOffset, 2), r.objSize(s0)))

	// 3. Commit fails: a second orphan.
	r.manifest.failNext = 1
	if n, err := r.arch.RunOnce(ctx); n != 0 || err == nil {
		t.Fatalf("RunOnce with a failing commit = %d, %v", n, err)
	}
	r.expectOps(fmt.Sprintf("PUT %s %d", r.key(s0.BaseOffset, 3), r.objSize(s0)))
	r.checkManifest(0)

	// 4. Commit applied but its reply lost: the archiver sees its key in the manifest and goes on.
	r.manifest.applyThenFail = 1
	r.view.limit = s1.NextOffset
	if n, err := r.arch.RunOnce(ctx); n != 2 || err != nil {
		t.Fatalf("RunOnce with a lost commit reply = %d, %v; want 2 uploads", n, err)
	}
	r.expectOps(
		fmt.Sprintf("PUT %s %d", r.key(s0.BaseOffset, 4), r.objSize(s0)),
		fmt.Sprintf("PUT %s %d", r.key(s1.BaseOffset, 5), r.objSize(s1)),
	)
	r.checkManifest(2)

	// 5. Orphans younger than the grace period stay (a deposed leader may still commit them)...
	if del, err := r.arch.CollectOrphans(ctx); err != nil || len(del) != 0 {
		t.Fatalf("CollectOrphans within grace = %v, %v", del, err)
	}
	r.expectOps(fmt.Sprintf("LIST %s -> 4", p))
	// ...a foreign object under the prefix is never touched, and old orphans go.
	tiering.PutBytes(ctx, r.mem, p+"not-a-segment", []byte("x"))
	r.now = r.now.Add(2 * time.Minute)
	del, err := r.arch.CollectOrphans(ctx)
	if err != nil || len(del) != 2 {
		t.Fatalf("CollectOrphans = %v, %v; want the 2 orphans", del, err)
	}
	r.expectOps(
		fmt.Sprintf("LIST %s -> 5", p),
		"DELETE "+r.key(s0.BaseOffset, 2),
		"DELETE "+r.key(s0.BaseOffset, 3),
	)
	r.checkManifest(2)
	objs, _ := r.mem.List(ctx, p)
	if len(objs) != 3 {
		t.Fatalf("bucket holds %d objects, want 2 committed + 1 foreign", len(objs))
	}
	st := r.arch.Stats()
	var lagBytes int64
	for _, c := range closed[2:] {
		lagBytes += c.Size
	}
	want := tiering.ArchiverStats{SegmentsUploaded: 2, BytesUploaded: r.objSize(s0) + r.objSize(s1), SegmentBytes: s0.Size + s1.Size, Failures: 3,
		OrphansDeleted: 2, LagSegments: int64(len(closed) - 2), LagBytes: lagBytes}
	if st != want {
		t.Fatalf("Stats = %+v, want %+v", st, want)
	}
}

// TestArchiverAfterLeaderChange: the previous leader committed a segment ending inside one of ours
// (it rolled at other offsets). We upload only the rest, so the manifest stays contiguous.
func TestArchiverAfterLeaderChange(t *testing.T) {
	r := newArchiverRig(t)
	ctx := context.Background()
	r.produce(20)
	closed := r.closed()
	s0 := closed[0]
	// The previous leader's entry: the first 2 batches (6 records) of our first segment.
	prevLast := s0.BaseOffset + 5
	r.manifest.segs = []meta.RemoteSegment{{BaseOffset: s0.BaseOffset, LastOffset: prevLast, Size: 1, ObjectKey: "segments/old/0/x", LeaderEpoch: 4}}
	r.view.limit = s0.NextOffset
	if n, err := r.arch.RunOnce(ctx); n != 1 || err != nil {
		t.Fatalf("RunOnce = %d, %v", n, err)
	}
	segs := r.manifest.RemoteSegments()
	if len(segs) != 2 || segs[1].BaseOffset != prevLast+1 || segs[1].LastOffset != s0.NextOffset-1 {
		t.Fatalf("manifest %+v: want the remainder %d..%d", segs, prevLast+1, s0.NextOffset-1)
	}
	rr, err := tiering.OpenRemote(ctx, r.mem, segs[1].ObjectKey, segs[1].Size)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := rr.Read(ctx, prevLast+1, 1<<20, true)
	local, _ := r.log.Read(prevLast+1, segment.ReadOptions{MaxBytes: 1 << 20, MaxOffset: s0.NextOffset})
	if !bytes.Equal(got.Data, local.Data) {
		t.Fatalf("remainder object: %d bytes, local %d", len(got.Data), len(local.Data))
	}
}

// TestArchiverRunRetries: Run keeps retrying a failing store with backoff and drains the backlog
// once it recovers; Notify wakes it.
func TestArchiverRunRetries(t *testing.T) {
	r := newArchiverRig(t)
	r.arch = tiering.NewPartitionArchiver(r.faults, r.topic, 7, r.view, r.manifest, tiering.ArchiverConfig{RetryBase: time.Millisecond, RetryMax: 5 * time.Millisecond})
	r.produce(20)
	r.faults.failPut = 5
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.arch.Run(ctx, time.Hour); close(done) }()
	want := len(r.closed())
	deadline := time.After(20 * time.Second)
	for len(r.manifest.RemoteSegments()) < want {
		select {
		case <-deadline:
			t.Fatalf("backlog not drained: %d of %d", len(r.manifest.RemoteSegments()), want)
		case <-time.After(5 * time.Millisecond):
		}
	}
	r.produce(10) // more segments roll; Notify (not the hour-long poll) gets them uploaded
	r.arch.Notify()
	want = len(r.closed())
	for len(r.manifest.RemoteSegments()) < want {
		select {
		case <-deadline:
			t.Fatalf("Notify did not wake Run: %d of %d", len(r.manifest.RemoteSegments()), want)
		case <-time.After(5 * time.Millisecond):
		}
	}
	cancel()
	<-done
	r.checkManifest(want)
}

// TestArchiverReadsThroughLogFS: a log on segment/vfs's in-memory FS is archived through the same FS.
func TestArchiverReadsThroughLogFS(t *testing.T) {
	fsys := vfs.NewMemFS()
	cfg := segment.DefaultConfig()
	cfg.SegmentBytes = 8 << 10
	cfg.FS = fsys
	l, err := segment.Open("/data/p-0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	rig := &archiverRig{t: t, log: l}
	rig.produce(20)
	store, man := tiering.NewMemStore(), &fakeManifest{}
	var topic meta.TopicID
	arch := tiering.NewPartitionArchiver(store, topic, 0, &testLog{l: l, limit: -1}, man, tiering.ArchiverConfig{FS: fsys})
	n, err := arch.RunOnce(context.Background())
	if err != nil || n < 2 {
		t.Fatalf("RunOnce = %d, %v", n, err)
	}
	segs := man.RemoteSegments()
	rr, err := tiering.OpenRemote(context.Background(), store, segs[1].ObjectKey, segs[1].Size)
	if err != nil {
		t.Fatal(err)
	}
	got, err := rr.Read(context.Background(), segs[1].BaseOffset, 1<<20, true)
	local, _ := l.Read(segs[1].BaseOffset, segment.ReadOptions{MaxBytes: 1 << 20, MaxOffset: segs[1].LastOffset + 1})
	if err != nil || !bytes.Equal(got.Data, local.Data) {
		t.Fatalf("remote %d bytes (%v), local %d", len(got.Data), err, len(local.Data))
	}
	// Without the FS the archiver cannot find the files: an error, not a silent skip.
	arch2 := tiering.NewPartitionArchiver(store, topic, 0, &testLog{l: l, limit: -1}, &fakeManifest{}, tiering.ArchiverConfig{})
	if _, err := arch2.RunOnce(context.Background()); err == nil {
		t.Fatal("archiving a MemFS log through the OS file system succeeded")
	}
}

// staleManifest is the manifest as a leader cut off from the metadata quorum sees it: its local
// copy (fakeManifest) lacks commits the cluster made since; CatchUp brings it up to date, or fails
// while cut off.
type staleManifest struct {
	*fakeManifest
	cluster []meta.RemoteSegment // the quorum's manifest
	cut     bool
	syncs   int
}

func (m *staleManifest) CatchUp(context.Context) error {
	m.syncs++
	if m.cut {
		return errors.New("injected: no quorum reachable")
	}
	m.mu.Lock()
	m.segs = append([]meta.RemoteSegment(nil), m.cluster...)
	m.mu.Unlock()
	return nil
}

// TestCollectOrphansStaleManifest: a deposed leader that has not heard of its successor must not
// take the successor's committed objects for orphans. Its copy of the manifest names only its own
// object; the cluster's also names the new leader's. While it cannot reach the quorum it deletes
// nothing; once it can, it deletes only the real orphan.
func TestCollectOrphansStaleManifest(t *testing.T) {
	r := newArchiverRig(t)
	ctx := context.Background()
	p := tiering.PartitionPrefix(r.topic, 7)
	key := func(base int64, epoch int32, id string) string {
		return tiering.SegmentKey{Topic: r.topic, Partition: 7, BaseOffset: base, LeaderEpoch: epoch, UploadID: id}.String()
	}
	mine, successors, orphan := key(0, 5, "000000000000000a"), key(100, 6, "000000000000000b"), key(100, 5, "000000000000000c")
	for _, k := range []string{mine, successors, orphan} {
		if err := tiering.PutBytes(ctx, r.mem, k, []byte("segment object")); err != nil {
			t.Fatal(err)
		}
	}
	own := meta.RemoteSegment{BaseOffset: 0, LastOffset: 99, Size: 14, ObjectKey: mine, LeaderEpoch: 5}
	m := &staleManifest{fakeManifest: &fakeManifest{segs: []meta.RemoteSegment{own}},
		cluster: []meta.RemoteSegment{own, {BaseOffset: 100, LastOffset: 199, Size: 14, ObjectKey: successors, LeaderEpoch: 6}}, cut: true}
	arch := tiering.NewPartitionArchiver(r.mem, r.topic, 7, r.view, m, tiering.ArchiverConfig{
		Now: func() time.Time { return r.now.Add(time.Hour) }, OrphanGrace: time.Minute})

	if del, err := arch.CollectOrphans(ctx); err == nil || len(del) != 0 {
		t.Fatalf("CollectOrphans cut off from the quorum = %v, %v; want an error and nothing deleted", del, err)
	}
	if objs, _ := r.mem.List(ctx, p); len(objs) != 3 {
		t.Fatalf("%d objects left after a collection that could not sync, want all 3", len(objs))
	}
	m.cut = false
	del, err := arch.CollectOrphans(ctx)
	if err != nil || len(del) != 1 || del[0] != orphan {
		t.Fatalf("CollectOrphans after syncing = %v, %v; want only %s", del, err, orphan)
	}
	for _, k := range []string{mine, successors} {
		if _, err := r.mem.Head(ctx, k); err != nil {
			t.Fatalf("committed object %s deleted: %v", k, err)
		}
	}
	if m.syncs != 2 {
		t.Fatalf("manifest synced %d times, want once per collection", m.syncs)
	}
}
