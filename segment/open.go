package segment

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/sediment-io/sediment/segment/vfs"
)

// Open opens or creates the log in dir, recovering it after an unclean shutdown
// (see doc.go, "Recovery").
func Open(dir string, cfg Config) (*Log, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.fill()
	dir = filepath.Clean(dir)
	l := &Log{dir: dir, cfg: cfg, fs: cfg.FS}
	if s, ok := cfg.FS.(interface{ Session() vfs.FS }); ok {
		// A simulated crash ends this log's process: its background work
		// (the recovery-point checkpoint) must not outlive it.
		l.fs = s.Session()
	}
	l.fcond.L = &l.fmu
	if err := l.fs.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("segment: create %s: %w", dir, err)
	}
	if err := l.fs.SyncDir(filepath.Dir(dir)); err != nil {
		return nil, fmt.Errorf("segment: sync dir %s: %w", filepath.Dir(dir), err)
	}
	if err := l.lockDir(); err != nil {
		return nil, err
	}
	if err := l.load(); err != nil {
		for _, s := range l.segs {
			s.f.Close()
		}
		l.unlockDir()
		return nil, err
	}
	return l, nil
}

// lockDir takes the directory's lock file so that no second Log (in this or
// another process) opens the same directory: two writers would interleave
// appends and each delete the other's files. File systems without locking
// (not a vfs.Locker) are not protected.
func (l *Log) lockDir() error {
	lk, ok := l.fs.(vfs.Locker)
	if !ok {
		return nil
	}
	path := filepath.Join(l.dir, lockFile)
	c, err := lk.Lock(path)
	if err != nil {
		if errors.Is(err, vfs.ErrLocked) {
			return fmt.Errorf("%w: %s is already open (lock file %s held by another Log in this or another process)", ErrLocked, l.dir, path)
		}
		return fmt.Errorf("segment: lock %s: %w", path, err)
	}
	l.lock = c
	return nil
}

func (l *Log) unlockDir() {
	if l.lock != nil {
		l.lock.Close()
		l.lock = nil
	}
}

// parseSegmentName returns the base offset and suffix of a segment file name.
func parseSegmentName(name string) (int64, string, bool) {
	for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
		if strings.HasSuffix(name, suf) && len(name) == nameDigits+len(suf) {
			base, err := strconv.ParseInt(name[:nameDigits], 10, 64)
			if err != nil || base < 0 {
				return 0, "", false
			}
			return base, suf, true
		}
	}
	return 0, "", false
}

