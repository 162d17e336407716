package segment

import (
	"fmt"
	"io"
	"log/slog"
	"math"
	"time"

	"github.com/sediment-io/sediment/segment/vfs"
)

// FlushPolicy says when appended bytes are fsynced.
type FlushPolicy int

const (
	// FlushAlways acknowledges an append only after it is on disk (fdatasync);
	// concurrent appends share syncs (group commit).
	FlushAlways FlushPolicy = iota
	// FlushInterval syncs at most every Config.FlushInterval after data arrives.
	FlushInterval
	// FlushOS leaves writeback to the page cache (Kafka's default); segments are
	// still synced when rolled and on Close.
	FlushOS
)

func (p FlushPolicy) String() string {
	switch p {
	case FlushAlways:
		return "always"
	case FlushInterval:
		return "interval"
	case FlushOS:
		return "os"
	}
	return fmt.Sprintf("FlushPolicy(%d)", int(p))
}

// ParseFlushPolicy parses "always", "interval" or "os".
func ParseFlushPolicy(s string) (FlushPolicy, error) {
	switch s {
	case "always":
		return FlushAlways, nil
	case "interval":
		return FlushInterval, nil
	case "os":
		return FlushOS, nil
	}
	return 0, fmt.Errorf("segment: unknown flush policy %q (want always, interval or os)", s)
}

// Config configures one partition log. Names follow Kafka's topic configs.
type Config struct {
	SegmentBytes       int64         // segment.bytes: roll when the next batch would pass it (default 1 GiB)
	SegmentMs          time.Duration // segment.ms: roll when the segment's first batch is this old (default 7 days)
	SegmentIndexBytes  int           // segment.index.bytes: max size of each index file (default 10 MiB)
	IndexIntervalBytes int           // index.interval.bytes: bytes between offset-index entries (default 4096)
	FlushPolicy        FlushPolicy   // default FlushAlways
	FlushInterval      time.Duration // for FlushInterval (default 1s)
	FS                 vfs.FS        // nil = the OS file system
	Now                func() time.Time
	Logger             *slog.Logger
	// OnRoll, when set, is told of every roll (the active segment closed and a new one started),
	// so that the caller can log it or count it: this package logs only failures. It is called
	// with the log's lock held, on the appending goroutine: it must be quick and must not call
	// the Log. Fixed at Open (SetConfig does not change it).
	OnRoll func(RollInfo)
	// RecycleSegments is how many deleted segment files the log keeps in its
	// directory for reuse by new segments (doc.go, "Segment file recycling"):
	// overwriting a file's old blocks makes each fdatasync cheaper than
	// appending to a new file. 0 turns recycling off (deleted files are
	// unlinked, as before). Costs up to this many segment.bytes of disk per
	// log beyond retention. Fixed at Open (SetConfig does not change it).
	RecycleSegments int
}

// RollInfo describes one roll, for Config.OnRoll.
type RollInfo struct {
	OldBase int64      // base offset of the segment just closed
	NewBase int64      // base offset of the new active segment (the closed one's next offset)
	Size    int64      // bytes in the closed segment
	Reason  RollReason // what made it roll
}

// RollReason says why a segment rolled.
type RollReason int

const (
	RollSize        RollReason = iota + 1 // the next batch would pass segment.bytes
	RollTime                              // the segment is older than segment.ms
	RollIndexFull                         // its offset or time index is full (segment.index.bytes)
	RollOffsetRange                       // offsets no longer fit the index's 32-bit relative offsets
	RollRequested                         // Log.Roll called before segment.ms passed
	RollStartOffset                       // SetStartOffset moved the log start past the active segment
)

func (r RollReason) String() string {
	switch r {
	case RollSize:
		return "size"
	case RollTime:
		return "time"
	case RollIndexFull:
		return "index-full"
	case RollOffsetRange:
		return "offset-range"
	case RollRequested:
		return "requested"
	case RollStartOffset:
		return "start-offset"
	}
	return fmt.Sprintf("RollReason(%d)", int(r))
}

// MaxRecycleSegments bounds Config.RecycleSegments.
const MaxRecycleSegments = 64

// DefaultConfig returns Kafka's defaults with the durable flush policy.
func DefaultConfig() Config {
	return Config{
		SegmentBytes:       1 << 30,
		SegmentMs:          7 * 24 * time.Hour,
		SegmentIndexBytes:  10 << 20,
		IndexIntervalBytes: 4096,
		FlushPolicy:        FlushAlways,
		FlushInterval:      time.Second,
		RecycleSegments:    DefaultRecycleSegments,
	}
}

// DefaultRecycleSegments is DefaultConfig's RecycleSegments: two files cover
// a retention pass that deletes more than one segment between two rolls.
const DefaultRecycleSegments = 2

// Validate reports the first invalid setting, using Kafka's config names.
func (c Config) Validate() error {
	switch {
	case c.SegmentBytes < 14 || c.SegmentBytes > math.MaxInt32:
		return fmt.Errorf("segment: segment.bytes %d outside [14, %d]", c.SegmentBytes, math.MaxInt32)
	case c.SegmentMs < time.Millisecond:
		return fmt.Errorf("segment: segment.ms %v must be at least 1ms", c.SegmentMs)
	case c.SegmentIndexBytes < 4 || c.SegmentIndexBytes > math.MaxInt32:
		// Kafka's floor. Below 24 the time index has room only for the entry a
		// roll adds (below 12 not even for that one, which is written anyway),
		// so (as in Kafka) every segment holds one append.
		return fmt.Errorf("segment: segment.index.bytes %d outside [4, %d]", c.SegmentIndexBytes, math.MaxInt32)
	case c.IndexIntervalBytes < 0:
		return fmt.Errorf("segment: index.interval.bytes %d must not be negative", c.IndexIntervalBytes)
	case c.FlushPolicy < FlushAlways || c.FlushPolicy > FlushOS:
		return fmt.Errorf("segment: unknown flush policy %d", int(c.FlushPolicy))
	case c.RecycleSegments < 0 || c.RecycleSegments > MaxRecycleSegments:
		return fmt.Errorf("segment: recycle segments %d outside [0, %d]", c.RecycleSegments, MaxRecycleSegments)
	case c.FlushPolicy == FlushInterval && c.FlushInterval <= 0:
		return fmt.Errorf("segment: flush interval %v must be positive", c.FlushInterval)
	}
	return nil
}

func (c *Config) fill() {
	if c.FS == nil {
		c.FS = vfs.OS
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}
