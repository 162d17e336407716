package segment

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sediment-io/sediment/segment/vfs"
)

// Log is one partition replica's log: a directory of segments. See doc.go.
type Log struct {
	dir  string
	cfg  Config
	fs   vfs.FS
	lock io.Closer // the directory's lock file (nil if the FS cannot lock)

	// changeMu serialises the changes that remove data or files (truncation,
	// start-offset changes, local deletion, resets, Close) with each other.
	// Retention holds only it while it writes its checkpoint and removes files,
	// so that appends and syncs go on meanwhile. Lock order: changeMu, syncMu,
	// mu, fmu.
	changeMu sync.Mutex

	// syncMu serialises file syncs against changes that close, truncate or delete
	// files (truncation, deletion, Close).
	syncMu sync.Mutex

	// idxMu guards lazy loading and eviction of closed segments' indexes; taken
	// under mu (read or write), never the other way round.
	idxMu    sync.Mutex
	useClock uint64

	mu            sync.RWMutex
	segs          []*segment // oldest first; the last is active
	start, end    int64      // log start offset, log end offset
	recoveryPoint int64      // persisted: segments below this base need no scan
	cpRunning     bool       // a checkpointer goroutine is moving recoveryPoint up (checkpointLoop)
	epochs        []epochEntry
	err           error // sticky: set by a failed write or sync; appends refuse
	closed        bool

	// Group commit state, guarded by fmu.
	fmu        sync.Mutex
	fcond      sync.Cond
	durable    int64 // every offset below is on disk
	syncing    bool  // a goroutine is syncing on behalf of all waiters
	ferr       error // sticky sync error
	waiters    int   // goroutines blocked in WaitDurable
	timer      *time.Timer
	timerArmed bool
	truncGen   uint64     // bumped by every truncation
	truncs     [8]truncAt // the last truncations, by truncGen % 8

	// Recycle pool (recycle.go), guarded by mu: deleted segments' .log files
	// kept for reuse, lowest bound first. pooling is false while Open loads
	// (files dropped then have unknown contents and are removed).
	pool    []pooled
	iov     [2][]byte // writeData's buffers (mu held): no allocation per append
	pooling bool
	reused  int           // files taken from the pool (tests)
	pins    map[int64]int // segments (by base) read by path somewhere: never pooled (PinSegment)

	syncRounds atomic.Int64 // group-commit fdatasyncs done (benchmarks report bytes per sync)

	cpDone sync.WaitGroup // the checkpointer goroutine, which Close and Delete wait for
}

type truncAt struct {
	gen uint64
	to  int64
}

// AppendResult describes an append.
type AppendResult struct {
	FirstOffset, LastOffset int64
	MaxTimestamp            int64 // max over the appended batches' maxTimestamp
	Bytes                   int
}

// ReadOptions bound a Read.
type ReadOptions struct {
	MaxBytes    int
	MaxOffset   int64 // exclusive bound on batch last offsets; <= 0 means EndOffset()
	MinOneBatch bool
}

// ReadResult is whole batches exactly as stored.
type ReadResult struct {
	Data       []byte
	NextOffset int64 // last returned offset + 1 (the requested offset when Data is empty)
}

// SegmentInfo describes one segment.
type SegmentInfo struct {
	BaseOffset, NextOffset int64
	Size                   int64
	MaxTimestamp           int64
	Created                time.Time
	Closed                 bool
	Path                   string // the .log file
	// IndexPath and TimeIndexPath name the segment's index files; they exist
	// on disk for closed segments (written when rolled), not for the active one.
	IndexPath, TimeIndexPath string
}

func (l *Log) active() *segment { return l.segs[len(l.segs)-1] }

func (l *Log) checkWritable() error {
	if l.closed {
		return ErrClosed
	}
	if l.err != nil {
		return fmt.Errorf("segment: log %s refuses writes after an earlier failure: %w", l.dir, l.err)
	}
	return nil
}

// lockChange takes syncMu and mu (in that order) for a change that closes,
// truncates or deletes files, and fails if the log refuses writes; on success
// the caller must call unlockChange.
func (l *Log) lockChange() error {
	l.changeMu.Lock()
	l.syncMu.Lock()
	l.mu.Lock()
	if err := l.checkWritable(); err != nil {
		l.unlockChange()
		return err
	}
	return nil
}

func (l *Log) unlockChange() {
	l.mu.Unlock()
	l.syncMu.Unlock()
	l.changeMu.Unlock()
}

// fail records a sticky error (mu held).
func (l *Log) fail(err error) error {
	if l.err == nil {
		l.err = err
		l.cfg.Logger.Error("segment: log failed; refusing further writes", "dir", l.dir, "err", err)
	}
	return err
}

// Append assigns offsets from EndOffset() to the batches, stamps baseOffset and
// partitionLeaderEpoch in each header (in place, in the caller's buffer), writes
// them and returns once they are durable per the flush policy. All batches are
// validated first; on a validation error nothing is appended. Safe for concurrent
// use: concurrent appends get offsets in the order they take the log's lock and
// share fsyncs.
func (l *Log) Append(batches []byte, leaderEpoch int32) (AppendResult, error) {
	res, policy, err := l.append(batches, true, leaderEpoch)
	if err != nil {
		return res, err
	}
	return res, l.waitPolicy(policy, res.LastOffset+1)
}

// AppendNoWait is Append without waiting for durability: the caller may release
// its own locks and then call WaitDurable(res.LastOffset+1), letting appends
// that it serialises share one fsync.
func (l *Log) AppendNoWait(batches []byte, leaderEpoch int32) (AppendResult, error) {
	res, _, err := l.append(batches, true, leaderEpoch)
	return res, err
}

// AppendReplicated appends batches whose offsets and epochs are already set (a
// follower copying its leader). The first batch's baseOffset must equal
// EndOffset() and each next batch must start right after the previous one
// (Sediment logs have no gaps); otherwise ErrInvalidOffset. One
// exception, as in Kafka: on an empty log whose end offset falls inside the
// first batch, the log restarts at that batch's base offset.
func (l *Log) AppendReplicated(batches []byte) (AppendResult, error) {
	res, policy, err := l.append(batches, false, 0)
	if err != nil {
		return res, err
	}
	return res, l.waitPolicy(policy, res.LastOffset+1)
}