func (l *Log) load() error {
	ents, err := l.fs.ReadDir(l.dir)
	if err != nil {
		return fmt.Errorf("segment: list %s: %w", l.dir, err)
	}
	var bases []int64
	var poolNames []string
	indexFiles := map[int64][]string{}
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() {
			continue
		}
		if strings.HasSuffix(name, ".tmp") {
			// A checkpoint write that did not reach its rename.
			if err := l.fs.Remove(filepath.Join(l.dir, name)); err != nil && !isNotExist(err) {
				return fmt.Errorf("segment: remove %s: %w", name, err)
			}
			continue
		}
		if strings.HasSuffix(name, recycleSuffix) {
			poolNames = append(poolNames, name) // adopted or removed at the end
			continue
		}
		base, suf, ok := parseSegmentName(name)
		if !ok {
			continue
		}
		if suf == logSuffix {
			bases = append(bases, base)
		} else {
			indexFiles[base] = append(indexFiles[base], name)
		}
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })
	have := map[int64]bool{}
	for _, b := range bases {
		have[b] = true
	}
	for b, names := range indexFiles {
		if !have[b] {
			for _, n := range names { // indexes of a segment whose .log is gone
				if err := l.fs.Remove(filepath.Join(l.dir, n)); err != nil && !isNotExist(err) {
					return fmt.Errorf("segment: remove %s: %w", n, err)
				}
			}
		}
	}

	cleanEnd, clean := l.readCleanMarker()
	rp, ok, err := readOffsetCheckpoint(l.fs, l.dir, recoveryPointFile, kindRecoveryPoint)
	if err != nil {
		l.cfg.Logger.Warn("segment: unreadable recovery point; scanning every segment", "dir", l.dir, "err", err)
		rp, ok = 0, false
	}
	if !ok {
		rp = 0
	}
	logStart, localStart, haveStart, err := readStartCheckpoint(l.fs, l.dir)
	if err != nil {
		return fmt.Errorf("segment: %w", err)
	}
	epochsBad := false
	if b, err := vfs.ReadFile(l.fs, filepath.Join(l.dir, leaderEpochFile)); err == nil {
		if l.epochs, err = decodeEpochs(filepath.Join(l.dir, leaderEpochFile), b); err != nil {
			l.cfg.Logger.Warn("segment: leader-epoch checkpoint unreadable; rebuilding from batch headers", "dir", l.dir, "err", err)
			l.epochs, epochsBad = nil, true
		}
	} else if !isNotExist(err) {
		return fmt.Errorf("segment: read leader epochs in %s: %w", l.dir, err)
	} else {
		epochsBad = true // missing: rebuilt below if the log has data
	}

	if len(bases) == 0 {
		base := int64(0)
		if haveStart {
			base = localStart
		}
		f, path, err := openSegmentFile(l.fs, l.dir, base, true)
		if err != nil {
			return err
		}
		l.segs = []*segment{newSegment(f, path, base, &l.cfg)}
		if err := l.fs.SyncDir(l.dir); err != nil {
			return fmt.Errorf("segment: sync dir %s: %w", l.dir, err)
		}
		clean = true
	} else {
		for _, b := range bases {
			f, path, err := openSegmentFile(l.fs, l.dir, b, false)
			if err != nil {
				return err
			}
			l.segs = append(l.segs, newSegment(f, path, b, &l.cfg))
		}
		recovered, err := l.loadSegments(clean, rp)
		if err != nil {
			return err
		}
		if clean && l.active().next != cleanEnd {
			l.cfg.Logger.Warn("segment: clean-shutdown marker disagrees with the files; recovering", "dir", l.dir, "marker", cleanEnd, "files", l.active().next)
			clean = false
			if recovered, err = l.loadSegments(false, rp); err != nil {
				return err
			}
		}
		if err := l.finishRecovery(recovered); err != nil {
			return err
		}
	}
	l.end = l.active().next
	l.start = l.segs[0].base
	if haveStart && (logStart > l.start || localStart > logStart) {
		// A version-2 checkpoint (localStart > logStart) keeps the log start
		// below the first local segment: that history is in object storage.
		l.start = logStart
	}
	if !haveStart {
		localStart = l.start
	}
	if epochsBad && l.end > l.start {
		l.rebuildEpochs()
	}
	if localStart > l.end {
		// The (local) start offset was raised past data that a crash then lost
		// (possible only without FlushAlways), or a crash interrupted
		// ResetLocal after its checkpoint: restart empty there, as Kafka.
		if err := l.resetLocked(localStart, l.start); err != nil {
			return err
		}
	}
	// Segments wholly below the local start: a crash interrupted SetStartOffset
	// or DeleteLocalBelow after their checkpoint was written.
	if _, err := l.deleteBelow(localStart); err != nil {
		return err
	}
	if err := l.truncateEpochsFromEnd(l.end); err != nil {
		return err
	}
	if err := l.truncateEpochsFromStart(l.start, true); err != nil {
		return err
	}
	if !clean || l.recoveryPoint != l.active().base {
		if err := l.setRecoveryPoint(l.active().base); err != nil {
			return err
		}
	} else {
		l.recoveryPoint = rp
	}
	if err := l.adoptPool(poolNames); err != nil {
		return err
	}
	// From here on a crash must be treated as unclean.
	if err := l.fs.Remove(filepath.Join(l.dir, cleanShutdownFile)); err != nil && !isNotExist(err) {
		return fmt.Errorf("segment: remove clean-shutdown marker in %s: %w", l.dir, err)
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return fmt.Errorf("segment: sync dir %s: %w", l.dir, err)
	}
	l.durable = l.end
	l.checkInvariants()
	return l.err
}

