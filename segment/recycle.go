package segment

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sediment-io/sediment/segment/vfs"
)

// Segment file recycling (see doc.go, "Segment file recycling"): a deleted
// segment's .log file is renamed into a small pool in the log directory instead
// of being unlinked, and the next new segment renames it to its own name and
// overwrites it from byte 0. Overwriting blocks a file already owns makes each
// fdatasync a plain data flush instead of a journal commit.

// recycleSuffix names pool files: %020d.recycle, the number being the file's
// bound (every batch the file has ever held has offsets below it). It is not a
// segment suffix, so directory scans never take a pool file for a segment.
const recycleSuffix = ".recycle"

// pooled is one file in the recycle pool.
type pooled struct {
	bound int64 // every offset the file ever held is below bound
	path  string
	since time.Time // when it entered the pool (Config.Now; adopted files: at Open)
	size  int64     // bytes on disk
}

func poolPath(dir string, bound int64) string { return segPath(dir, bound, recycleSuffix) }

// parsePoolName returns the bound of a pool file name.
func parsePoolName(name string) (int64, bool) {
	if !strings.HasSuffix(name, recycleSuffix) || len(name) != nameDigits+len(recycleSuffix) {
		return 0, false
	}
	b, err := strconv.ParseInt(name[:nameDigits], 10, 64)
	if err != nil || b < 0 {
		return 0, false
	}
	return b, true
}

// recycleBound is the bound a segment's file carries into the pool: every batch
// ever written to the file has an offset below it. The file's earlier lives
// (if it came from the pool) held offsets below its base (the reuse rule), so
// the highest next offset this segment reached bounds all of them.
func (s *segment) recycleBound() int64 { return max(s.maxNext, s.next) }

// releaseLogFile disposes of a dropped segment's .log file (closed, its index
// files already removed; mu held): into the pool when recycling is on and
// there is room (or it beats a pooled file with a higher bound), removed
// otherwise. The caller fsyncs the directory.
func (l *Log) releaseLogFile(s *segment) error {
	keep, evict := l.planRelease(s)
	pooled, err := l.releaseFile(s, keep, evict)
	if pooled {
		l.addPooled(s)
	}
	return err
}

// releaseDetached is releaseLogFile for a segment detached from the log, with
// mu held only to decide and to record: the unlink and the rename run without
// it (the caller holds changeMu, so no other release runs meanwhile; rolls
// only take files out of the pool).
func (l *Log) releaseDetached(s *segment) error {
	l.mu.Lock()
	keep, evict := l.planRelease(s)
	l.mu.Unlock()
	pooled, err := l.releaseFile(s, keep, evict)
	if pooled {
		l.mu.Lock()
		l.addPooled(s)
		l.mu.Unlock()
	}
	return err
}

// planRelease decides where a dropped segment's .log file goes (mu held):
// into the pool (keep), or removed. When the pool is full and the file has a
// lower bound than the pool's last file, that file leaves the pool here and
// its path is returned to be removed (evict).
func (l *Log) planRelease(s *segment) (keep bool, evict string) {
	if !l.pooling || l.cfg.RecycleSegments <= 0 || l.pins[s.base] > 0 {
		// Pinned: someone reads the file by its path (PinSegment); unlinked, its open
		// descriptors keep the segment's bytes, where a reuse would overwrite them.
		return false, ""
	}
	bound := s.recycleBound()
	for _, p := range l.pool {
		if p.bound == bound { // name taken (possible after truncations): keep the pooled one
			return false, ""
		}
	}
	if len(l.pool) >= l.cfg.RecycleSegments {
		// Full: keep the files with the lowest bounds, which new segments (whose
		// bases only grow until a truncation) can use soonest.
		last := l.pool[len(l.pool)-1]
		if last.bound < bound {
			return false, ""
		}
		l.pool = l.pool[:len(l.pool)-1]
		return true, last.path
	}
	return true, ""
}

