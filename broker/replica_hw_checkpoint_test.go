package broker

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sediment-io/sediment/meta"
	"github.com/sediment-io/sediment/segment/vfs"
)

// The checkpoint file round-trips; anything malformed is refused as a whole (the caller then starts
// every HW at the log start); a partition's HW starts at its entry within [log start, log end].
func TestHWCheckpointFile(t *testing.T) {
	dir := t.TempDir()
	if ck, err := readHWCheckpoint(dir); ck != nil || err != nil {
		t.Fatalf("no file: %v %v", ck, err)
	}
	want := map[partitionKey]int64{{meta.TopicID{1}, 0}: 17, {meta.TopicID{1}, 3}: 0, {meta.TopicID{9, 9}, 1}: 1 << 40}
	if err := writeHWCheckpoint(dir, want); err != nil {
		t.Fatal(err)
	}
	got, err := readHWCheckpoint(dir)
	if err != nil || !maps.Equal(got, want) {
		t.Fatalf("read back %v, %v; want %v", got, err, want)
	}
	if _, err := os.Stat(filepath.Join(dir, hwCheckpointFile+".tmp")); !os.IsNotExist(err) {
		t.Fatalf("temp file left behind: %v", err)
	}
	good := string(formatHWCheckpoint(want))
	lines := strings.SplitAfter(good, "\n")
	for name, bad := range map[string]string{
		"empty":           "",
		"other version":   "1" + good[1:],
		"count too large": "0\n4\n" + strings.Join(lines[2:], ""),
		"torn":            good[:len(good)-5],
		"trailing":        good + "x y z\n",
		"negative hw":     "0\n1\n" + meta.TopicID{1}.String() + " 0 -5\n",
		"bad topic id":    "0\n1\nnot-an-id 0 5\n",
	} {
		if ck, err := parseHWCheckpoint([]byte(bad)); err == nil {
			t.Errorf("%s: accepted as %v", name, ck)
		}
	}

	p := memPartition(t, vfs.NewMemFS())
	defer p.close()
	if r := p.appendClient(9, -1, testBatch(t, testBatchOpts{records: 5, ts: time.Now().UnixMilli()})); r.err != nil {
		t.Fatal(r.err)
	}
	k := partitionKey{p.topicID, p.index}
	for _, c := range []struct {
		ck   map[partitionKey]int64
		want int64
	}{
		{nil, 0},                          // no checkpoint: the log start
		{map[partitionKey]int64{k: 3}, 3}, // the checkpointed HW
		{map[partitionKey]int64{k: 9}, 5}, // past the log end (an unsynced tail lost): the log end
		{map[partitionKey]int64{{meta.TopicID{7}, 0}: 4}, 0},
	} {
		if got := p.checkpointedHW(c.ck); got != c.want {
			t.Errorf("checkpoint %v: HW starts at %d, want %d", c.ck, got, c.want)
		}
	}
}
