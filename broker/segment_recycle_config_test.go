package broker

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/sediment-io/sediment/segment"
)

// TestSegmentRecycleFilesConfig: log.segment.recycle.files reaches every partition log's
// segment.Config (default 2, 0 turns recycling off), and a value segment would refuse at Open
// is refused when the broker config is validated, naming the config.
func TestSegmentRecycleFilesConfig(t *testing.T) {
	for _, c := range []struct {
		set  string
		want int
	}{{"", segment.DefaultRecycleSegments}, {"0", 0}, {"5", 5}} {
		cfg := DefaultConfig()
		if c.set != "" {
			if err := cfg.Set("log.segment.recycle.files", c.set); err != nil {
				t.Fatal(err)
			}
		}
		b := &Broker{cfg: cfg, log: slog.Default()}
		if got := b.segmentConfig(TopicConfig{}).RecycleSegments; got != c.want {
			t.Errorf("log.segment.recycle.files=%q: segment RecycleSegments %d, want %d", c.set, got, c.want)
		}
	}
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	if err := cfg.Set("log.segment.recycle.files", "-1"); err == nil {
		t.Error("log.segment.recycle.files=-1 accepted")
	}
	if err := cfg.Set("log.segment.recycle.files", "65"); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "log.segment.recycle.files") {
		t.Errorf("log.segment.recycle.files=65: Validate = %v, want an error naming it", err)
	}
}
