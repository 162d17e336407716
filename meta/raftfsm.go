package meta

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// dedupSize is how many recent request ids the state machine remembers. A proposal is retried within
// seconds of the original, so thousands of entries cover any realistic retry window.
const dedupSize = 8192

// fsm adapts the builder to raft.BatchingFSM. Apply, ApplyBatch, Snapshot and Restore are called by
// raft's single FSM goroutine; the dedup table is touched only there. The current State is published
// through an atomic pointer for everyone else.
type fsm struct {
	state      atomic.Pointer[State]
	controller *atomic.Int32
	applied    atomic.Uint64
	restores   atomic.Int64

	dedup     map[reqID]applyResult
	dedupRing []reqID // FIFO of the ids in dedup
	dedupNext int

	// after is called after each batch, on the FSM goroutine, with the new state, the events and the
	// brokers heard from. It must not block for long.
	after func(st *State, evs []Event, heard []int32)
}

func newFSM(controller *atomic.Int32) *fsm {
	f := &fsm{controller: controller, dedup: map[reqID]applyResult{}, dedupRing: make([]reqID, dedupSize)}
	s := emptyState()
	s.controller = controller
	f.state.Store(s)
	return f
}

func (f *fsm) Apply(l *raft.Log) any { return f.ApplyBatch([]*raft.Log{l})[0] }

func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	b := newBuilder(f.state.Load())
	var last uint64
	for i, l := range logs {
		last = l.Index
		if l.Type != raft.LogCommand {
			continue
		}
		out[i] = f.applyOne(b, l.Data, l.Index)
	}
	if last == 0 {
		return out
	}
	b.s.index = last
	f.state.Store(b.s)
	f.applied.Store(last)
	if f.after != nil {
		f.after(b.s, b.events, b.heard)
	}
	return out
}

func (f *fsm) applyOne(b *builder, data []byte, idx uint64) *applyResult {
	c, err := decodeCommand(data)
	if err != nil {
		code := codeOf(ErrCorruptCommand)
		if errors.Is(err, ErrUnsupportedVersion) {
			code = codeOf(ErrUnsupportedVersion)
		}
		return &applyResult{Index: idx, Code: code, Reason: err.Error()}
	}
	if m, ok := c.body.(*cmdMulti); ok {
		r := f.applyMulti(b, m, idx)
		r.Index = idx
		return r
	}
	if c.req != (reqID{}) {
		if r, ok := f.dedup[c.req]; ok {
			r.Index = idx
			return &r // a retried proposal that was already applied: same answer, no second effect
		}
	}
	r := b.apply(c, idx)
	r.Index = idx
	if c.req != (reqID{}) {
		f.remember(c.req, *r)
	}
	return r
}

func (f *fsm) remember(id reqID, r applyResult) {
	old := f.dedupRing[f.dedupNext]
	if old != (reqID{}) {
		delete(f.dedup, old)
	}
	f.dedupRing[f.dedupNext] = id
	f.dedupNext = (f.dedupNext + 1) % len(f.dedupRing)
	f.dedup[id] = r
}

// ---- snapshots ----
//
// Snapshot file:
//
//	+-------------+---------+-------------+-------------+--------------------------+
//	| magic "SDMS"| version | body length | CRC-32C     | body: JSON snapshotBody  |
//	| 4 bytes     | 1 byte  | uint64 BE   | of the body |                          |
//	+-------------+---------+-------------+-------------+--------------------------+

var snapMagic = [4]byte{'S', 'D', 'M', 'S'}

const (
	snapVersion    = 1
	snapHeaderSize = 4 + 1 + 8 + 4
	maxSnapshot    = 1 << 34
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type snapshotBody struct {
	Index uint64
	State *stateFile
	Dedup []dedupEntry // oldest first
}

type dedupEntry struct {
	ID     reqID
	Result applyResult
}

type fsmSnapshot struct {
	st    *State
	dedup []dedupEntry
}

// Snapshot captures the current immutable State (no copy needed) and the dedup table.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	snap := &fsmSnapshot{st: f.state.Load()}
	for i := 0; i < len(f.dedupRing); i++ {
		id := f.dedupRing[(f.dedupNext+i)%len(f.dedupRing)]
		if id != (reqID{}) {
			snap.dedup = append(snap.dedup, dedupEntry{id, f.dedup[id]})
		}
	}
	return snap, nil
}

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	err := writeSnapshot(sink, s.st, s.dedup)
	if err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}

func writeSnapshot(w io.Writer, st *State, dedup []dedupEntry) error {
	body, err := json.Marshal(snapshotBody{Index: st.index, State: st.file(), Dedup: dedup})
	if err != nil {
		return err
	}
	var hdr [snapHeaderSize]byte
	copy(hdr[:4], snapMagic[:])
	hdr[4] = snapVersion
	binary.BigEndian.PutUint64(hdr[5:13], uint64(len(body)))
	binary.BigEndian.PutUint32(hdr[13:17], crc32.Checksum(body, castagnoli))
	bw := bufio.NewWriter(w)
	if _, err := bw.Write(hdr[:]); err != nil {
		return err
	}
	if _, err := bw.Write(body); err != nil {
		return err
	}
	return bw.Flush()
}

func readSnapshot(r io.Reader) (*snapshotBody, *State, error) {
	var hdr [snapHeaderSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, nil, fmt.Errorf("meta: snapshot header: %w", err)
	}
	if !bytes.Equal(hdr[:4], snapMagic[:]) {
		return nil, nil, fmt.Errorf("meta: snapshot: bad magic %q", hdr[:4])
	}
	if hdr[4] == 0 || hdr[4] > snapVersion {
		return nil, nil, fmt.Errorf("meta: snapshot version %d (this build reads 1..%d)", hdr[4], snapVersion)
	}
	n := binary.BigEndian.Uint64(hdr[5:13])
	if n > maxSnapshot {
		return nil, nil, fmt.Errorf("meta: snapshot body of %d bytes exceeds the limit", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, nil, fmt.Errorf("meta: snapshot body: %w", err)
	}
	if got, want := crc32.Checksum(body, castagnoli), binary.BigEndian.Uint32(hdr[13:17]); got != want {
		return nil, nil, fmt.Errorf("meta: snapshot CRC mismatch: %08x != %08x", got, want)
	}
	var sb snapshotBody
	if err := json.Unmarshal(body, &sb); err != nil {
		return nil, nil, fmt.Errorf("meta: snapshot body: %w", err)
	}
	if sb.State == nil {
		return nil, nil, fmt.Errorf("meta: snapshot without state")
	}
	st, err := sb.State.state()
	if err != nil {
		return nil, nil, fmt.Errorf("meta: snapshot: %w", err)
	}
	st.index = sb.Index
	return &sb, st, nil
}

// Restore replaces the whole state (and the dedup table) with a snapshot's.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	sb, st, err := readSnapshot(rc)
	if err != nil {
		return err
	}
	st.controller = f.controller
	f.dedup = map[reqID]applyResult{}
	f.dedupRing = make([]reqID, dedupSize)
	f.dedupNext = 0
	for _, d := range sb.Dedup {
		f.remember(d.ID, d.Result)
	}
	f.state.Store(st)
	f.applied.Store(st.index)
	f.restores.Add(1)
	if f.after != nil {
		f.after(st, []Event{{Kind: StateRestored, Partition: -1}}, nil)
	}
	return nil
}
