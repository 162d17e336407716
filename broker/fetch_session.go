package broker

import (
	"math/rand/v2"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Fetch sessions (KIP-227).
//
// A client (consumer or follower) opens a session with a full fetch (SessionEpoch 0) listing every
// partition it wants; the broker answers with a SessionID. Each later request carries that id and
// the next epoch, and lists only partitions whose fetch position or limits changed (plus
// ForgottenTopics to drop); the broker answers only partitions with something new: records, a
// changed high watermark or log start offset, or an error. SessionEpoch -1 closes the session
// (a sessionless full fetch). Requests older than v7 are always sessionless full fetches.
//
// Errors are whole-response: FETCH_SESSION_ID_NOT_FOUND for an unknown (or evicted) id,
// INVALID_FETCH_SESSION_EPOCH for a wrong epoch, FETCH_SESSION_TOPIC_ID_ERROR when a session that
// was opened with topic ids (v13+) is continued without them, or the other way round. The client
// then starts over with a full fetch.
//
// Cache: at most maxSlots sessions (max.incremental.fetch.session.cache.slots). When it is full, a
// new session may evict the least recently used session that has been idle for evictAfter
// (min.incremental.fetch.session.eviction.ms); a follower's (privileged) session may also evict a
// consumer's. If nothing can go, the fetch is answered sessionless (SessionID 0) and the client
// keeps sending full fetches, which is correct, only larger.
//
// Locking: cache.mu guards the session map; each session's mu guards its partitions and epoch.
// Lock order: cache.mu before session.mu. Neither is held while a fetch waits for data.

const (
	fetchSessionFinalEpoch   = -1
	fetchSessionInitialEpoch = 0
)

// fsKey identifies a partition within a session: by topic id for sessions that use them (v13+),
// by name otherwise.
type fsKey struct {
	topic     string
	topicID   [16]byte
	partition int32
}

// fsPartition is one partition a fetch reads, with the client's position and what the client was
// last told (for incremental responses).
type fsPartition struct {
	key                fsKey
	fetchOffset        int64
	maxBytes           int32
	currentLeaderEpoch int32
	lastFetchedEpoch   int32
	logStartOffset     int64 // the fetcher's own log start (followers); -1 for consumers

	sentHW       int64 // last high watermark sent; -1 forces the next response to include it
	sentLogStart int64
}

func (p *fsPartition) update(rp *kmsg.FetchRequestTopicPartition) {
	p.fetchOffset = rp.FetchOffset
	p.maxBytes = rp.PartitionMaxBytes
	p.currentLeaderEpoch = rp.CurrentLeaderEpoch
	p.lastFetchedEpoch = rp.LastFetchedEpoch
	p.logStartOffset = rp.LogStartOffset
}

type fetchSession struct {
	id         int32
	privileged bool
	topicIDs   bool

	mu       sync.Mutex
	epoch    int32 // the epoch the next request must carry
	parts    []*fsPartition
	index    map[fsKey]*fsPartition
	lastUsed time.Time
}

type fetchSessionCache struct {
	maxSlots   int
	evictAfter time.Duration
	now        func() time.Time

	mu       sync.Mutex
	sessions map[int32]*fetchSession
}

func newFetchSessionCache(maxSlots int, evictAfter time.Duration) *fetchSessionCache {
	return &fetchSessionCache{
		maxSlots:   maxSlots,
		evictAfter: evictAfter,
		now:        time.Now,
		sessions:   make(map[int32]*fetchSession),
	}
}

// fetchContext is what one Fetch request reads and how its response is filtered.
type fetchContext struct {
	errCode     int16 // whole-request session error; when set, nothing is read
	sessionID   int32 // SessionID for the response
	incremental bool
	sess        *fetchSession
	parts       []*fsPartition // to read, in order
	withData    map[*fsPartition]bool
}

func nextSessionEpoch(e int32) int32 {
	if e == 1<<31-1 {
		return 1
	}
	return e + 1
}

func keyOf(version int16, t *kmsg.FetchRequestTopic, partition int32) fsKey {
	if version >= 13 {
		return fsKey{topicID: t.TopicID, partition: partition}
	}
	return fsKey{topic: t.Topic, partition: partition}
}

func forgottenKey(version int16, t *kmsg.FetchRequestForgottenTopic, partition int32) fsKey {
	if version >= 13 {
		return fsKey{topicID: t.TopicID, partition: partition}
	}
	return fsKey{topic: t.Topic, partition: partition}
}

// requestPartitions lists a request's partitions in request order.
func requestPartitions(req *kmsg.FetchRequest) []*fsPartition {
	var out []*fsPartition
	for i := range req.Topics {
		t := &req.Topics[i]
		for j := range t.Partitions {
			rp := &t.Partitions[j]
			p := &fsPartition{key: keyOf(req.Version, t, rp.Partition), sentHW: -1, sentLogStart: -1}
			p.update(rp)
			out = append(out, p)
		}
	}
	return out
}

// begin resolves the session state of req. privileged is true for fetches from followers.
func (c *fetchSessionCache) begin(req *kmsg.FetchRequest, privileged bool) *fetchContext {
	if req.Version < 7 {
		return &fetchContext{parts: requestPartitions(req)}
	}
	now := c.now()
	switch req.SessionEpoch {
	case fetchSessionFinalEpoch:
		if req.SessionID != 0 {
			c.remove(req.SessionID)
		}
		return &fetchContext{parts: requestPartitions(req)}
	case fetchSessionInitialEpoch:
		if req.SessionID != 0 {
			c.remove(req.SessionID)
		}
		parts := requestPartitions(req)
		ctx := &fetchContext{parts: parts}
		s := &fetchSession{
			privileged: privileged,
			topicIDs:   req.Version >= 13,
			epoch:      1,
			index:      make(map[fsKey]*fsPartition, len(parts)),
			lastUsed:   now,
		}
		for _, p := range parts {
			if _, dup := s.index[p.key]; dup {
				continue
			}
			s.index[p.key] = p
			s.parts = append(s.parts, p)
		}
		if c.insert(s, now) {
			ctx.sessionID = s.id
			ctx.sess = s
		}
		return ctx
	}

	c.mu.Lock()
	s := c.sessions[req.SessionID]
	c.mu.Unlock()
	if s == nil {
		return &fetchContext{errCode: kerr.FetchSessionIDNotFound.Code}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.epoch != req.SessionEpoch {
		return &fetchContext{errCode: kerr.InvalidFetchSessionEpoch.Code}
	}
	if s.topicIDs != (req.Version >= 13) {
		return &fetchContext{errCode: kerr.FetchSessionTopicIDError.Code}
	}
	for i := range req.Topics {
		t := &req.Topics[i]
		for j := range t.Partitions {
			rp := &t.Partitions[j]
			k := keyOf(req.Version, t, rp.Partition)
			p := s.index[k]
			if p == nil {
				p = &fsPartition{key: k, sentHW: -1, sentLogStart: -1}
				s.index[k] = p
				s.parts = append(s.parts, p)
			}
			p.update(rp)
		}
	}
	for i := range req.ForgottenTopics {
		t := &req.ForgottenTopics[i]
		for _, part := range t.Partitions {
			k := forgottenKey(req.Version, t, part)
			if p := s.index[k]; p != nil {
				delete(s.index, k)
				for n, q := range s.parts {
					if q == p {
						s.parts = append(s.parts[:n], s.parts[n+1:]...)
						break
					}
				}
			}
		}
	}
	s.epoch = nextSessionEpoch(s.epoch)
	s.lastUsed = now
	return &fetchContext{
		sessionID:   s.id,
		incremental: true,
		sess:        s,
		parts:       append([]*fsPartition(nil), s.parts...),
	}
}

// include reports whether partition p belongs in the response, given what was read for it, and
// remembers what the client is told. Full fetches include every partition; incremental ones only
// partitions with records, a changed high watermark or log start offset, or an error (after an
// error the cached high watermark is reset so the partition is sent again once the error clears).
func (ctx *fetchContext) include(p *fsPartition, hw, logStart int64, errCode int16, recordBytes int) bool {
	if ctx.sess != nil {
		ctx.sess.mu.Lock()
		defer ctx.sess.mu.Unlock()
	}
	must := !ctx.incremental || recordBytes > 0
	if p.sentHW != hw {
		must = true
		p.sentHW = hw
	}
	if p.sentLogStart != logStart {
		must = true
		p.sentLogStart = logStart
	}
	if errCode != 0 {
		must = true
		p.sentHW = -1
	}
	if recordBytes > 0 && ctx.sess != nil {
		if ctx.withData == nil {
			ctx.withData = make(map[*fsPartition]bool)
		}
		ctx.withData[p] = true
	}
	return must
}

// done rotates partitions that returned records to the end of the session's order, so that a
// response cut short by MaxBytes serves the others first next time (KIP-227's fairness).
func (ctx *fetchContext) done() {
	s := ctx.sess
	if s == nil || len(ctx.withData) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.parts[:0:0]
	var moved []*fsPartition
	for _, p := range s.parts {
		if ctx.withData[p] {
			moved = append(moved, p)
		} else {
			kept = append(kept, p)
		}
	}
	s.parts = append(kept, moved...)
}

func (c *fetchSessionCache) remove(id int32) {
	c.mu.Lock()
	delete(c.sessions, id)
	c.mu.Unlock()
}

// insert gives s a fresh id and stores it, evicting if the cache is full. false: no room.
func (c *fetchSessionCache) insert(s *fetchSession, now time.Time) bool {
	if c.maxSlots <= 0 {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.sessions) >= c.maxSlots && !c.evictOneLocked(s.privileged, now) {
		return false
	}
	for {
		id := rand.Int32()
		if id == 0 {
			continue
		}
		if _, taken := c.sessions[id]; taken {
			continue
		}
		s.id = id
		c.sessions[id] = s
		return true
	}
}

func (c *fetchSessionCache) evictOneLocked(privileged bool, now time.Time) bool {
	var victim *fetchSession
	var victimUsed time.Time
	for _, s := range c.sessions {
		s.mu.Lock()
		used := s.lastUsed
		s.mu.Unlock()
		stale := now.Sub(used) >= c.evictAfter
		if !stale && !(privileged && !s.privileged) {
			continue
		}
		if victim == nil || used.Before(victimUsed) {
			victim, victimUsed = s, used
		}
	}
	if victim == nil {
		return false
	}
	delete(c.sessions, victim.id)
	return true
}

func (c *fetchSessionCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.sessions)
}
