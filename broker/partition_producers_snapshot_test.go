package broker

import (
	"errors"
	"testing"
	"time"
)

func TestProducerSnapshotRoundTrip(t *testing.T) {
	m := newProducerStateManager()
	var next int64
	for pid := int64(0); pid < 3; pid++ {
		for seq := int32(0); seq < int32(3+pid*3); seq += 2 {
			appendBatch(m, &next, pid, int16(pid), seq, 2)
		}
	}
	m.producers[1].lastUpdate = time.UnixMilli(123456)
	b := encodeProducerSnapshot(m, next)
	got, off, err := decodeProducerSnapshot(b)
	if err != nil || off != next || got.len() != 3 {
		t.Fatalf("decode: %v off %d len %d", err, off, got.len())
	}
	for pid, e := range m.producers {
		g := got.producers[pid]
		if g == nil || g.epoch != e.epoch || len(g.batches) != len(e.batches) || g.lastUpdate.UnixMilli() != e.lastUpdate.UnixMilli() {
			t.Fatalf("pid %d: %+v vs %+v", pid, g, e)
		}
		for i := range e.batches {
			if g.batches[i] != e.batches[i] {
				t.Fatalf("pid %d batch %d: %+v vs %+v", pid, i, g.batches[i], e.batches[i])
			}
		}
	}
	// Any flipped bit or truncation is refused.
	for i := 0; i < len(b); i++ {
		c := append([]byte(nil), b...)
		c[i] ^= 0x01
		if _, _, err := decodeProducerSnapshot(c); err == nil {
			t.Fatalf("bit flip at %d accepted", i)
		}
	}
	if _, _, err := decodeProducerSnapshot(b[:len(b)-5]); !errors.Is(err, errBadSnapshot) {
		t.Fatalf("truncated: %v", err)
	}
}

// FuzzProducerSnapshot: whatever bytes are on disk, decoding never panics, and what decodes
// re-encodes to a snapshot that decodes to the same state.
func FuzzProducerSnapshot(f *testing.F) {
	m := newProducerStateManager()
	var next int64
	appendBatch(m, &next, 7, 1, 0, 3)
	appendBatch(m, &next, 7, 1, 3, 2)
	appendBatch(m, &next, 9, 0, 100, 1)
	f.Add(encodeProducerSnapshot(m, next))
	f.Add(encodeProducerSnapshot(newProducerStateManager(), 0))
	f.Add([]byte("SDPS"))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, off, err := decodeProducerSnapshot(b)
		if err != nil {
			return
		}
		again, off2, err := decodeProducerSnapshot(encodeProducerSnapshot(got, off))
		if err != nil || off2 != off || again.len() != got.len() {
			t.Fatalf("re-encode: %v off %d/%d len %d/%d", err, off, off2, again.len(), got.len())
		}
	})
}
