package integration

// The timestamp-lookup scenario (ListOffsets by timestamp, "offsetsForTimes"): franz-go writes
// 30 records to one partition of "compat-time" in three batches with record timestamps
// base, base+1s, base+2s (10 records each); each client asks, through its own API, for
// the first offset whose timestamp is >= each of timeQueries.

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

const timeTopic = "compat-time"

// timeQueries: timestamp -> the offset Kafka answers (first record with timestamp >= it).
func timeQueries(base int64) map[int64]int64 {
	return map[int64]int64{base - 1: 0, base: 0, base + 1: 10, base + 1000: 10, base + 1500: 20, base + 2000: 20}
}

// seedTimeTopic creates compat-time (1 partition) and writes the three batches. The base is "now"
// minus a minute so no broker timestamp-window config can refuse it.
func seedTimeTopic(t *testing.T, n *node) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if r, err := n.admin(t).CreateTopic(ctx, 1, 1, nil, timeTopic); err != nil || r.Err != nil {
		t.Fatalf("create %s: %v %v", timeTopic, err, r.Err)
	}
	base := time.Now().Add(-time.Minute).UnixMilli()
	cl := n.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for b := int64(0); b < 3; b++ {
		var recs []*kgo.Record
		for i := 0; i < 10; i++ {
			recs = append(recs, &kgo.Record{Topic: timeTopic, Partition: 0, Value: []byte(fmt.Sprintf("t%d-%d", b, i)),
				Timestamp: time.UnixMilli(base + b*1000)})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatalf("seeding %s: %v", timeTopic, err)
		}
	}
	return base
}

// checkTimes is the matrix cell "offsets for times" (subtest offsets_for_times): got maps each
// queried timestamp to the offset the client reported (errs: client errors).
func checkTimes(t *testing.T, base int64, got map[int64]int64, errs []string) {
	t.Helper()
	t.Run("offsets_for_times", func(t *testing.T) {
		for _, e := range errs {
			t.Errorf("client error: %s", e)
		}
		for ts, want := range timeQueries(base) {
			g, ok := got[ts]
			if !ok {
				t.Errorf("timestamp base%+d: no answer", ts-base)
			} else if g != want {
				t.Errorf("timestamp base%+d: offset %d, want %d", ts-base, g, want)
			}
		}
	})
}

// timeResult is what an external driver prints in --mode time.
type timeResult struct {
	Offsets map[string]int64 `json:"offsets"` // decimal timestamp -> offset
	Errors  []string         `json:"errors"`
}

func (r *timeResult) byTimestamp(t *testing.T) map[int64]int64 {
	out := map[int64]int64{}
	for k, v := range r.Offsets {
		var ts int64
		if _, err := fmt.Sscan(k, &ts); err != nil {
			t.Errorf("driver reported timestamp %q", k)
			continue
		}
		out[ts] = v
	}
	return out
}

// timeArgs is the driver command line for --mode time.
func timeArgs(n *node, base int64) []string {
	var s []string
	for _, ts := range timeQueryList(base) {
		s = append(s, fmt.Sprint(ts))
	}
	return []string{"--mode", "time", "--bootstrap", n.kafka, "--topic", timeTopic, "--times", strings.Join(s, ",")}
}

// timeQueryList is timeQueries' keys, for drivers' command lines.
func timeQueryList(base int64) []int64 {
	var out []int64
	for ts := range timeQueries(base) {
		out = append(out, ts)
	}
	return out
}
