package broker

import (
	"bufio"
	"bytes"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sediment-io/sediment/meta"
)

// High-watermark checkpoint (Kafka's replication-offset-checkpoint): every hwCheckpointInterval,
// and once more on Close, the ReplicaManager writes the HW of every replicated partition it holds
// to <data-dir>/logs/replication-offset-checkpoint. When a broker starts, each replicated
// partition's HW begins at its checkpointed value, capped by its log end (recovery may have cut an
// unsynced tail) and at least its log start; without an entry it begins at the log start, as
// before. The HW only ever held committed offsets, so a restarted broker reports, serves
// consumers (KIP-392) and uploads segments up to what it knew was committed, instead of nothing
// until the ISR (as leader) or the leader's fetch answers (as follower) raise it again. Both raise
// it from there; a follower that must truncate lowers it with its log (truncateTo).
//
// Format (text, like Kafka's; one file per log directory, replaced atomically: temp, fsync,
// rename, fsync dir):
//
//	0                                   version
//	<n>                                 number of entries
//	<topic id> <partition> <hw>         n lines; topic id as in partition directory names
//
// A file that does not parse (another version, a torn write that somehow survived) is ignored as
// a whole, with a warning: every HW then starts at the log start, which is always safe.
// Kafka's interval is replica.high.watermark.checkpoint.interval.ms (5 s); it is not configurable
// here yet.

const (
	hwCheckpointFile     = "replication-offset-checkpoint"
	hwCheckpointVersion  = 0
	hwCheckpointInterval = 5 * time.Second
)

// readHWCheckpoint reads dir's checkpoint: nil, nil when there is none.
func readHWCheckpoint(dir string) (map[partitionKey]int64, error) {
	b, err := os.ReadFile(filepath.Join(dir, hwCheckpointFile))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return parseHWCheckpoint(b)
}

func parseHWCheckpoint(b []byte) (map[partitionKey]int64, error) {
	if len(b) == 0 || b[len(b)-1] != '\n' {
		return nil, fmt.Errorf("%s: does not end with a newline (torn?)", hwCheckpointFile)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	line := func() (string, bool) {
		if !sc.Scan() {
			return "", false
		}
		return sc.Text(), true
	}
	v, ok := line()
	if !ok || v != strconv.Itoa(hwCheckpointVersion) {
		return nil, fmt.Errorf("%s: version %q, this build reads %d", hwCheckpointFile, v, hwCheckpointVersion)
	}
	c, ok := line()
	n, err := strconv.Atoi(c)
	if !ok || err != nil || n < 0 || n > len(b) {
		return nil, fmt.Errorf("%s: bad entry count %q", hwCheckpointFile, c)
	}
	out := make(map[partitionKey]int64, n)
	for i := 0; i < n; i++ {
		l, ok := line()
		f := strings.Fields(l)
		if !ok || len(f) != 3 {
			return nil, fmt.Errorf("%s: entry %d of %d: %q", hwCheckpointFile, i+1, n, l)
		}
		var id meta.TopicID
		part, perr := strconv.ParseInt(f[1], 10, 32)
		hw, herr := strconv.ParseInt(f[2], 10, 64)
		if id.UnmarshalText([]byte(f[0])) != nil || perr != nil || herr != nil || part < 0 || hw < 0 {
			return nil, fmt.Errorf("%s: entry %d: %q", hwCheckpointFile, i+1, l)
		}
		out[partitionKey{id, int32(part)}] = hw
	}
	if l, more := line(); more && strings.TrimSpace(l) != "" || sc.Err() != nil {
		return nil, fmt.Errorf("%s: data after %d entries", hwCheckpointFile, n)
	}
	return out, nil
}

func formatHWCheckpoint(hws map[partitionKey]int64) []byte {
	keys := slices.SortedFunc(maps.Keys(hws), func(a, b partitionKey) int {
		if c := strings.Compare(a.id.String(), b.id.String()); c != 0 {
			return c
		}
		return int(a.index) - int(b.index)
	})
	var b bytes.Buffer
	fmt.Fprintf(&b, "%d\n%d\n", hwCheckpointVersion, len(keys))
	for _, k := range keys {
		fmt.Fprintf(&b, "%s %d %d\n", k.id.String(), k.index, hws[k])
	}
	return b.Bytes()
}

// writeHWCheckpoint replaces dir's checkpoint atomically and durably.
func writeHWCheckpoint(dir string, hws map[partitionKey]int64) error {
	tmp := filepath.Join(dir, hwCheckpointFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, werr := f.Write(formatHWCheckpoint(hws))
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, filepath.Join(dir, hwCheckpointFile))
	}
	if werr != nil {
		os.Remove(tmp)
		return werr
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// replicatedHWs is the HW of every replicated partition held here (single-replica partitions start
// at their log end anyway).
func (rm *ReplicaManager) replicatedHWs() map[partitionKey]int64 {
	out := map[partitionKey]int64{}
	for _, p := range rm.Partitions() {
		p.stateMu.RLock()
		replicated := len(p.replicas) > 1
		p.stateMu.RUnlock()
		if replicated {
			out[partitionKey{p.topicID, p.index}] = p.HighWatermark()
		}
	}
	return out
}

// checkpointHWs writes the checkpoint if anything changed since the last write (last: what was
// written, updated on success).
func (rm *ReplicaManager) checkpointHWs(last *map[partitionKey]int64) {
	hws := rm.replicatedHWs()
	if *last != nil && maps.Equal(hws, *last) {
		return
	}
	if err := writeHWCheckpoint(rm.dir, hws); err != nil {
		rm.log.Warn("writing the high-watermark checkpoint", "err", err)
		return
	}
	*last = hws
}

// hwCheckpointLoop writes the checkpoint every hwCheckpointInterval until the manager closes.
func (rm *ReplicaManager) hwCheckpointLoop(last *map[partitionKey]int64) {
	t := time.NewTicker(hwCheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-rm.ctx.Done():
			return
		case <-t.C:
		}
		rm.checkpointHWs(last)
	}
}

// checkpointedHW is where a replicated partition's HW starts when it is opened: the checkpointed
// value within [log start, log end], else the log start.
func (p *Partition) checkpointedHW(ck map[partitionKey]int64) int64 {
	start, end := p.log.StartOffset(), p.log.EndOffset()
	hw, ok := ck[partitionKey{p.topicID, p.index}]
	if !ok {
		return start
	}
	return min(max(hw, start), end)
}
