package segment

// Closed segments' indexes are loaded on first use and at most maxLoadedClosed
// of them stay in memory per log (least recently used evicted), so memory does
// not grow with retention: a long-retention log with thousands of segments keeps
// only the active segment's indexes and those of the few segments being read.

const maxLoadedClosed = 4

// lookupPos returns the position of the index entry for the largest offset <= offset.
func (l *Log) lookupPos(s *segment, offset int64) int64 {
	if !s.closed {
		_, p := s.idx.lookup(offset)
		return p
	}
	l.idxMu.Lock()
	defer l.idxMu.Unlock()
	l.ensureIndexes(s)
	_, p := s.idx.lookup(offset)
	return p
}

// lookupTime returns the time-index offset for the largest timestamp <= ts.
func (l *Log) lookupTime(s *segment, ts int64) int64 {
	if !s.closed {
		return s.tidx.lookup(ts)
	}
	l.idxMu.Lock()
	defer l.idxMu.Unlock()
	l.ensureIndexes(s)
	return s.tidx.lookup(ts)
}

// ensureIndexes loads a closed segment's index files (idxMu held, mu held for
// reading at least). Files failing their checks are rebuilt from batch headers
// in memory; a segment whose headers are unreadable gets empty indexes (lookups
// then walk from the start and report the bad batch).
func (l *Log) ensureIndexes(s *segment) {
	l.useClock++
	s.lastUse = l.useClock
	if s.loaded {
		return
	}
	ib, err := readIndexFile(l.fs, segPath(l.dir, s.base, indexSuffix), indexEntrySize, true)
	if err == nil {
		var tb []byte
		if tb, err = readIndexFile(l.fs, segPath(l.dir, s.base, timeIndexSuffix), timeIndexEntrySize, true); err == nil {
			var idx offsetIndex
			var tidx timeIndex
			if idx, err = decodeOffsetIndex(ib, s.base, l.cfg.SegmentIndexBytes/indexEntrySize, s.size); err == nil {
				if tidx, err = decodeTimeIndex(tb, s.base, l.cfg.SegmentIndexBytes/timeIndexEntrySize, s.next); err == nil {
					s.idx, s.tidx = idx, tidx
				}
			}
		}
	}
	if err != nil {
		l.cfg.Logger.Warn("segment: index unusable; rebuilding it in memory", "file", s.path, "err", err)
		if rerr := s.rebuildIndexes(&l.cfg); rerr != nil {
			l.cfg.Logger.Warn("segment: cannot rebuild index", "file", s.path, "err", rerr)
			s.idx.entries, s.tidx.entries = nil, nil
		}
	}
	s.loaded = true
	l.evictIndexes(s)
}

// evictIndexes unloads the least recently used closed segments' indexes beyond
// maxLoadedClosed, never keep's.
func (l *Log) evictIndexes(keep *segment) {
	for {
		n := 0
		var lru *segment
		for _, o := range l.segs {
			if o.closed && o.loaded {
				n++
				if o != keep && (lru == nil || o.lastUse < lru.lastUse) {
					lru = o
				}
			}
		}
		if n <= maxLoadedClosed || lru == nil {
			return
		}
		l.unloadIndexes(lru)
	}
}

// unloadIndexes drops a closed segment's in-memory indexes (idxMu or mu held for writing).
func (l *Log) unloadIndexes(s *segment) {
	s.idx.entries, s.tidx.entries = nil, nil
	s.loaded = false
}