// AppendReplicatedNoWait is AppendReplicated without waiting for durability: a
// follower writes what it fetched, fetches on at once, and makes the writes
// durable with WaitDurable on another goroutine (its durable position, not its
// log end, is what may count toward the leader's high watermark).
func (l *Log) AppendReplicatedNoWait(batches []byte) (AppendResult, error) {
	res, _, err := l.append(batches, false, 0)
	return res, err
}

// DurableOffset is the offset below which everything is on disk (fsynced, or
// recovered from disk at open). It never exceeds EndOffset.
func (l *Log) DurableOffset() int64 {
	l.fmu.Lock()
	d := l.durable
	l.fmu.Unlock()
	return min(d, l.EndOffset())
}

func (l *Log) waitPolicy(policy FlushPolicy, upTo int64) error {
	if policy == FlushAlways {
		return l.WaitDurable(upTo)
	}
	return nil
}

// append writes the batches and returns the flush policy in force when it did
// (SetConfig may change it concurrently).
func (l *Log) append(b []byte, assign bool, epoch int32) (AppendResult, FlushPolicy, error) {
	if len(b) == 0 {
		return AppendResult{}, 0, fmt.Errorf("%w: no batches to append", ErrCorrupt)
	}
	// Validate everything before touching the log.
	res := AppendResult{MaxTimestamp: -1, Bytes: len(b)}
	prevNext := int64(-1)
	largest, largestAt := 0, 0
	for pos := 0; pos < len(b); {
		h, n, err := nextBatch(b[pos:])
		if err != nil {
			return AppendResult{}, 0, fmt.Errorf("batch at byte %d: %w", pos, err)
		}
		if n > largest {
			largest, largestAt = n, pos
		}
		if !assign {
			if prevNext >= 0 && h.BaseOffset() != prevNext {
				return AppendResult{}, 0, fmt.Errorf("%w: batch at byte %d has base offset %d, expected %d", ErrInvalidOffset, pos, h.BaseOffset(), prevNext)
			}
			prevNext = h.LastOffset() + 1
		}
		res.MaxTimestamp = max(res.MaxTimestamp, h.MaxTimestamp())
		pos += n
	}

	if !assign {
		if err := l.maybeRestartAt(BatchHeader(b)); err != nil {
			return AppendResult{}, 0, err
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.checkWritable(); err != nil {
		return AppendResult{}, 0, err
	}
	if int64(largest) > l.cfg.SegmentBytes {
		return AppendResult{}, 0, fmt.Errorf("%w: batch at byte %d is %d bytes, segment.bytes is %d", ErrBatchTooLarge, largestAt, largest, l.cfg.SegmentBytes)
	}
	if !assign {
		if first := BatchHeader(b); first.BaseOffset() != l.end {
			return AppendResult{}, 0, fmt.Errorf("%w: first base offset %d, log end offset %d", ErrInvalidOffset, first.BaseOffset(), l.end)
		}
	} else if int64(math.MaxInt64)-l.end < int64(len(b)) {
		return AppendResult{}, 0, fmt.Errorf("%w: offsets exhausted", ErrInvalidOffset)
	}
	res.FirstOffset = l.end
	next := l.end
	s := l.active()
	chunkStart, pendBytes, pendBatches, pendRollTs := 0, int64(0), 0, int64(-1)
	for pos := 0; pos < len(b); {
		h := BatchHeader(b[pos : pos+HeaderSize])
		n := h.Size()
		if assign {
			h.SetBaseOffset(next)
			h.SetPartitionLeaderEpoch(epoch)
		}
		if why := l.shouldRoll(s, pendBytes, pendBatches, pendRollTs, n, h); why != 0 {
			if pos > chunkStart {
				if err := l.commit(b[chunkStart:pos]); err != nil {
					return AppendResult{}, 0, err
				}
			}
			if err := l.roll(h.BaseOffset(), why); err != nil {
				return AppendResult{}, 0, err
			}
			s = l.active()
			chunkStart, pendBytes, pendBatches, pendRollTs = pos, 0, 0, -1
		}
		if pendBatches == 0 {
			pendRollTs = h.MaxTimestamp()
		}
		pendBytes += int64(n)
		pendBatches++
		next = h.LastOffset() + 1
		pos += n
	}
	if err := l.commit(b[chunkStart:]); err != nil {
		return AppendResult{}, 0, err
	}
	res.LastOffset = l.end - 1
	l.checkInvariants()
	if l.cfg.FlushPolicy == FlushInterval {
		l.armFlushTimer() // also for AppendNoWait callers, who never wait
	}
	return res, l.cfg.FlushPolicy, nil
}

// SetConfig applies changed topic configs to the open log, as Kafka applies
// topic config changes without reopening: segment.bytes, segment.ms,
// segment.index.bytes, index.interval.bytes, the flush policy and interval.
// They take effect from the next append: a segment already past the new
// segment.bytes or segment.ms, or whose index is past the new
// segment.index.bytes, rolls before the next batch is written; appends already
// waiting keep the policy they were appended under. cfg's FS, Now and Logger
// are fixed at Open and ignored here. An invalid cfg changes nothing.
func (l *Log) SetConfig(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	l.cfg.SegmentBytes = cfg.SegmentBytes
	l.cfg.SegmentMs = cfg.SegmentMs
	l.cfg.SegmentIndexBytes = cfg.SegmentIndexBytes
	l.cfg.IndexIntervalBytes = cfg.IndexIntervalBytes
	l.cfg.FlushPolicy = cfg.FlushPolicy
	l.cfg.FlushInterval = cfg.FlushInterval
	a := l.active()
	a.idx.maxEntries = cfg.SegmentIndexBytes / indexEntrySize
	a.tidx.maxEntries = cfg.SegmentIndexBytes / timeIndexEntrySize
	if cfg.FlushPolicy == FlushInterval {
		// Data appended under another policy, or waiting for a timer armed
		// with the old interval, is synced within the new interval even if
		// nothing more is appended.
		l.fmu.Lock()
		if l.timerArmed {
			l.timer.Reset(cfg.FlushInterval)
		}
		l.fmu.Unlock()
		l.armFlushTimer()
	}
	return nil
}

// Config returns the log's current configuration.
func (l *Log) Config() Config {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.cfg
}

// maybeRestartAt handles a follower's first fetch into an empty log (no local
// data) whose end offset lies inside the leader's batch (the start offset was set mid-batch):
// the log restarts at the batch's base offset, as Kafka's follower does on
// UnexpectedAppendOffsetException.
func (l *Log) maybeRestartAt(first BatchHeader) error {
	empty := func() bool {
		return !l.closed && l.err == nil && l.localStart() == l.end && first.BaseOffset() < l.end && first.LastOffset() >= l.end
	}
	l.mu.RLock()
	need := empty()
	l.mu.RUnlock()
	if !need {
		return nil
	}
	l.changeMu.Lock()
	defer l.changeMu.Unlock()
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if !empty() {
		return nil
	}
	return l.resetLocked(first.BaseOffset(), min(l.start, first.BaseOffset()))
}

// shouldRoll applies Kafka's roll rules to the active segment s as it will be
// after the pending (not yet written) bytes, before adding a batch of n bytes.
func (l *Log) shouldRoll(s *segment, pendBytes int64, pendBatches int, pendRollTs int64, n int, h BatchHeader) RollReason {
	size := s.size + pendBytes
	if size == 0 {
		return 0
	}
	if size+int64(n) > l.cfg.SegmentBytes {
		return RollSize
	}
	rollTs := s.rollTs
	if s.size == 0 {
		rollTs = pendRollTs
	}
	if rollTs >= 0 {
		if h.MaxTimestamp()-rollTs > l.cfg.SegmentMs.Milliseconds() {
			return RollTime
		}
	} else if l.cfg.Now().Sub(s.created) > l.cfg.SegmentMs {
		return RollTime
	}
	if len(s.idx.entries)+pendBatches+1 > s.idx.maxEntries || len(s.tidx.entries)+pendBatches+1 > s.tidx.capacity() {
		return RollIndexFull
	}
	if h.LastOffset()-s.base > math.MaxInt32 {
		return RollOffsetRange
	}
	return 0
}

// commit writes whole, stamped batches to the active segment (mu held).
func (l *Log) commit(chunk []byte) error {
	s := l.active()
	for pos := 0; pos < len(chunk); {
		h := BatchHeader(chunk[pos : pos+HeaderSize])
		if e := h.PartitionLeaderEpoch(); e >= 0 {
			if last, ok := l.latestEpoch(); !ok || e > last {
				if err := l.assignEpochLocked(e, h.BaseOffset()); err != nil {
					return l.fail(err)
				}
			}
		}
		pos += h.Size()
	}
	if err := l.writeData(s, chunk); err != nil {
		return l.fail(err)
	}
	for pos := 0; pos < len(chunk); {
		h := BatchHeader(chunk[pos : pos+HeaderSize])
		s.onBatch(s.size, h, l.cfg.IndexIntervalBytes)
		pos += h.Size()
	}
	l.end = s.next
	return nil
}

// pageSize is the page cache's unit on the platforms Sediment runs on.
const pageSize = 4096

var zeroPage [pageSize]byte

// padToPage: writeData pads to a page boundary (off only for benchmarks' A/B).
var padToPage = true

// writeData writes chunk at the end of segment s's data (mu held). A write
// that would end inside a page is padded with zeros to the page's end, in the
// same pwritev: the kernel then fills whole pages and never reads one from disk
// to merge with what the write leaves unchanged. Without it a recycled file
// whose pages have left the page cache (a segment deleted by retention a
// week after it was written) costs a synchronous disk read per append: 16.5 KiB
// batches over such a file took 3.8 s per GB of pwrite instead of 0.36 s with
// the padding, and the padding is faster over cached and new files too
// (0.17 vs 0.20, 0.45 vs 0.53 s per GB; doc.go "Page padding").
// The zeros lie past the data: readers never see them, the next write
// overwrites them, recovery cuts them like any torn tail, and rolls and Close
// trim them (fileSize covers them).
func (l *Log) writeData(s *segment, chunk []byte) error {
	end := s.size + int64(len(chunk))
	pad := (pageSize - end%pageSize) % pageSize
	var err error
	if pad == 0 || !padToPage {
		_, err = s.f.WriteAt(chunk, s.size)
	} else {
		l.iov = [2][]byte{chunk, zeroPage[:pad]}
		_, err = vfs.WriteAtv(s.f, l.iov[:], s.size)
		l.iov = [2][]byte{}
		s.fileSize = max(s.fileSize, end+pad)
	}
	if err != nil {
		return fmt.Errorf("segment: write %s at byte %d: %w", s.path, s.size, err)
	}
	return nil
}

// Roll closes the active segment and starts a new one at EndOffset(). It is a
// no-op when the active segment is empty.
func (l *Log) Roll() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.checkWritable(); err != nil {
		return err
	}
	a := l.active()
	if a.size == 0 {
		return nil
	}
	why := RollRequested
	if l.cfg.Now().Sub(a.created) >= l.cfg.SegmentMs {
		why = RollTime // the broker's segment.ms check on an idle partition
	}
	return l.roll(l.end, why)
}

// roll makes the active segment's data durable, writes its indexes, starts a
// new segment at base and has the checkpointer advance the recovery point to
// it (mu held). Config.OnRoll is told.
//
// Every append of the partition waits while a roll holds the lock, so a roll
// does only what the next appends need: the closed segment's data and size
// durable (acknowledged offsets may be in its unsynced tail) and the new file's
// name durable (the next acknowledged offsets are in it). The index files are
// written but not fsynced: they are derived data, rebuilt by Open's scan of
// every segment at or above the recovery point, and the checkpointer fsyncs
// them before it moves the recovery point past their segment. That took the
// index fsyncs and the checkpoint's write, fsync, rename and directory fsync
// (two thirds of a roll's time under the lock, and 5 % of all the time in the
// durable append benchmark) out of the append path, as Kafka flushes a rolled
// segment and its indexes in the background (KAFKA-9693 et seq.).
func (l *Log) roll(base int64, why RollReason) error {
	old := l.active()
	// A reused file loses its stale tail before the segment counts as closed:
	// closed segments' files hold exactly their data.
	if err := old.trimAndSync(); err != nil {
		return l.fail(err)
	}
	old.tidx.maybeAdd(old.maxTs, old.maxTsOffset, true)
	if err := old.writeIndexes(l.fs, l.dir, false); err != nil {
		return l.fail(err)
	}
	ns, err := l.newActiveSegment(base)
	if err != nil {
		return l.fail(err)
	}
	// Also makes the index files' names durable; the checkpointer needs only
	// to fsync their contents.
	if err := l.fs.SyncDir(l.dir); err != nil {
		ns.f.Close()
		return l.fail(fmt.Errorf("segment: sync dir %s: %w", l.dir, err))
	}
	old.closed = true
	l.unloadIndexes(old) // in the page cache now; loaded again when a reader needs them
	l.segs = append(l.segs, ns)
	l.markDurable(old.next)
	l.startCheckpointer()
	if l.cfg.OnRoll != nil {
		l.cfg.OnRoll(RollInfo{OldBase: old.base, NewBase: base, Size: old.size, Reason: why})
	}
	return nil
}

// startCheckpointer starts checkpointLoop unless it runs already (mu held).
func (l *Log) startCheckpointer() {
	if l.cpRunning {
		return
	}
	l.cpRunning = true
	l.cpDone.Add(1)
	go l.checkpointLoop()
}

// checkpointLoop moves the persisted recovery point up to the active segment
// while rolls move the active segment on, and ends when it has caught up (or
// the log closed or failed).
func (l *Log) checkpointLoop() {
	defer l.cpDone.Done()
	for l.checkpointOnce() {
	}
}

// checkpointOnce persists the recovery point at the active segment's base and
// reports whether it did. It holds changeMu, so no truncation, retention or
// Close removes the files it syncs or moves the recovery point meanwhile, but
// not mu: appends and rolls go on.
func (l *Log) checkpointOnce() bool {
	l.changeMu.Lock()
	defer l.changeMu.Unlock()
	l.mu.Lock()
	if l.closed || l.err != nil || l.active().base <= l.recoveryPoint {
		l.cpRunning = false
		l.mu.Unlock()
		return false
	}
	target := l.active().base
	pending := l.unsyncedIndexes(target)
	l.mu.Unlock()

	err := l.syncIndexFiles(pending)
	if err == nil {
		err = l.writeRecoveryPoint(target)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.fail(err)
		l.cpRunning = false
		return false
	}
	l.recoveryPoint = target
	return true
}

// unsyncedIndexes lists the index files that may not be durable yet: those of
// the closed segments from the recovery point up to below (mu held).
func (l *Log) unsyncedIndexes(below int64) []string {
	var paths []string
	for _, s := range l.segs {
		if s.closed && s.base >= l.recoveryPoint && s.base < below {
			paths = append(paths, segPath(l.dir, s.base, indexSuffix), segPath(l.dir, s.base, timeIndexSuffix))
		}
	}
	return paths
}

// syncIndexFiles fsyncs files that roll wrote (their names are durable already).
func (l *Log) syncIndexFiles(paths []string) error {
	for _, p := range paths {
		f, err := l.fs.OpenFile(p, os.O_RDWR, 0)
		if err == nil {
			err = f.Sync()
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			return fmt.Errorf("segment: sync index %s: %w", p, err)
		}
	}
	return nil
}

func (l *Log) writeRecoveryPoint(off int64) error {
	if err := writeOffsetCheckpoint(l.fs, l.dir, recoveryPointFile, kindRecoveryPoint, off); err != nil {
		return fmt.Errorf("segment: write recovery point in %s: %w", l.dir, err)
	}
	return nil
}

// setRecoveryPoint persists and sets the recovery point (changeMu and mu held):
// lowering it before a truncation, or raising it where every closed segment
// below off has durable indexes.
func (l *Log) setRecoveryPoint(off int64) error {
	if err := l.writeRecoveryPoint(off); err != nil {
		return err
	}
	l.recoveryPoint = off
	return nil
}

func (l *Log) markDurable(upTo int64) {
	l.fmu.Lock()
	if upTo > l.durable {
		l.durable = upTo
	}
	l.fcond.Broadcast()
	l.fmu.Unlock()
}

// WaitDurable returns once every offset below upTo is on disk, syncing if needed.
// Concurrent callers share syncs: one syncs on behalf of everyone who has written
// by the time its sync starts, the others wait (group commit).
//
// If the log is truncated below upTo while waiting, or does not reach upTo
// when the call syncs it, the waited-for data is gone: ErrTruncated, rather
// than waiting for other data to reach upTo.
func (l *Log) WaitDurable(upTo int64) error {
	l.fmu.Lock()
	gen0 := l.truncGen
	for {
		if l.truncGen != gen0 {
			if l.truncGen-gen0 > uint64(len(l.truncs)) {
				l.fmu.Unlock()
				return fmt.Errorf("%w: log %s truncated while waiting for offset %d", ErrTruncated, l.dir, upTo-1)
			}
			for g := gen0 + 1; g <= l.truncGen; g++ {
				if t := l.truncs[g%uint64(len(l.truncs))]; t.gen == g && t.to < upTo {
					l.fmu.Unlock()
					return fmt.Errorf("%w: log %s truncated to %d while waiting for offset %d", ErrTruncated, l.dir, t.to, upTo-1)
				}
			}
			gen0 = l.truncGen
		}
		if l.durable >= upTo {
			l.fmu.Unlock()
			return nil
		}
		if l.ferr != nil {
			err := l.ferr
			l.fmu.Unlock()
			return err
		}
		if !l.syncing {
			l.syncing = true
			others := l.waiters
			l.fmu.Unlock()
			if others > 0 && groupCommitYield {
				// Others wait on this log: writers the last sync released
				// may be runnable, about to append. Letting them run first
				// puts their batches in this sync instead of the next.
				runtime.Gosched()
			}
			reach := l.syncOnce()
			l.fmu.Lock()
			if l.ferr == nil && reach < upTo && l.durable < upTo {
				// The sync covered everything in the log and upTo is still
				// beyond it: the data is not there (truncated before this call,
				// or never appended). Syncing again would not change that.
				l.fmu.Unlock()
				return fmt.Errorf("%w: log %s ends at %d, below awaited offset %d", ErrTruncated, l.dir, reach, upTo-1)
			}
			continue
		}
		l.waiters++
		l.fcond.Wait()
		l.waiters--
	}
}

// syncOnce fsyncs the active segment and publishes how far that made the log
// durable, which it returns. Called with syncing set; clears it.
func (l *Log) syncOnce() int64 {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.RLock()
	var (
		f     vfs.File
		path  string
		reach int64
		err   error
	)
	if l.closed {
		err = ErrClosed
	} else {
		s := l.active()
		f, path, reach = s.f, s.path, l.end
	}
	l.mu.RUnlock()
	if err == nil {
		if serr := f.Datasync(); serr != nil {
			// After a failed fsync the kernel may have dropped the dirty pages:
			// nothing written since the last good sync can be trusted durable.
			err = fmt.Errorf("segment: sync %s: %w", path, serr)
			l.mu.Lock()
			l.fail(err)
			l.mu.Unlock()
		}
	}
	if err == nil && f != nil {
		l.syncRounds.Add(1)
	}
	l.fmu.Lock()
	l.syncing = false
	if err != nil {
		if l.ferr == nil {
			l.ferr = err
		}
	} else if reach > l.durable {
		l.durable = reach
	}
	l.fcond.Broadcast()
	l.fmu.Unlock()
	return reach
}

func (l *Log) armFlushTimer() {
	l.fmu.Lock()
	defer l.fmu.Unlock()
	if l.timerArmed || l.ferr != nil {
		return
	}
	l.timerArmed = true
	if l.timer == nil {
		l.timer = time.AfterFunc(l.cfg.FlushInterval, l.intervalFlush)
	} else {
		l.timer.Reset(l.cfg.FlushInterval)
	}
}

func (l *Log) intervalFlush() {
	l.fmu.Lock()
	l.timerArmed = false
	l.fmu.Unlock()
	l.mu.RLock()
	end, closed := l.end, l.closed
	l.mu.RUnlock()
	if !closed {
		_ = l.WaitDurable(end)
	}
}

// Read returns whole batches starting with the one containing offset, as stored.
// Reads stay within one segment; NextOffset says where to continue.
func (l *Log) Read(offset int64, opts ReadOptions) (ReadResult, error) {
	s, pos, limit, maxOff, err := l.locate(offset, opts.MaxOffset)
	if err != nil || s == nil {
		return ReadResult{NextOffset: offset}, err
	}
	// The log lock is released; s.fileMu (read) keeps the file open and the
	// bytes below limit unchanged (truncation and deletion take it for writing),
	// and appends only write above limit.
	defer s.fileMu.RUnlock()
	want := min(int64(max(opts.MaxBytes, HeaderSize)), limit-pos)
	buf := make([]byte, want)
	if _, err := s.f.ReadAt(buf, pos); err != nil {
		return ReadResult{}, fmt.Errorf("segment: read %s at byte %d: %w", s.path, pos, err)
	}
	n, last := 0, int64(-1)
	for n+HeaderSize <= len(buf) {
		h, err := ParseBatchHeader(buf[n:])
		if err != nil {
			return ReadResult{}, fmt.Errorf("%s at byte %d: %w", s.path, pos+int64(n), err)
		}
		if h.LastOffset() >= maxOff {
			break
		}
		sz := h.Size()
		if n+sz > len(buf) {
			if pos+int64(n+sz) > limit {
				return ReadResult{}, fmt.Errorf("%w: %s: batch at byte %d runs past the segment end", ErrCorrupt, s.path, pos+int64(n))
			}
			if n == 0 && opts.MinOneBatch {
				full := make([]byte, sz)
				copy(full, buf)
				if _, err := s.f.ReadAt(full[len(buf):], pos+int64(len(buf))); err != nil {
					return ReadResult{}, fmt.Errorf("segment: read %s at byte %d: %w", s.path, pos+int64(len(buf)), err)
				}
				return ReadResult{Data: full, NextOffset: BatchHeader(full).LastOffset() + 1}, nil
			}
			break
		}
		last = h.LastOffset()
		n += sz
	}
	if n == 0 {
		return ReadResult{NextOffset: offset}, nil
	}
	return ReadResult{Data: buf[:n:n], NextOffset: last + 1}, nil
}

// locate finds, under the log's read lock, the segment and position of the
// batch containing offset, the segment's valid size and the effective max
// offset. On success with s != nil it returns with s.fileMu read-locked; s is
// nil when there is nothing to read.
func (l *Log) locate(offset, maxOffset int64) (s *segment, pos, limit, maxOff int64, err error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return nil, 0, 0, 0, ErrClosed
	}
	if offset < l.start || offset > l.end {
		return nil, 0, 0, 0, fmt.Errorf("%w: offset %d, log %s holds [%d, %d)", ErrOffsetOutOfRange, offset, l.dir, l.start, l.end)
	}
	if ls := l.localStart(); offset < ls {
		return nil, 0, 0, 0, fmt.Errorf("%w: offset %d, log %s holds [%d, %d) locally, log start %d", ErrNotLocal, offset, l.dir, ls, l.end, l.start)
	}
	maxOff = maxOffset
	if maxOff <= 0 || maxOff > l.end {
		maxOff = l.end
	}
	if offset >= maxOff {
		return nil, 0, 0, 0, nil
	}
	var hb [HeaderSize]byte
	for i := l.segmentFor(offset); i < len(l.segs); i++ {
		s := l.segs[i]
		p, _, err := l.find(s, offset, hb[:])
		if err != nil {
			return nil, 0, 0, 0, err
		}
		if p < s.size {
			s.fileMu.RLock()
			return s, p, s.size, maxOff, nil
		}
	}
	return nil, 0, 0, 0, nil
}

