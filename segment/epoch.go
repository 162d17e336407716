package segment

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"sort"

	"github.com/sediment-io/sediment/segment/vfs"
)

func putInt64(b []byte, v int64) { binary.BigEndian.PutUint64(b, uint64(v)) }

// The leader-epoch cache (KIP-101/279): epoch -> first offset written in it,
// epochs and offsets increasing, persisted in leader-epoch.checkpoint on every
// change. Rules follow Kafka's LeaderEpochFileCache.

func (l *Log) latestEpoch() (int32, bool) {
	if len(l.epochs) == 0 {
		return 0, false
	}
	return l.epochs[len(l.epochs)-1].epoch, true
}

// AssignEpoch records that epoch starts at startOffset. An epoch equal to the
// latest with a later start is ignored; entries that would break monotonicity
// (epoch >= epoch or start >= startOffset) are removed first.
func (l *Log) AssignEpoch(epoch int32, startOffset int64) error {
	if epoch < 0 || startOffset < 0 {
		return fmt.Errorf("segment: invalid epoch %d / start offset %d", epoch, startOffset)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.checkWritable(); err != nil {
		return err
	}
	if err := l.assignEpochLocked(epoch, startOffset); err != nil {
		return l.fail(err)
	}
	return nil
}

func (l *Log) assignEpochLocked(epoch int32, start int64) error {
	if n := len(l.epochs); n > 0 {
		last := l.epochs[n-1]
		if last.epoch == epoch && start >= last.start {
			return nil
		}
	}
	n := len(l.epochs)
	for n > 0 && (l.epochs[n-1].epoch >= epoch || l.epochs[n-1].start >= start) {
		n--
	}
	l.epochs = append(l.epochs[:n], epochEntry{epoch: epoch, start: start})
	return l.persistEpochs()
}

func (l *Log) persistEpochs() error {
	if err := vfs.WriteFileAtomic(l.fs, filepath.Join(l.dir, leaderEpochFile), encodeEpochs(l.epochs)); err != nil {
		return fmt.Errorf("segment: write leader epochs in %s: %w", l.dir, err)
	}
	return nil
}

// truncateEpochsFromEnd drops entries starting at or after end (mu held).
func (l *Log) truncateEpochsFromEnd(end int64) error {
	n := len(l.epochs)
	for n > 0 && l.epochs[n-1].start >= end {
		n--
	}
	if n == len(l.epochs) {
		return nil
	}
	l.epochs = l.epochs[:n]
	if err := l.persistEpochs(); err != nil {
		return l.fail(err)
	}
	return nil
}

// truncateEpochsFromStart drops entries wholly below start; the last entry
// starting at or below start is kept with its start moved up to start. With
// persist false the file is left as it is: SetStartOffset's truncation is not
// worth a synchronous checkpoint (two fsyncs, one a journal commit, while
// appends wait), because entries below the start offset answer no question and
// Open truncates the loaded cache from the persisted start offset again. The
// file catches up at the next epoch change, at Open, or never needs to. Kafka
// made the same change for the same stall (KAFKA-15046).
func (l *Log) truncateEpochsFromStart(start int64, persist bool) error {
	i := sort.Search(len(l.epochs), func(i int) bool { return l.epochs[i].start > start })
	if i == 0 || (i == 1 && l.epochs[0].start == start) {
		return nil
	}
	keep := l.epochs[i-1]
	keep.start = start
	l.epochs = append(append(l.epochs[:0], keep), l.epochs[i:]...)
	if !persist {
		return nil
	}
	if err := l.persistEpochs(); err != nil {
		return l.fail(err)
	}
	return nil
}

// LatestEpoch returns the latest leader epoch in the cache.
func (l *Log) LatestEpoch() (int32, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.latestEpoch()
}

// EndOffsetForEpoch answers OffsetForLeaderEpoch: the largest known epoch <=
// epoch and the start offset of the first epoch after it (EndOffset() when it is
// the latest). ok=false when epoch is above the latest or the cache is empty.
func (l *Log) EndOffsetForEpoch(epoch int32) (int32, int64, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	n := len(l.epochs)
	if n == 0 || epoch < 0 {
		return -1, -1, false
	}
	if l.epochs[n-1].epoch == epoch {
		return epoch, l.end, true
	}
	hi := sort.Search(n, func(i int) bool { return l.epochs[i].epoch > epoch })
	if hi == n {
		return -1, -1, false
	}
	if hi == 0 {
		return epoch, l.epochs[0].start, true
	}
	return l.epochs[hi-1].epoch, l.epochs[hi].start, true
}

// Epochs returns a copy of the leader-epoch cache as (epoch, start offset) pairs.
func (l *Log) Epochs() [][2]int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make([][2]int64, len(l.epochs))
	for i, e := range l.epochs {
		out[i] = [2]int64{int64(e.epoch), e.start}
	}
	return out
}