func (l *Log) readCleanMarker() (int64, bool) {
	path := filepath.Join(l.dir, cleanShutdownFile)
	b, err := vfs.ReadFile(l.fs, path)
	if err != nil {
		return 0, false
	}
	p, err := decodeCheckpoint(path, b, kindCleanShutdown)
	if err != nil || len(p) != 8 {
		l.cfg.Logger.Warn("segment: ignoring bad clean-shutdown marker", "file", path, "err", err)
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(p)), true
}

// loadSegments brings every opened segment to a consistent state. Trusted
// segments (all on a clean start; those below the recovery point otherwise, never
// the last) load their index files; a bad index, and every untrusted segment, is
// rebuilt by a validating scan, and the first invalid byte ends the log: the rest
// of that file and all later segments are removed. It returns the segments that
// were scanned.
func (l *Log) loadSegments(clean bool, rp int64) ([]*segment, error) {
	var recovered []*segment
	prevNext := int64(-1)
	for i := 0; i < len(l.segs); i++ {
		s := l.segs[i]
		st, err := s.f.Stat()
		if err != nil {
			return nil, fmt.Errorf("segment: stat %s: %w", s.path, err)
		}
		s.size = st.Size()
		last := i == len(l.segs)-1
		if prevNext >= 0 && s.base < prevNext {
			return nil, fmt.Errorf("%w: %s: segment base %d overlaps the previous segment, which ends at %d", ErrCorrupt, s.path, s.base, prevNext)
		}
		trusted := clean || (s.base < rp && !last)
		if trusted {
			if err := s.loadIndexes(l.fs, l.dir, &l.cfg, last); err != nil {
				l.cfg.Logger.Warn("segment: rebuilding indexes", "file", s.path, "err", err)
				trusted = false
			}
		}
		if !trusted {
			truncated, err := s.recover(prevNext, &l.cfg)
			if err != nil {
				return nil, err
			}
			recovered = append(recovered, s)
			if truncated {
				for j := len(l.segs) - 1; j > i; j-- {
					l.cfg.Logger.Warn("segment: removing segment after a corrupt one", "file", l.segs[j].path)
					if err := l.dropSegment(l.segs[j]); err != nil {
						return nil, err
					}
					l.segs = l.segs[:j]
				}
			}
		}
		prevNext = s.next
	}
	for i, s := range l.segs {
		s.closed = i < len(l.segs)-1
	}
	return recovered, nil
}

// finishRecovery makes scanned segments durable (their bytes may have come from
// the page cache of a crashed process) and writes the rebuilt indexes of closed ones.
func (l *Log) finishRecovery(recovered []*segment) error {
	if len(recovered) == 0 {
		return nil
	}
	for _, s := range recovered {
		if err := s.f.Datasync(); err != nil {
			return fmt.Errorf("segment: sync %s: %w", s.path, err)
		}
		if s.closed {
			s.tidx.maybeAdd(s.maxTs, s.maxTsOffset, true)
			if err := s.writeIndexes(l.fs, l.dir, true); err != nil {
				return err
			}
			l.unloadIndexes(s)
		}
	}
	return l.fs.SyncDir(l.dir)
}

// rebuildEpochs reconstructs the leader-epoch cache from batch headers.
func (l *Log) rebuildEpochs() {
	var hb [HeaderSize]byte
	l.epochs = nil
	for _, s := range l.segs {
		for pos := int64(0); pos < s.size; {
			h, err := s.readHeader(pos, hb[:])
			if err != nil {
				break
			}
			if e := h.PartitionLeaderEpoch(); e >= 0 {
				if n := len(l.epochs); n == 0 || e > l.epochs[n-1].epoch {
					l.epochs = append(l.epochs, epochEntry{epoch: e, start: h.BaseOffset()})
				}
			}
			pos += int64(h.Size())
		}
	}
	if len(l.epochs) > 0 {
		if err := l.persistEpochs(); err != nil {
			l.cfg.Logger.Warn("segment: could not persist rebuilt leader epochs", "dir", l.dir, "err", err)
		}
	}
}
