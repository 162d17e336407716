package segment

import (
	"errors"
	"fmt"
	"testing"
)

func TestBatchHeaderFields(t *testing.T) {
	b := testBatch(3, 10, 1000)
	h, err := ParseBatchHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := ValidateBatch(b); err != nil {
		t.Fatal(err)
	}
	h.SetBaseOffset(42)
	h.SetPartitionLeaderEpoch(7)
	if err := ValidateBatch(b); err != nil {
		t.Fatalf("stamping base offset/epoch must not break the CRC: %v", err)
	}
	checks := []struct {
		name      string
		got, want int64
	}{
		{"BaseOffset", h.BaseOffset(), 42},
		{"LastOffset", h.LastOffset(), 44},
		{"LastOffsetDelta", int64(h.LastOffsetDelta()), 2},
		{"Epoch", int64(h.PartitionLeaderEpoch()), 7},
		{"Magic", int64(h.Magic()), 2},
		{"RecordCount", int64(h.RecordCount()), 3},
		{"FirstTimestamp", h.FirstTimestamp(), 1000},
		{"MaxTimestamp", h.MaxTimestamp(), 1002},
		{"ProducerID", h.ProducerID(), -1},
		{"ProducerEpoch", int64(h.ProducerEpoch()), -1},
		{"BaseSequence", int64(h.BaseSequence()), -1},
		{"Size", int64(h.Size()), int64(len(b))},
		{"Compression", int64(h.Compression()), int64(CodecNone)},
		{"TimestampType", int64(h.TimestampType()), 0},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	if h.IsControl() || h.IsTransactional() {
		t.Error("plain batch reported control/transactional")
	}
}

func TestValidateBatchRejects(t *testing.T) {
	good := testBatch(2, 5, 1)
	cases := map[string]func(b []byte) []byte{
		"crc":       func(b []byte) []byte { b[len(b)-1] ^= 1; return b },
		"magic":     func(b []byte) []byte { b[offMagic] = 1; return b },
		"short":     func(b []byte) []byte { return b[:HeaderSize-1] },
		"truncated": func(b []byte) []byte { return b[:len(b)-1] },
		"length":    func(b []byte) []byte { b[offBatchLength+3] = 3; b[offBatchLength+2] = 0; return b },
		"extra":     func(b []byte) []byte { return append(b, 0) },
	}
	for name, mutate := range cases {
		b := mutate(append([]byte(nil), good...))
		if err := ValidateBatch(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: ValidateBatch = %v, want ErrCorrupt", name, err)
		}
	}
}

func TestSplitBatches(t *testing.T) {
	a, b := testBatch(1, 3, 1), testBatch(4, 100, 2)
	all := append(append([]byte(nil), a...), b...)
	hs, err := SplitBatches(all)
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) != 2 || hs[0].Size() != len(a) || hs[1].RecordCount() != 4 {
		t.Fatalf("SplitBatches = %d headers", len(hs))
	}
	all[len(a)+offCRC] ^= 0xff
	_, err = SplitBatches(all)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("corrupt second batch: %v", err)
	}
	if want := fmt.Sprintf("batch at byte %d", len(a)); err == nil || !contains(err.Error(), want) {
		t.Errorf("error %q does not name the position (%s)", err, want)
	}
}

func TestSetLogAppendTime(t *testing.T) {
	b := testBatch(3, 1, 5)
	SetLogAppendTime(b, 99)
	if err := ValidateBatch(b); err != nil {
		t.Fatal(err)
	}
	h := BatchHeader(b)
	if h.TimestampType() != 1 || h.MaxTimestamp() != 99 || h.FirstTimestamp() != 99 {
		t.Fatalf("type %d max %d first %d", h.TimestampType(), h.MaxTimestamp(), h.FirstTimestamp())
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