// segmentFor returns the index of the segment with the largest base <= offset (0 if none).
func (l *Log) segmentFor(offset int64) int {
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].base > offset })
	return max(i-1, 0)
}

// OffsetForTimestamp returns the first record (from the log start on) whose
// timestamp is >= ts, and that timestamp, as Kafka's ListOffsets: the time index
// finds the batch (the first whose max timestamp is >= ts), then that one batch's
// records are decoded (inflated if compressed) to find the record. If they
// cannot be decoded the batch's base offset and max timestamp are returned.
func (l *Log) OffsetForTimestamp(ts int64) (int64, int64, bool, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return 0, 0, false, ErrClosed
	}
	var hb [HeaderSize]byte
	for _, s := range l.segs {
		if s.maxTs < ts || s.next <= l.start {
			continue
		}
		from := max(l.lookupTime(s, ts), l.start)
		pos := l.lookupPos(s, from)
		for pos < s.size {
			h, err := s.readHeader(pos, hb[:])
			if err != nil {
				return 0, 0, false, err
			}
			if h.MaxTimestamp() >= ts && h.LastOffset() >= l.start {
				batch := make([]byte, h.Size())
				if _, err := s.f.ReadAt(batch, pos); err != nil {
					return 0, 0, false, fmt.Errorf("segment: read %s at byte %d: %w", s.path, pos, err)
				}
				if off, rts, ok := recordAtOrAfter(batch, ts, l.start); ok {
					return off, rts, true, nil
				}
				// Records unreadable: answer at batch granularity, never later
				// than the true answer.
				return max(BatchHeader(batch).BaseOffset(), l.start), BatchHeader(batch).MaxTimestamp(), true, nil
			}
			pos += int64(h.Size())
		}
	}
	return 0, 0, false, nil
}

