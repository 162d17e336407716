package broker

import (
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

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

// TestSegmentRecyclePoolExpiresIdle: the retention loop removes recycled segment files that
// waited longer than log.segment.recycle.ms for a new segment, so a partition that went quiet
// keeps nothing beyond retention; with the default (an hour) the same files stay for reuse.
func TestSegmentRecyclePoolExpiresIdle(t *testing.T) {
	for _, c := range []struct {
		name   string
		idleMs string // "" = default
		expire bool
	}{{"default", "", false}, {"300ms", "300", true}} {
		t.Run(c.name, func(t *testing.T) {
			b := newTestBroker(t, func(cfg *Config) {
				cfg.LogRetentionCheckMs = 50
				if c.idleMs != "" {
					if err := cfg.Set("log.segment.recycle.ms", c.idleMs); err != nil {
						t.Fatal(err)
					}
				}
			})
			createTopic(t, b, "idle", 1, map[string]*string{
				"segment.bytes": ptr("2048"), "retention.bytes": ptr("4096"), "remote.storage.enable": ptr("false"),
			})
			cl := newTestClient(t, b, kgo.DefaultProduceTopic("idle"), kgo.ProducerBatchCompression(kgo.NoCompression()))
			for i := 0; i < 20; i++ {
				if err := cl.ProduceSync(testCtx(t), &kgo.Record{Value: make([]byte, 500)}).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
			p, _, code := b.replicas.lookupPartition(b.meta.State(), "idle", 0)
			if code != 0 {
				t.Fatal(code)
			}
			poolLen := func() int {
				n, _ := p.log.RecyclePool()
				return n
			}
			onDiskBytes := func() (files int, bytes int64) {
				ents, err := os.ReadDir(p.log.Dir())
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range ents {
					if strings.HasSuffix(e.Name(), ".recycle") {
						info, err := e.Info()
						if err != nil {
							t.Fatal(err)
						}
						files++
						bytes += info.Size()
					}
				}
				return files, bytes
			}
			// The gauge operators see for that disk.
			gauge := func() int64 {
				return metricInt(t, scrape(t, b), `sediment_partition_recycle_pool_bytes{topic="idle",partition="0"}`)
			}
			// Retention pools the deleted segments' files (in the 300 ms case, for 300 ms at least).
			waitFor(t, "retention to pool deleted segment files", func() bool { return poolLen() > 0 })
			if !c.expire {
				time.Sleep(500 * time.Millisecond) // ten more retention checks
				if n, _ := onDiskBytes(); n == 0 || n != poolLen() {
					t.Fatalf("%d pool files on disk, %d in the log: with the hour-long default they stay", n, poolLen())
				}
				if _, bytes := onDiskBytes(); gauge() != bytes {
					t.Fatalf("sediment_partition_recycle_pool_bytes %d, pool files on disk %d bytes", gauge(), bytes)
				}
				return
			}
			// The partition is idle now: whatever retention pooled goes once it has waited 300 ms.
			waitFor(t, "retention's pooled files to expire", func() bool {
				files, _ := onDiskBytes()
				return p.log.StartOffset() > 0 && poolLen() == 0 && files == 0
			})
			if g := gauge(); g != 0 {
				t.Fatalf("sediment_partition_recycle_pool_bytes %d after the pool expired, want 0", g)
			}
			got := consumeN(t, b, "idle", int(20-p.log.StartOffset()))
			if got[0].Offset != p.log.StartOffset() {
				t.Fatalf("first consumed offset %d, log start %d", got[0].Offset, p.log.StartOffset())
			}
		})
	}
	cfg := DefaultConfig()
	if cfg.LogSegmentRecycleMs != 3_600_000 {
		t.Errorf("log.segment.recycle.ms default %d, want an hour", cfg.LogSegmentRecycleMs)
	}
	if err := cfg.Set("log.segment.recycle.ms", "0"); err == nil {
		t.Error("log.segment.recycle.ms=0 accepted")
	}
}
