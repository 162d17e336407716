package segment

import (
	"testing"

	"github.com/sediment-io/sediment/segment/vfs"
)

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	bad := []func(*Config){
		func(c *Config) { c.SegmentBytes = 13 },
		func(c *Config) { c.SegmentBytes = 1 << 31 },
		func(c *Config) { c.SegmentMs = 0 },
		func(c *Config) { c.SegmentIndexBytes = 3 },
		func(c *Config) { c.IndexIntervalBytes = -1 },
		func(c *Config) { c.FlushPolicy = 9 },
		func(c *Config) { c.FlushPolicy, c.FlushInterval = FlushInterval, 0 },
	}
	for i, mut := range bad {
		c := DefaultConfig()
		mut(&c)
		if c.Validate() == nil {
			t.Errorf("case %d: invalid config accepted", i)
		}
		if _, err := Open(t.TempDir(), c); err == nil {
			t.Errorf("case %d: Open accepted an invalid config", i)
		}
	}
	for s, want := range map[string]FlushPolicy{"always": FlushAlways, "interval": FlushInterval, "os": FlushOS} {
		if p, err := ParseFlushPolicy(s); err != nil || p != want || p.String() != s {
			t.Errorf("ParseFlushPolicy(%q) = %v, %v", s, p, err)
		}
	}
	if _, err := ParseFlushPolicy("sometimes"); err == nil {
		t.Error("unknown policy accepted")
	}
}

// Kafka's floor for segment.index.bytes is 4: no index entry fits, so every
// append gets its own segment — and nothing breaks.
func TestTinyIndexBytes(t *testing.T) {
	cfg := testConfig(vfs.NewMemFS())
	cfg.SegmentIndexBytes = 4
	l := mustOpen(t, "/p", cfg)
	for i := 0; i < 5; i++ {
		mustAppend(t, l, testBatch(2, 10, int64(i)), 0)
	}
	if n := len(l.Segments()); n != 5 {
		t.Fatalf("%d segments, want one per append", n)
	}
	if got := readAll(t, l, 0); len(got) != 5*len(testBatch(2, 10, 0)) {
		t.Fatalf("read %d bytes", len(got))
	}
	l.Close()
	l = mustOpen(t, "/p", cfg)
	defer l.Close()
	if l.EndOffset() != 10 {
		t.Fatalf("EndOffset after reopen %d", l.EndOffset())
	}
}