// MaxTimestamp returns the largest timestamp in the log and the offset of the
// first record carrying it (ListOffsets -3, KIP-734); (-1, -1) when the log has
// none. The batch holding it is decoded; if that fails, the batch's last offset
// is returned.
func (l *Log) MaxTimestamp() (int64, int64) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	off, ts := int64(-1), int64(-1)
	var seg *segment
	for _, s := range l.segs {
		if s.maxTs > ts && s.maxTsOffset >= l.start {
			off, ts, seg = s.maxTsOffset, s.maxTs, s
		}
	}
	if seg == nil || l.closed {
		return off, ts
	}
	var hb [HeaderSize]byte
	pos, h, err := l.find(seg, off, hb[:])
	if err != nil || h == nil || h.LastOffset() != off {
		return off, ts
	}
	batch := make([]byte, h.Size())
	if _, err := seg.f.ReadAt(batch, pos); err != nil {
		return off, ts
	}
	if o, rts, ok := recordAtOrAfter(batch, ts, l.start); ok && rts == ts {
		return o, ts
	}
	return off, ts
}

// StartOffset is the log start offset of the whole log (Kafka's logStartOffset),
// persisted. With tiering it may be below LocalStartOffset: the offsets between
// live only in object storage.
func (l *Log) StartOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.start
}

