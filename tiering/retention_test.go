package tiering_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sediment-io/sediment/meta"
	"github.com/sediment-io/sediment/tiering"
)

func TestExpiredRemoteSegments(t *testing.T) {
	ctx := context.Background()
	store := tiering.NewMemStore()
	now := time.Now().Add(48 * time.Hour) // every object was uploaded "two days ago"
	day := int64(24 * time.Hour / time.Millisecond)
	nowMs := now.UnixMilli()
	mk := func(maxTS ...int64) []meta.RemoteSegment {
		var segs []meta.RemoteSegment
		for i, ts := range maxTS {
			k := fmt.Sprintf("segments/t/0/%d", i)
			tiering.PutBytes(ctx, store, k, []byte("x"))
			segs = append(segs, meta.RemoteSegment{BaseOffset: int64(i * 10), LastOffset: int64(i*10 + 9), MaxTimestamp: ts, Size: 100, ObjectKey: k})
		}
		return segs
	}
	for _, c := range []struct {
		name  string
		segs  []meta.RemoteSegment
		local int64
		p     tiering.RetentionPolicy
		want  int
	}{
		{"time: two old, one new", mk(nowMs-3*day, nowMs-2*day, nowMs-1000), 0, tiering.RetentionPolicy{RetentionMs: day, RetentionBytes: -1}, 2},
		{"time: only from the start", mk(nowMs-1000, nowMs-3*day), 0, tiering.RetentionPolicy{RetentionMs: day, RetentionBytes: -1}, 0},
		{"time: a future timestamp does not pin the segment", mk(nowMs+365*day, nowMs-1000), 0, tiering.RetentionPolicy{RetentionMs: day, RetentionBytes: -1}, 1},
		{"time: future timestamp, recent upload stays", mk(nowMs + 365*day), 0, tiering.RetentionPolicy{RetentionMs: 3 * day, RetentionBytes: -1}, 0},
		{"time: unlimited", mk(nowMs - 30*day), 0, tiering.RetentionPolicy{RetentionMs: -1, RetentionBytes: -1}, 0},
		{"bytes: 4×100 + 150 local, keep 300", mk(nowMs, nowMs, nowMs, nowMs), 150, tiering.RetentionPolicy{RetentionMs: -1, RetentionBytes: 300}, 2},
		{"bytes: exactly at the limit keeps all", mk(nowMs, nowMs), 100, tiering.RetentionPolicy{RetentionMs: -1, RetentionBytes: 300}, 0},
		{"bytes: local alone over the limit removes every remote segment", mk(nowMs, nowMs), 1000, tiering.RetentionPolicy{RetentionMs: -1, RetentionBytes: 300}, 2},
		{"both: time takes 1, size 1 more", mk(nowMs-3*day, nowMs, nowMs, nowMs), 0, tiering.RetentionPolicy{RetentionMs: day, RetentionBytes: 200}, 2},
	} {
		got, err := tiering.ExpiredRemoteSegments(ctx, store, c.segs, c.local, c.p, now)
		if err != nil || got != c.want {
			t.Errorf("%s: %d, %v; want %d", c.name, got, err, c.want)
		}
	}
}
