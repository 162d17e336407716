package meta

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/hashicorp/raft"
)

// The proposal batcher packs proposals waiting on this node (the leader) into one Raft entry of kind
// multi, so raft's per-entry costs (future, channels, log framing, encode, replication bookkeeping) are
// paid once per batch instead of once per command. raft then still groups several entries per fsync.
// Each inner command keeps its own request id, is applied in order, and gets its own result.
//
// At most maxInflightBatches entries are in flight (handed to raft, not yet applied); while they are,
// new proposals queue up and become the next, larger, batch — the same group commit an fsync-bound
// log does, one level up. A lone proposer finds a free slot and is not delayed. A goroutine per batch
// waits for the outcome and answers each proposer.

const (
	maxBatchCount      = 1024
	maxInflightBatches = 2
	maxBatchBytes      = 1 << 20 // well under maxCommandSize, so a multi entry always decodes
	// maxMultiEntries: an inner command's position must fit the low 16 bits of a broker epoch.
	maxMultiEntries = 1<<16 - 1
)

type proposal struct {
	data []byte
	done chan proposalResult // buffered 1
}

type proposalResult struct {
	res *applyResult
	err error
}

// cmdMulti carries several complete encoded commands (each with version, kind and request id).
type cmdMulti struct {
	Entries [][]byte
}

func (c *cmdMulti) appendBinary(b []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(c.Entries)))
	for _, e := range c.Entries {
		b = binary.AppendUvarint(b, uint64(len(e)))
		b = append(b, e...)
	}
	return b
}

func (c *cmdMulti) decodeBinary(b []byte) error {
	r := rd{b: b}
	n := r.count(cmdHeaderSize + 1)
	if n > maxMultiEntries {
		return fmt.Errorf("%d entries in a multi entry, the limit is %d", n, maxMultiEntries)
	}
	if n > 0 {
		c.Entries = make([][]byte, n)
	}
	for i := 0; i < n && r.err == nil; i++ {
		l := r.uvarint()
		if r.err == nil && l > uint64(len(r.b)) {
			r.err = errShort
		}
		if r.err != nil {
			break
		}
		c.Entries[i] = r.b[:l:l]
		r.b = r.b[l:]
	}
	return r.done()
}

// applyMulti applies each inner command at the same log index, in order.
func (f *fsm) applyMulti(b *builder, x *cmdMulti, idx uint64) *applyResult {
	out := &applyResult{Multi: make([]*applyResult, len(x.Entries))}
	for i, e := range x.Entries {
		if len(e) >= 2 && cmdKind(e[1]) == kindMulti {
			out.Multi[i] = &applyResult{Index: idx, Code: codeOf(ErrCorruptCommand), Reason: "nested multi entry"}
			continue
		}
		b.sub = i + 1
		out.Multi[i] = f.applyOne(b, e, idx)
	}
	b.sub = 0
	return out
}

func (n *Node) batcher() {
	defer n.wg.Done()
	var batch []*proposal
	for {
		batch = batch[:0]
		select {
		case p := <-n.propCh:
			batch = append(batch, p)
		case <-n.closing:
			return
		}
		select { // wait for a free slot; proposals keep queueing meanwhile
		case n.inflight <- struct{}{}:
		case <-n.closing:
			return
		}
		size := len(batch[0].data)
	drain:
		for len(batch) < maxBatchCount && size < maxBatchBytes {
			select {
			case p := <-n.propCh:
				batch = append(batch, p)
				size += len(p.data)
			default:
				break drain
			}
		}
		n.submit(slices.Clone(batch))
	}
}

func (n *Node) submit(batch []*proposal) {
	data := batch[0].data
	if len(batch) > 1 {
		m := &cmdMulti{Entries: make([][]byte, len(batch))}
		for i, p := range batch {
			m.Entries[i] = p.data
		}
		data = encodeCommand(reqID{}, m)
	}
	f := n.raft.Apply(data, n.cfg.ProposalTimeout)
	go func() {
		defer func() { <-n.inflight }()
		// May never return if raft shuts down with the entry still queued (raft leaves such futures
		// unanswered); the proposers do not wait on it then: they watch ctx and n.closing.
		err := f.Error()
		if err != nil {
			if errors.Is(err, raft.ErrRaftShutdown) {
				err = ErrClosed
			}
			for _, p := range batch {
				p.done <- proposalResult{err: err}
			}
			return
		}
		res, ok := f.Response().(*applyResult)
		if !ok || res == nil {
			err := fmt.Errorf("meta: unexpected apply response %T", f.Response())
			for _, p := range batch {
				p.done <- proposalResult{err: err}
			}
			return
		}
		if len(batch) == 1 {
			batch[0].done <- proposalResult{res: res}
			return
		}
		for i, p := range batch {
			if i < len(res.Multi) && res.Multi[i] != nil {
				p.done <- proposalResult{res: res.Multi[i]}
			} else {
				p.done <- proposalResult{err: fmt.Errorf("meta: multi entry result %d missing", i)}
			}
		}
	}()
}