// releaseFile carries out planRelease's decision on the file system: removes
// evict, then renames s's .log file to its pool name (keep) or removes it. It
// reports whether the file is now in the pool, for addPooled to record.
func (l *Log) releaseFile(s *segment, keep bool, evict string) (pooled bool, err error) {
	if evict != "" {
		if err := removeIfExists(l.fs, evict); err != nil {
			return false, err
		}
	}
	path := segPath(l.dir, s.base, logSuffix)
	if !keep {
		return false, removeIfExists(l.fs, path)
	}
	to := poolPath(l.dir, s.recycleBound())
	if err := l.fs.Rename(path, to); err != nil {
		if isNotExist(err) {
			return false, nil // already gone (a crash between removal steps left no .log)
		}
		return false, fmt.Errorf("segment: recycle %s: %w", path, err)
	}
	return true, nil
}

// addPooled records s's renamed .log file in the pool (mu held).
func (l *Log) addPooled(s *segment) {
	bound := s.recycleBound()
	l.pool = append(l.pool, pooled{bound: bound, path: poolPath(l.dir, bound), since: l.cfg.Now(), size: max(s.size, s.fileSize)})
	sort.Slice(l.pool, func(i, j int) bool { return l.pool[i].bound < l.pool[j].bound })
}

// createSegmentFile creates the .log file of a new segment at base (mu held):
// a pool file whose bound is at most base, renamed to the segment's name, or
// else a new empty file. Pool files with a higher bound could hold a batch
// whose offset a recovery scan of the new segment would expect, so they are
// removed instead of reused. Returns the file's size (the stale bytes beyond
// the segment's data). The caller fsyncs the directory before writing to it.
func (l *Log) createSegmentFile(base int64) (vfs.File, string, int64, error) {
	// The pool is sorted by bound: the unusable files are its tail.
	for n := len(l.pool); n > 0 && l.pool[n-1].bound > base; n-- {
		if err := removeIfExists(l.fs, l.pool[n-1].path); err != nil {
			return nil, "", 0, err
		}
		l.pool = l.pool[:n-1]
	}
	if len(l.pool) == 0 {
		f, path, err := openSegmentFile(l.fs, l.dir, base, true)
		return f, path, 0, err
	}
	p := l.pool[len(l.pool)-1]
	l.pool = l.pool[:len(l.pool)-1]
	l.reused++
	path := segPath(l.dir, base, logSuffix)
	if _, err := l.fs.Stat(path); err == nil {
		return nil, path, 0, fmt.Errorf("segment: reuse %s as %s: %w", p.path, path, os.ErrExist)
	} else if !isNotExist(err) {
		return nil, path, 0, fmt.Errorf("segment: stat %s: %w", path, err)
	}
	if err := l.fs.Rename(p.path, path); err != nil {
		return nil, path, 0, fmt.Errorf("segment: reuse %s as %s: %w", p.path, path, err)
	}
	f, _, err := openSegmentFile(l.fs, l.dir, base, false)
	if err != nil {
		return nil, path, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, path, 0, fmt.Errorf("segment: stat %s: %w", path, err)
	}
	return f, path, st.Size(), nil
}

// newActiveSegment creates the file of a new segment at base and returns the
// segment (mu held; the caller fsyncs the directory before writing).
func (l *Log) newActiveSegment(base int64) (*segment, error) {
	f, path, size, err := l.createSegmentFile(base)
	if err != nil {
		return nil, err
	}
	s := newSegment(f, path, base, &l.cfg)
	s.fileSize = size
	return s, nil
}

// trimAndSync cuts a reused file's stale bytes after the segment's data and makes the
// segment's data and size durable (mu held). Rolls and Close call it, so a
// closed segment's file, and every file of a cleanly closed log, is exactly its
// data (recovery's trusted path and tiering's upload rely on that).
func (s *segment) trimAndSync() error {
	if s.fileSize > s.size {
		if err := s.f.Truncate(s.size); err != nil {
			return fmt.Errorf("segment: trim %s to %d bytes: %w", s.path, s.size, err)
		}
	}
	if err := s.f.Datasync(); err != nil {
		return fmt.Errorf("segment: sync %s: %w", s.path, err)
	}
	s.fileSize = s.size
	return nil
}