// LocalStartOffset is the first offset held on local disk: the base of the first
// local segment, or StartOffset when that is higher (KIP-405's local log start
// offset). Reads below it and at or above StartOffset return ErrNotLocal.
func (l *Log) LocalStartOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.localStart()
}

// localStart is LocalStartOffset (mu held).
func (l *Log) localStart() int64 { return max(l.start, l.segs[0].base) }

// writeStart persists the log start and local log start (mu held).
func (l *Log) writeStart(start, localStart int64) error {
	if err := writeStartCheckpoint(l.fs, l.dir, start, localStart); err != nil {
		return fmt.Errorf("segment: write log start offset in %s: %w", l.dir, err)
	}
	return nil
}

// EndOffset is the log end offset: the next offset to assign.
func (l *Log) EndOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.end
}

// Dir is the log's directory.
func (l *Log) Dir() string { return l.dir }

// Err returns the sticky error that makes the log refuse writes, if any.
func (l *Log) Err() error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.err
}

// Segments lists the segments, oldest first; the last is the active one.
func (l *Log) Segments() []SegmentInfo {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make([]SegmentInfo, len(l.segs))
	for i, s := range l.segs {
		out[i] = SegmentInfo{BaseOffset: s.base, NextOffset: s.next, Size: s.size, MaxTimestamp: s.maxTs,
			Created: s.created, Closed: s.closed, Path: s.path,
			IndexPath: segPath(l.dir, s.base, indexSuffix), TimeIndexPath: segPath(l.dir, s.base, timeIndexSuffix)}
	}
	return out
}

