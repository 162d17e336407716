package tiering_test

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/sediment-io/sediment/meta"
	"github.com/sediment-io/sediment/segment"
	"github.com/sediment-io/sediment/tiering"
)

// TestArchiverToMinIOThroughOutage: the archiver uploads to a real MinIO behind the fault proxy. The
// store is "down" (every request 503) for a while: nothing is committed, Run keeps retrying; when it
// returns, the backlog drains, the manifest is contiguous and every entry's object is in the bucket
// (checked with minio-go) with the segment's bytes. Orphans from applied-but-500 PUTs are collected.
func TestArchiverToMinIOThroughOutage(t *testing.T) {
	srv := needMinIO(t)
	p := newFaultProxy(t, srv.Endpoint)
	prefix := uniquePrefix(t)
	s := newS3(t, srv, p.URL(), prefix, func(c *tiering.S3Config) { c.MaxAttempts = 2 })
	cfg := segment.DefaultConfig()
	cfg.SegmentBytes = 8 << 10
	l, err := segment.Open(filepath.Join(t.TempDir(), "p"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	rig := &archiverRig{t: t, log: l}
	rig.produce(40)
	var topic meta.TopicID
	topic[0] = 0x42
	man := &fakeManifest{}
	now := time.Now()
	arch := tiering.NewPartitionArchiver(s, topic, 1, &testLog{l: l, limit: -1, epoch: 2}, man, tiering.ArchiverConfig{
		RetryBase: 5 * time.Millisecond, RetryMax: 50 * time.Millisecond,
		OrphanGrace: time.Minute, Now: func() time.Time { return now.Add(time.Hour) },
	})

	p.inject(fault{Kind: faultSlowDown, Times: 1 << 30}) // outage: every request
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { arch.Run(ctx, time.Hour); close(done) }()
	time.Sleep(500 * time.Millisecond)
	if n := len(man.RemoteSegments()); n != 0 {
		t.Fatalf("%d entries committed during the outage", n)
	}
	if p.count("PUT") < 4 {
		t.Fatalf("archiver did not keep retrying during the outage: %d PUTs", p.count("PUT"))
	}
	// Back, but the next three PUT requests are applied and answered 500. With MaxAttempts 2 the first
	// Put fails after both attempts (one orphan: retries reuse the key); the second Put's retry succeeds
	// under the same key (no orphan).
	// (Run is stopped while the faults change, so that no Put straddles the switch.)
	cancel()
	<-done
	p.mu.Lock()
	p.faults = nil
	p.mu.Unlock()
	p.inject(fault{Kind: faultOKThen500, Match: method("PUT"), Times: 3})
	ctx, cancel = context.WithCancel(context.Background())
	done = make(chan struct{})
	go func() { arch.Run(ctx, time.Hour); close(done) }()
	want := 0
	for _, si := range l.Segments() {
		if si.Closed {
			want++
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(man.RemoteSegments()) < want {
		if time.Now().After(deadline) {
			t.Fatalf("backlog not drained: %d of %d\n%s", len(man.RemoteSegments()), want, strings.Join(p.Log(), "\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done

	cl := inspect(t, srv)
	segs := man.RemoteSegments()
	for i, sg := range segs {
		if i > 0 && sg.BaseOffset != segs[i-1].LastOffset+1 {
			t.Fatalf("manifest gap/overlap: %+v then %+v", segs[i-1], sg)
		}
		obj, err := cl.GetObject(context.Background(), srv.Bucket, prefix+"/"+sg.ObjectKey, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(obj)
		obj.Close()
		if err != nil || int64(len(body)) != sg.Size {
			t.Fatalf("object %s: %d bytes (%v), manifest says %d", sg.ObjectKey, len(body), err, sg.Size)
		}
		local, err := l.Read(sg.BaseOffset, segment.ReadOptions{MaxBytes: 1 << 20, MaxOffset: sg.LastOffset + 1})
		if err != nil {
			t.Fatal(err)
		}
		if ft, err := tiering.DecodeFooter(body, int64(len(body))); err != nil || string(body[:ft.DataLen]) != string(local.Data) {
			t.Fatalf("object %s does not hold the segment's bytes (%v)", sg.ObjectKey, err)
		}
	}
	// Exactly one orphan, and the collector removes it.
	del, err := arch.CollectOrphans(context.Background())
	if err != nil || len(del) != 1 {
		t.Fatalf("CollectOrphans = %v, %v; want 1 orphan", del, err)
	}
	n := 0
	for o := range cl.ListObjects(context.Background(), srv.Bucket, minio.ListObjectsOptions{Prefix: prefix + "/", Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		n++
	}
	if n != len(segs) {
		t.Fatalf("bucket holds %d objects, manifest %d", n, len(segs))
	}
}