// adoptPool lists pool files left by the previous run at the end of Open:
// up to RecycleSegments of them (lowest bounds first) become the pool, the
// rest, and all of them when recycling is off, are removed. Their bound is in
// their name and nothing writes to a pooled file, so adopting one is as safe
// as reusing it before the restart. The caller fsyncs the directory.
func (l *Log) adoptPool(names []string) error {
	var found []pooled
	for _, n := range names {
		path := filepath.Join(l.dir, n)
		b, ok := parsePoolName(n)
		if !ok {
			if err := removeIfExists(l.fs, path); err != nil {
				return err
			}
			continue
		}
		st, err := l.fs.Stat(path)
		if err != nil { // unusable: treated as a bad name
			if err := removeIfExists(l.fs, path); err != nil {
				return err
			}
			continue
		}
		// The file's time in the pool before the restart is unknown; it starts
		// waiting now, so an expiry comes at the earliest one idle period after Open.
		found = append(found, pooled{bound: b, path: path, since: l.cfg.Now(), size: st.Size()})
	}
	sort.Slice(found, func(i, j int) bool { return found[i].bound < found[j].bound })
	keep := min(len(found), max(l.cfg.RecycleSegments, 0))
	for _, p := range found[keep:] {
		if err := removeIfExists(l.fs, p.path); err != nil {
			return err
		}
	}
	l.pool = append(l.pool[:0], found[:keep]...)
	l.pooling = true
	return nil
}

// ExpireRecyclePool removes the pool files that have waited longer than
// maxIdle for a new segment to reuse them, and returns how many it removed.
// The pool trades disk for faster durable appends, and only a log that keeps
// rolling gains from it: a partition that went quiet would otherwise keep up to
// RecycleSegments segments' worth of dead bytes on disk forever. The broker
// calls it from its retention check (log.segment.recycle.ms). maxIdle <= 0
// empties the pool.
//
// No directory fsync follows the removals: should a crash undo one, Open
// finds the pool file again and adopts or removes it (adoptPool), which is as
// safe as before. A file that cannot be removed stays in the pool (nothing
// has written to it, so it is still a valid pool file) and the first such
// error is returned after the others were tried.
func (l *Log) ExpireRecyclePool(maxIdle time.Duration) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, ErrClosed
	}
	now := l.cfg.Now()
	var firstErr error
	removed := 0
	kept := l.pool[:0]
	for _, p := range l.pool {
		if maxIdle > 0 && now.Sub(p.since) <= maxIdle {
			kept = append(kept, p)
			continue
		}
		if err := l.fs.Remove(p.path); err != nil && !isNotExist(err) {
			kept = append(kept, p)
			if firstErr == nil {
				firstErr = fmt.Errorf("segment: expire recycle pool file: %w", err)
			}
			continue
		}
		removed++
	}
	clear(l.pool[len(kept):])
	l.pool = kept
	l.checkInvariants()
	return removed, firstErr
}

// RecyclePool returns how many deleted segment files the log keeps for reuse
// (the recycle pool; none when recycling is off) and their bytes on disk: disk
// the log uses beyond its segments.
func (l *Log) RecyclePool() (files int, bytes int64) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	for _, p := range l.pool {
		bytes += p.size
	}
	return len(l.pool), bytes
}

func removeIfExists(fsys vfs.FS, path string) error {
	if err := fsys.Remove(path); err != nil && !isNotExist(err) {
		return fmt.Errorf("segment: remove: %w", err)
	}
	return nil
}

// PinSegment keeps the .log file of the segment starting at base out of the recycle pool until
// release is called. A reader that opens the file by its path (SegmentInfo.Path: tiering's
// archiver streams a closed segment into an object store for seconds) must pin it first: should
// retention or DeleteRecords drop the segment meanwhile, its file is then unlinked, as without
// recycling, so the reader's open descriptor keeps the old bytes — a reused file would be
// overwritten by a new segment under the reader. ok is false when no segment starts at base.
// release is idempotent.
func (l *Log) PinSegment(base int64) (release func(), ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !slices.ContainsFunc(l.segs, func(s *segment) bool { return s.base == base }) {
		return func() {}, false
	}
	if l.pins == nil {
		l.pins = map[int64]int{}
	}
	l.pins[base]++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			if l.pins[base]--; l.pins[base] <= 0 {
				delete(l.pins, base)
			}
		})
	}, true
}