// ScanBatches calls fn with the header of each batch from the one containing
// from on, until fn returns false. The header is valid only during the call; fn
// must not call the Log's methods (a read lock is held).
func (l *Log) ScanBatches(from int64, fn func(h BatchHeader) bool) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return ErrClosed
	}
	var hb [HeaderSize]byte
	for i := l.segmentFor(from); i < len(l.segs); i++ {
		s := l.segs[i]
		pos, _, err := l.find(s, from, hb[:])
		if err != nil {
			return err
		}
		for pos < s.size {
			h, err := s.readHeader(pos, hb[:])
			if err != nil {
				return err
			}
			if !fn(h) {
				return nil
			}
			pos += int64(h.Size())
		}
	}
	return nil
}

// TruncateTo removes every batch containing an offset >= offset (a batch
// straddling offset goes whole, as in Kafka, so EndOffset may end up below
// offset). At or below the first local segment's base it empties the local log
// and restarts it at offset: StartOffset becomes offset if offset is at or
// below StartOffset (as Kafka), and is kept if offset lies between StartOffset
// and LocalStartOffset (the history below offset stays in object storage;
// LocalStartOffset becomes offset). The leader-epoch cache is truncated with
// it (cleared when the local log is emptied). Durable on return.
func (l *Log) TruncateTo(offset int64) error {
	if offset < 0 {
		return fmt.Errorf("%w: truncate to negative offset %d", ErrOffsetOutOfRange, offset)
	}
	if err := l.lockChange(); err != nil {
		return err
	}
	defer l.unlockChange()
	if offset >= l.end {
		return nil
	}
	if offset <= l.segs[0].base || offset <= l.start {
		return l.resetLocked(offset, min(l.start, offset))
	}
	i := l.segmentFor(offset)
	s := l.segs[i]
	var hb [HeaderSize]byte
	pos, h, err := l.find(s, offset, hb[:])
	if err != nil {
		return l.fail(err)
	}
	if h != nil && h.BaseOffset() < l.start {
		// The batch to remove straddles the log start offset: nothing at or
		// above the start remains, so restart empty there (a follower then
		// refetches that batch; AppendReplicated accepts it on an empty log).
		return l.resetLocked(l.start, l.start)
	}
	if l.recoveryPoint > s.base {
		if err := l.setRecoveryPoint(s.base); err != nil {
			return l.fail(err)
		}
	}
	for j := len(l.segs) - 1; j > i; j-- { // newest first: a crash leaves a prefix
		if err := l.dropSegment(l.segs[j]); err != nil {
			return l.fail(err)
		}
		l.segs = l.segs[:j]
	}
	if s.closed {
		// It becomes the active segment; its index files are rewritten on roll/close.
		for _, suf := range []string{indexSuffix, timeIndexSuffix} {
			if err := l.fs.Remove(segPath(l.dir, s.base, suf)); err != nil && !isNotExist(err) {
				return l.fail(fmt.Errorf("segment: remove: %w", err))
			}
		}
		s.closed = false
	}
	s.fileMu.Lock()
	err = s.truncateAt(pos, &l.cfg)
	s.fileMu.Unlock()
	if err != nil {
		return l.fail(err)
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return l.fail(fmt.Errorf("segment: sync dir %s: %w", l.dir, err))
	}
	l.end = s.next
	l.afterTruncate(l.end)
	err = l.truncateEpochsFromEnd(l.end)
	l.checkInvariants()
	return err
}

