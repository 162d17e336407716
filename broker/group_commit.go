package broker

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/sediment-io/sediment/meta"
)

// offsetStore is what the batcher needs from meta (small interface so tests can count proposals).
type offsetStore interface {
	CommitOffsets(ctx context.Context, group string, offsets []meta.OffsetCommit) error
}

// commitBatcher coalesces concurrent offset commits into as few Raft entries as possible.
//
// There is no timer and no linger: a commit arriving while nothing is in flight is proposed at once;
// commits arriving while a batch is being committed wait for it to finish and then all go together in
// the next batch (group commit, as the segment log's fsync). Within a batch, all commits of one group
// are merged into one meta.CommitOffsets (a later commit of the same partition wins), so one Raft entry
// carries every commit of that group. Different groups of one batch are proposed concurrently; the
// Raft leader appends entries that arrive together with one disk write. When meta gains a multi-group
// command (requested in notes/requests.md) the whole batch becomes one entry.
//
// A commit is acknowledged (commit returns nil) only after its entry is committed and applied.
//
// Goroutines: one flusher goroutine exists only while commits are pending; it exits when the queue is
// empty. Lock: mu guards pending, running and unstable; it is never held across a proposal.
type commitBatcher struct {
	store offsetStore

	mu       sync.Mutex
	pending  map[string]*groupCommits
	running  bool
	unstable map[string]int // commits accepted and not yet answered, per group (OffsetFetch require_stable)
	wg       sync.WaitGroup

	batches atomic.Int64 // batches flushed
	entries atomic.Int64 // meta proposals made
	commits atomic.Int64 // OffsetCommit requests answered
}

type groupCommits struct {
	offsets []meta.OffsetCommit
	index   map[meta.TopicPartition]int
	waiters []chan error
}

func newCommitBatcher(store offsetStore) *commitBatcher {
	return &commitBatcher{store: store, pending: map[string]*groupCommits{}, unstable: map[string]int{}}
}

// commit stores a group's offsets and returns once they are committed in Raft (or failed). It does not
// give up when the caller's context ends: the proposal is bounded by meta's proposal timeout, and a
// commit that was accepted is answered rather than abandoned half-way during a graceful shutdown.
func (cb *commitBatcher) commit(group string, offsets []meta.OffsetCommit) error {
	done := make(chan error, 1)
	cb.mu.Lock()
	gcm := cb.pending[group]
	if gcm == nil {
		gcm = &groupCommits{index: map[meta.TopicPartition]int{}}
		cb.pending[group] = gcm
	}
	for _, o := range offsets {
		tp := meta.TopicPartition{Topic: o.Topic, Partition: o.Partition}
		if i, ok := gcm.index[tp]; ok {
			gcm.offsets[i] = o
			continue
		}
		gcm.index[tp] = len(gcm.offsets)
		gcm.offsets = append(gcm.offsets, o)
	}
	gcm.waiters = append(gcm.waiters, done)
	cb.unstable[group]++
	if !cb.running {
		cb.running = true
		cb.wg.Add(1)
		go cb.run()
	}
	cb.mu.Unlock()
	return <-done
}

// hasPending reports whether commits of group are accepted but not yet answered.
func (cb *commitBatcher) hasPending(group string) bool {
	cb.mu.Lock()
	defer cb.mu.Unlock()
	return cb.unstable[group] > 0
}

// wait blocks until the flusher has answered everything queued (shutdown).
func (cb *commitBatcher) wait() { cb.wg.Wait() }

func (cb *commitBatcher) run() {
	defer cb.wg.Done()
	for {
		cb.mu.Lock()
		if len(cb.pending) == 0 {
			cb.running = false
			cb.mu.Unlock()
			return
		}
		batch := cb.pending
		cb.pending = make(map[string]*groupCommits, len(batch))
		cb.mu.Unlock()

		cb.batches.Add(1)
		var wg sync.WaitGroup
		for group, gcm := range batch {
			wg.Add(1)
			cb.entries.Add(1)
			go func() {
				defer wg.Done()
				err := cb.store.CommitOffsets(context.Background(), group, gcm.offsets)
				cb.mu.Lock()
				if cb.unstable[group] -= len(gcm.waiters); cb.unstable[group] <= 0 {
					delete(cb.unstable, group)
				}
				cb.mu.Unlock()
				cb.commits.Add(int64(len(gcm.waiters)))
				for _, w := range gcm.waiters {
					w <- err
				}
			}()
		}
		wg.Wait()
	}
}
