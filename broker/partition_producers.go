package broker

import (
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Idempotent producer state, per partition, as Kafka's ProducerStateManager keeps it for
// non-transactional producers:
//
//   - per producer id: the current producer epoch and the metadata (sequence range and offset
//     range) of the last producerBatchWindow batches appended for it;
//   - a batch whose (epoch, firstSeq, lastSeq) equals one of those is a duplicate (a client retry):
//     it is answered with the original offsets and not appended again;
//   - otherwise, for the current epoch the batch must start at lastSeq+1 (with wrap-around at
//     MaxInt32) or it is OUT_OF_ORDER_SEQUENCE_NUMBER; a higher epoch must start at sequence 0;
//     a lower epoch is INVALID_PRODUCER_EPOCH (the producer was fenced by a newer instance);
//   - a producer id with no state at all (never seen, expired, or all its batches removed by
//     retention or DeleteRecords) is accepted at any sequence: since Kafka 2.5 (KIP-360) the broker
//     no longer answers UNKNOWN_PRODUCER_ID, the client resets its sequence on its own.
//
// The state is rebuilt after a restart by scanning batch headers of the log (rebuild), so it
// survives kill -9 exactly as far as the log does. The manager is not safe for concurrent use;
// the partition's append mutex guards it.

// producerBatchWindow is how many batches per producer Kafka remembers for duplicate detection
// (ProducerStateEntry.NUM_BATCHES_TO_RETAIN); it matches max.in.flight.requests.per.connection=5.
const producerBatchWindow = 5

// producerBatch is the metadata of one appended batch.
type producerBatch struct {
	firstSeq, lastSeq       int32
	firstOffset, lastOffset int64
	timestamp               int64 // the batch's max timestamp as stored (LogAppendTime if stamped)
}

type producerEntry struct {
	epoch      int16
	batches    []producerBatch // oldest first, at most producerBatchWindow
	lastUpdate time.Time       // broker time of the last append, for producer.id.expiration.ms
}

func (e *producerEntry) lastSeq() (int32, bool) {
	if len(e.batches) == 0 {
		return 0, false
	}
	return e.batches[len(e.batches)-1].lastSeq, true
}

func (e *producerEntry) lastOffset() int64 {
	if len(e.batches) == 0 {
		return -1
	}
	return e.batches[len(e.batches)-1].lastOffset
}

func (e *producerEntry) findDuplicate(epoch int16, firstSeq, lastSeq int32) (producerBatch, bool) {
	if epoch != e.epoch {
		return producerBatch{}, false
	}
	for _, b := range e.batches {
		if b.firstSeq == firstSeq && b.lastSeq == lastSeq {
			return b, true
		}
	}
	return producerBatch{}, false
}

func (e *producerEntry) add(epoch int16, b producerBatch, now time.Time) {
	if epoch != e.epoch {
		e.epoch = epoch
		e.batches = e.batches[:0]
	}
	if len(e.batches) == producerBatchWindow {
		copy(e.batches, e.batches[1:])
		e.batches = e.batches[:producerBatchWindow-1]
	}
	e.batches = append(e.batches, b)
	e.lastUpdate = now
}

// producerStateManager holds every producer's state for one partition.
type producerStateManager struct {
	producers map[int64]*producerEntry
}

func newProducerStateManager() *producerStateManager {
	return &producerStateManager{producers: make(map[int64]*producerEntry)}
}

// batchLastSeq is Kafka's DefaultRecordBatch.incrementSequence(baseSequence, lastOffsetDelta):
// sequences wrap from MaxInt32 to 0.
func batchLastSeq(baseSeq, lastOffsetDelta int32) int32 {
	if baseSeq > math.MaxInt32-lastOffsetDelta {
		return lastOffsetDelta - (math.MaxInt32 - baseSeq) - 1
	}
	return baseSeq + lastOffsetDelta
}

func inSequence(lastSeq, nextSeq int32) bool {
	return int64(nextSeq) == int64(lastSeq)+1 || (nextSeq == 0 && lastSeq == math.MaxInt32)
}

// producerCheck is the verdict for one incoming client batch.
type producerCheck struct {
	dup     bool          // a retry of an appended batch: answer with dupOf, append nothing
	dupOf   producerBatch // valid when dup
	errCode int16         // kerr code when the batch must be refused; 0 otherwise
}

// check validates one client batch of producer pid against the state in m overlaid by staged
// (batches of the same request already accepted but not yet appended; may be nil). It changes
// nothing.
func (m *producerStateManager) check(staged *producerStateManager, pid int64, epoch int16, firstSeq, lastSeq int32) producerCheck {
	if pid < 0 {
		return producerCheck{}
	}
	e := m.producers[pid]
	if staged != nil {
		if s, ok := staged.producers[pid]; ok {
			e = s
		}
	}
	if firstSeq < 0 {
		// Kafka's LogValidator: a batch with a producer id must carry a sequence.
		return producerCheck{errCode: kerr.InvalidRecord.Code}
	}
	if e == nil {
		// Unknown producer: accept any sequence (KIP-360, Kafka 2.5+).
		return producerCheck{}
	}
	if d, ok := e.findDuplicate(epoch, firstSeq, lastSeq); ok {
		return producerCheck{dup: true, dupOf: d}
	}
	if epoch < e.epoch {
		return producerCheck{errCode: kerr.InvalidProducerEpoch.Code}
	}
	if epoch > e.epoch {
		if firstSeq != 0 {
			return producerCheck{errCode: kerr.OutOfOrderSequenceNumber.Code}
		}
		return producerCheck{}
	}
	last, ok := e.lastSeq()
	if !ok {
		// State with no batches left (its batches were truncated away): any sequence.
		return producerCheck{}
	}
	if !inSequence(last, firstSeq) {
		return producerCheck{errCode: kerr.OutOfOrderSequenceNumber.Code}
	}
	return producerCheck{}
}

// stage records an accepted batch in staged (a scratch manager for one request), copying the
// entry from m on first touch so that m stays untouched until commit.
func (m *producerStateManager) stage(staged *producerStateManager, pid int64, epoch int16, b producerBatch, now time.Time) {
	s, ok := staged.producers[pid]
	if !ok {
		s = &producerEntry{epoch: epoch}
		if e, ok := m.producers[pid]; ok {
			s.epoch = e.epoch
			s.batches = append([]producerBatch(nil), e.batches...)
		}
		staged.producers[pid] = s
	}
	s.add(epoch, b, now)
}

// commit installs staged entries (after the append they describe succeeded).
func (m *producerStateManager) commit(staged *producerStateManager) {
	for pid, e := range staged.producers {
		m.producers[pid] = e
	}
}

// apply records a batch found in the log (rebuild after restart, or a replicated append):
// no checks, the log is the truth.
func (m *producerStateManager) apply(pid int64, epoch int16, b producerBatch, now time.Time) {
	if pid < 0 {
		return
	}
	e, ok := m.producers[pid]
	if !ok {
		e = &producerEntry{epoch: epoch}
		m.producers[pid] = e
	}
	e.add(epoch, b, now)
}

// truncateHead drops producers whose last batch lies wholly below the new log start offset
// (retention, DeleteRecords), as Kafka does: such a producer becomes unknown again.
func (m *producerStateManager) truncateHead(logStart int64) {
	for pid, e := range m.producers {
		if e.lastOffset() < logStart {
			delete(m.producers, pid)
		}
	}
}

// expire drops producers idle for at least maxIdle (producer.id.expiration.ms).
func (m *producerStateManager) expire(now time.Time, maxIdle time.Duration) int {
	n := 0
	for pid, e := range m.producers {
		if now.Sub(e.lastUpdate) >= maxIdle {
			delete(m.producers, pid)
			n++
		}
	}
	return n
}

func (m *producerStateManager) len() int { return len(m.producers) }