// afterTruncate records that every offset >= to was removed and lowers the
// durable mark so later appends wait for their own sync; waiters for removed
// offsets get ErrTruncated.
func (l *Log) afterTruncate(to int64) {
	l.fmu.Lock()
	l.durable = min(l.durable, to)
	l.truncGen++
	l.truncs[l.truncGen%uint64(len(l.truncs))] = truncAt{gen: l.truncGen, to: to}
	l.fcond.Broadcast()
	l.fmu.Unlock()
}

// ResetLocal drops every local segment and starts an empty log at localStart
// with StartOffset() = logStart (logStart <= localStart): a replica that copies
// only its leader's local tail (KIP-405), or a broker whose data directory was
// emptied while object storage still has the history. The leader-epoch cache is
// cleared. Durable on return (survives a crash and reopen); a crash part-way
// leaves either a prefix of the old log or the reset log.
func (l *Log) ResetLocal(localStart, logStart int64) error {
	if logStart < 0 || localStart < logStart {
		return fmt.Errorf("%w: reset to local start %d, log start %d (want 0 <= log start <= local start)", ErrOffsetOutOfRange, localStart, logStart)
	}
	if err := l.lockChange(); err != nil {
		return err
	}
	defer l.unlockChange()
	return l.resetLocked(localStart, logStart)
}

// resetLocked deletes every segment and restarts the log empty at localStart
// with log start logStart (syncMu and mu held). Order, for crash safety:
// recovery point lowered if localStart is below it; segments removed newest
// first (a crash leaves a prefix of the old log); epoch cache cleared;
// log-start checkpoint; the new segment (an Open that finds no segment creates
// it at the checkpoint's local start); recovery point at localStart.
func (l *Log) resetLocked(localStart, logStart int64) error {
	oldLocal := l.localStart()
	// Lowered now if it must go down (a crash part-way then scans what is
	// left); raised only once the old segments are gone, since closed segments
	// above the persisted recovery point may have index files that were never
	// fsynced (the checkpointer's), which a recovery point above them would
	// have Open trust.
	if localStart < l.recoveryPoint {
		if err := l.setRecoveryPoint(localStart); err != nil {
			return l.fail(err)
		}
	}
	for j := len(l.segs) - 1; j >= 0; j-- {
		if err := l.dropSegment(l.segs[j]); err != nil {
			return l.fail(err)
		}
		l.segs = l.segs[:j]
	}
	l.epochs = l.epochs[:0]
	if err := l.persistEpochs(); err != nil {
		return l.fail(err)
	}
	if err := l.writeStart(logStart, localStart); err != nil {
		return l.fail(err)
	}
	ns, err := l.newActiveSegment(localStart)
	if err != nil {
		return l.fail(err)
	}
	l.segs = append(l.segs, ns)
	if err := l.fs.SyncDir(l.dir); err != nil {
		return l.fail(fmt.Errorf("segment: sync dir %s: %w", l.dir, err))
	}
	if err := l.setRecoveryPoint(localStart); err != nil {
		return l.fail(err)
	}
	l.start, l.end = logStart, localStart
	l.afterTruncate(min(oldLocal, localStart))
	l.checkInvariants()
	return nil
}

// dropSegment closes a segment and removes its files, its .log into the
// recycle pool when recycling is on (mu held). The directory is fsynced.
func (l *Log) dropSegment(s *segment) error {
	s.fileMu.Lock() // wait for readers that let go of mu
	s.f.Close()
	s.fileMu.Unlock()
	if err := removeIndexFiles(l.fs, l.dir, s.base); err != nil {
		return err
	}
	if err := l.releaseLogFile(s); err != nil {
		return err
	}
	return l.fs.SyncDir(l.dir)
}

// SetStartOffset raises the log start offset, persists it, and deletes the
// segments wholly below it (rolling first if that includes the active one).
// Lowering is a no-op; beyond EndOffset is ErrOffsetOutOfRange. Below
// LocalStartOffset it raises only the whole-log start (remote retention).
func (l *Log) SetStartOffset(offset int64) error {
	l.changeMu.Lock()
	defer l.changeMu.Unlock()
	// Under changeMu only appends and rolls change the log, and only at its
	// end: the start and the first segment stay as read here.
	l.mu.RLock()
	err := l.checkWritable()
	start, end, firstBase := l.start, l.end, l.segs[0].base
	l.mu.RUnlock()
	if err != nil || offset <= start {
		return err
	}
	if offset > end {
		return fmt.Errorf("%w: start offset %d beyond log end offset %d", ErrOffsetOutOfRange, offset, end)
	}
	// Persisted before anything is removed (a crash from here on finishes
	// the deletion at Open), and without the locks appends and syncs take.
	if err := l.writeStart(offset, max(offset, firstBase)); err != nil {
		return l.failLocked(err)
	}
	l.mu.Lock()
	if err := l.checkWritable(); err != nil { // an append failed meanwhile: Open will finish this
		l.mu.Unlock()
		return err
	}
	l.start = offset
	l.truncateEpochsFromStart(offset, false) // in memory only: it cannot fail
	if a := l.active(); a.size > 0 && a.next <= offset {
		// Everything is below the new start, the active segment too: roll so
		// that it can go (rare: DeleteRecords up to the end).
		if err := l.roll(l.end, RollStartOffset); err != nil {
			l.mu.Unlock()
			return err
		}
	}
	gone := l.detachBelow(offset)
	l.checkInvariants()
	l.mu.Unlock()
	return l.dropDetached(gone)
}

// failLocked is fail for a caller that does not hold mu.
func (l *Log) failLocked(err error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fail(err)
}

// detachBelow takes the closed segments wholly below offset (NextOffset <=
// offset), never the active one, out of the segment list and returns them,
// oldest first (mu held for writing). Readers no longer find them; the caller
// drops them with dropDetached.
func (l *Log) detachBelow(offset int64) []*segment {
	n := 0
	for n < len(l.segs)-1 && l.segs[n].next <= offset {
		n++
	}
	gone := slices.Clone(l.segs[:n])
	l.segs = append(l.segs[:0], l.segs[n:]...)
	return gone
}

