package broker

import (
	"math"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// appendBatch runs one client batch through check/stage/commit the way the produce path does,
// assigning offsets from *next. It returns the verdict.
func appendBatch(m *producerStateManager, next *int64, pid int64, epoch int16, firstSeq int32, records int32) producerCheck {
	lastSeq := batchLastSeq(firstSeq, records-1)
	c := m.check(nil, pid, epoch, firstSeq, lastSeq)
	if c.dup || c.errCode != 0 {
		return c
	}
	staged := newProducerStateManager()
	m.stage(staged, pid, epoch, producerBatch{firstSeq: firstSeq, lastSeq: lastSeq, firstOffset: *next, lastOffset: *next + int64(records) - 1}, time.Now())
	m.commit(staged)
	*next += int64(records)
	return c
}

func TestProducerStateSequences(t *testing.T) {
	m := newProducerStateManager()
	var next int64
	const pid = 7

	steps := []struct {
		name    string
		epoch   int16
		seq     int32
		n       int32
		wantErr int16
		wantDup int64 // expected original first offset, -1 if not a duplicate
	}{
		{"unknown producer accepted at any sequence", 0, 42, 3, 0, -1},
		{"next in sequence", 0, 45, 2, 0, -1},
		{"retry of the last batch is a duplicate", 0, 45, 2, 0, 3},
		{"retry of an older batch is a duplicate", 0, 42, 3, 0, 0},
		{"gap", 0, 48, 1, kerr.OutOfOrderSequenceNumber.Code, -1},
		{"overlap that is not an exact retry", 0, 46, 1, kerr.OutOfOrderSequenceNumber.Code, -1},
		{"still accepts the right next", 0, 47, 1, 0, -1},
		{"new epoch must start at 0", 1, 48, 1, kerr.OutOfOrderSequenceNumber.Code, -1},
		{"new epoch at 0", 1, 0, 1, 0, -1},
		{"old epoch is fenced", 0, 48, 1, kerr.InvalidProducerEpoch.Code, -1},
		{"old epoch's retry after bump is fenced too", 0, 47, 1, kerr.InvalidProducerEpoch.Code, -1},
	}
	for _, s := range steps {
		before := next
		c := appendBatch(m, &next, pid, s.epoch, s.seq, s.n)
		if c.errCode != s.wantErr {
			t.Fatalf("%s: err %d, want %d", s.name, c.errCode, s.wantErr)
		}
		if s.wantDup >= 0 {
			if !c.dup || c.dupOf.firstOffset != s.wantDup {
				t.Fatalf("%s: dup=%v of %+v, want duplicate of offset %d", s.name, c.dup, c.dupOf, s.wantDup)
			}
			if next != before {
				t.Fatalf("%s: duplicate advanced offsets", s.name)
			}
		} else if c.dup {
			t.Fatalf("%s: unexpected duplicate", s.name)
		}
	}
	if next != 7 {
		t.Fatalf("appended offsets end at %d, want 7", next)
	}
}

func TestProducerStateWindowOfFive(t *testing.T) {
	m := newProducerStateManager()
	var next int64
	for i := int32(0); i < 6; i++ {
		if c := appendBatch(m, &next, 1, 0, i, 1); c.errCode != 0 || c.dup {
			t.Fatalf("batch %d: %+v", i, c)
		}
	}
	// Batches with seq 1..5 are remembered; seq 0 fell out of the window.
	if c := appendBatch(m, &next, 1, 0, 1, 1); !c.dup || c.dupOf.firstOffset != 1 {
		t.Fatalf("seq 1 should be a duplicate of offset 1: %+v", c)
	}
	if c := appendBatch(m, &next, 1, 0, 0, 1); c.errCode != kerr.OutOfOrderSequenceNumber.Code {
		t.Fatalf("seq 0 beyond the window: %+v, want OUT_OF_ORDER_SEQUENCE_NUMBER", c)
	}
}

func TestProducerStateSequenceWrap(t *testing.T) {
	if got := batchLastSeq(math.MaxInt32-1, 3); got != 1 {
		t.Fatalf("batchLastSeq wrap = %d, want 1", got)
	}
	m := newProducerStateManager()
	var next int64
	if c := appendBatch(m, &next, 3, 0, math.MaxInt32-1, 2); c.errCode != 0 {
		t.Fatalf("%+v", c)
	}
	if c := appendBatch(m, &next, 3, 0, 0, 1); c.errCode != 0 || c.dup {
		t.Fatalf("sequence should wrap to 0: %+v", c)
	}
}

func TestProducerStateStagingWithinRequest(t *testing.T) {
	m := newProducerStateManager()
	var next int64
	appendBatch(m, &next, 9, 0, 0, 2)
	staged := newProducerStateManager()
	if c := m.check(staged, 9, 0, 2, 3); c.errCode != 0 {
		t.Fatalf("%+v", c)
	}
	m.stage(staged, 9, 0, producerBatch{firstSeq: 2, lastSeq: 3, firstOffset: 2, lastOffset: 3}, time.Now())
	// The second batch of the same request is checked against the staged state.
	if c := m.check(staged, 9, 0, 4, 4); c.errCode != 0 {
		t.Fatalf("second batch: %+v", c)
	}
	// Until commit, m itself is unchanged.
	if c := m.check(nil, 9, 0, 4, 4); c.errCode != kerr.OutOfOrderSequenceNumber.Code {
		t.Fatalf("uncommitted stage leaked: %+v", c)
	}
	m.commit(staged)
	if c := m.check(nil, 9, 0, 4, 4); c.errCode != 0 {
		t.Fatalf("after commit: %+v", c)
	}
}

func TestProducerStateTruncateHeadAndExpire(t *testing.T) {
	m := newProducerStateManager()
	var next int64
	appendBatch(m, &next, 1, 0, 0, 5) // offsets 0-4
	appendBatch(m, &next, 2, 0, 0, 5) // offsets 5-9
	m.truncateHead(5)
	if _, ok := m.producers[1]; ok {
		t.Fatal("producer 1 has no data left and must be forgotten")
	}
	if _, ok := m.producers[2]; !ok {
		t.Fatal("producer 2 still has data")
	}
	// Forgotten producer: any sequence is accepted again (KIP-360).
	if c := m.check(nil, 1, 0, 77, 77); c.errCode != 0 || c.dup {
		t.Fatalf("%+v", c)
	}
	if n := m.expire(time.Now().Add(time.Hour), time.Minute); n != 1 || m.len() != 0 {
		t.Fatalf("expire removed %d, left %d", n, m.len())
	}
}

func TestProducerStateNegativeSequenceWithProducerID(t *testing.T) {
	m := newProducerStateManager()
	if c := m.check(nil, 4, 0, -1, -1); c.errCode != kerr.InvalidRecord.Code {
		t.Fatalf("%+v", c)
	}
	if c := m.check(nil, -1, -1, -1, -1); c.errCode != 0 {
		t.Fatalf("no producer id must not be checked: %+v", c)
	}
}