// dropDetached closes and removes the files of segments detachBelow took out
// of the log, oldest first, the .log files into the recycle pool when there is
// room, then fsyncs the directory. The caller holds changeMu only: the file
// system work (unlinks, renames, the directory fsync, a journal commit each on
// ext4) no longer holds up appends and syncs, which took 11-12 % of the time
// in the recycled append benchmark when it ran under mu. On failure the log
// refuses writes; files left behind are below the persisted start and Open
// removes them.
func (l *Log) dropDetached(gone []*segment) error {
	if len(gone) == 0 {
		return nil
	}
	// A sync that found one of these segments active before a roll may still
	// be syncing its file: let it finish before the file is closed. Syncs that
	// start from now on sync the active segment, which is never detached.
	l.syncMu.Lock()
	l.syncMu.Unlock()
	for _, s := range gone {
		s.fileMu.Lock() // wait for readers that found it before it was detached
		s.f.Close()
		s.fileMu.Unlock()
		if err := removeIndexFiles(l.fs, l.dir, s.base); err != nil {
			return l.failLocked(err)
		}
		if err := l.releaseDetached(s); err != nil {
			return l.failLocked(err)
		}
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return l.failLocked(fmt.Errorf("segment: sync dir %s: %w", l.dir, err))
	}
	return nil
}

// deleteBelow removes closed segments wholly below offset (NextOffset <= offset),
// oldest first, never the active one, and returns how many (mu held). The
// directory is fsynced after each removal.
func (l *Log) deleteBelow(offset int64) (int, error) {
	n := 0
	for n < len(l.segs)-1 && l.segs[n].next <= offset {
		if err := l.dropSegment(l.segs[n]); err != nil {
			if n > 0 {
				l.segs = append(l.segs[:0], l.segs[n:]...)
			}
			return n, l.fail(err)
		}
		n++
	}
	if n > 0 {
		l.segs = append(l.segs[:0], l.segs[n:]...)
	}
	return n, nil
}

// DeleteLocalBelow deletes closed segments wholly below offset (NextOffset <=
// offset), never the active one, WITHOUT raising StartOffset: their data lives
// on in object storage (KIP-405 local retention). LocalStartOffset rises to the
// first remaining segment. The new local start is persisted before any file is
// removed (a crash part-way finishes the deletion on Open); the directory is
// fsynced. Returns how many segments were deleted.
func (l *Log) DeleteLocalBelow(offset int64) (int, error) {
	l.changeMu.Lock()
	defer l.changeMu.Unlock()
	// As in SetStartOffset: under changeMu the front of the log stays as read.
	l.mu.RLock()
	err := l.checkWritable()
	n := 0
	for err == nil && n < len(l.segs)-1 && l.segs[n].next <= offset {
		n++
	}
	var start, localStart, below int64
	if n > 0 {
		start, localStart, below = l.start, max(l.start, l.segs[n].base), l.segs[n-1].next
	}
	l.mu.RUnlock()
	if err != nil || n == 0 {
		return 0, err
	}
	if err := l.writeStart(start, localStart); err != nil {
		return 0, l.failLocked(err)
	}
	l.mu.Lock()
	if err := l.checkWritable(); err != nil { // as in SetStartOffset
		l.mu.Unlock()
		return 0, err
	}
	gone := l.detachBelow(below)
	l.checkInvariants()
	l.mu.Unlock()
	return len(gone), l.dropDetached(gone)
}

// Close makes everything durable, writes the indexes of the active segment and
// the clean-shutdown marker, and closes the files. A log with a sticky error is
// closed without the marker so the next Open recovers it.
func (l *Log) Close() error {
	err := l.close(true)
	l.cpDone.Wait() // it finds the log closed and ends
	return err
}

// close closes the log; unlock releases the directory lock too (Delete keeps
// it until the directory is gone).
func (l *Log) close(unlock bool) error {
	l.changeMu.Lock()
	defer l.changeMu.Unlock()
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	l.fmu.Lock()
	if l.timer != nil {
		l.timer.Stop()
	}
	l.fmu.Unlock()
	var err error
	if l.err == nil {
		err = l.shutdownCleanly()
	}
	for _, s := range l.segs {
		s.fileMu.Lock()
		if cerr := s.f.Close(); err == nil && cerr != nil {
			err = cerr
		}
		s.fileMu.Unlock()
	}
	l.fmu.Lock()
	if err == nil {
		l.durable = max(l.durable, l.end)
	}
	if l.ferr == nil {
		l.ferr = ErrClosed
	}
	l.fcond.Broadcast()
	l.fmu.Unlock()
	if unlock {
		l.unlockDir()
	}
	return err
}

func (l *Log) shutdownCleanly() error {
	s := l.active()
	// Trimmed before the marker: a cleanly closed log's files hold exactly
	// their data, so the next Open may trust them without a scan.
	if err := s.trimAndSync(); err != nil {
		return err
	}
	s.tidx.maybeAdd(s.maxTs, s.maxTsOffset, true)
	if err := s.writeIndexes(l.fs, l.dir, true); err != nil {
		return err
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return fmt.Errorf("segment: sync dir %s: %w", l.dir, err)
	}
	// Rolls since the checkpointer last ran left index files unsynced.
	if err := l.syncIndexFiles(l.unsyncedIndexes(s.base)); err != nil {
		return err
	}
	if err := l.setRecoveryPoint(s.base); err != nil {
		return err
	}
	var p [8]byte
	putInt64(p[:], l.end)
	return vfs.WriteFileAtomic(l.fs, filepath.Join(l.dir, cleanShutdownFile), encodeCheckpoint(kindCleanShutdown, p[:]))
}

// Delete closes the log and removes its directory (topic deletion).
func (l *Log) Delete() error {
	cerr := l.close(false)
	l.cpDone.Wait()
	defer func() {
		l.mu.Lock()
		l.unlockDir()
		l.mu.Unlock()
	}()
	if err := l.fs.RemoveAll(l.dir); err != nil {
		return fmt.Errorf("segment: remove %s: %w", l.dir, err)
	}
	if err := l.fs.SyncDir(filepath.Dir(l.dir)); err != nil {
		return fmt.Errorf("segment: sync dir %s: %w", filepath.Dir(l.dir), err)
	}
	if cerr != nil && !errors.Is(cerr, ErrClosed) {
		l.cfg.Logger.Warn("segment: close before delete failed", "dir", l.dir, "err", cerr)
	}
	return nil
}

// groupCommitYield: a goroutine about to sync on behalf of others first
// yields once (see WaitDurable). Tests and benchmarks may turn it off.
var groupCommitYield = true
