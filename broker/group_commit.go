package broker

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sediment-io/sediment/meta"
)

// offsetStore is what the batcher needs from meta (small interface so tests can count proposals).
type offsetStore interface {
	CommitOffsets(ctx context.Context, group string, offsets []meta.OffsetCommit) error
}

// multiGroupStore is the optional capability of committing many groups' offsets in ONE Raft entry
// (meta.Node.CommitOffsetsBatch): errs[i] is group i's rejection (the others are committed); err fails
// the entry as a whole. When the store has it, the batcher commits each batch as one entry.
type multiGroupStore interface {
	CommitOffsetsBatch(ctx context.Context, groups []meta.GroupOffsets) (errs []error, err error)
}

// commitBatcher coalesces concurrent offset commits into as few Raft entries as possible.
//
// Per group, at most one meta.CommitOffsets is in flight. Commits of a group that arrive while its
// entry is being committed queue up and are merged (a later commit of the same partition wins) into
// the group's next entry, proposed as soon as the previous one is applied: under load one Raft entry
// carries all of a group's commits of that interval, however many requests they came in. Different
// groups never wait for each other; their entries are proposed concurrently and the Raft leader writes
// entries that arrive together with one disk write (hashicorp/raft batches its apply queue). There is
// no timer and no linger: an idle group's commit is proposed at once.
//
// When the store can commit many groups in one entry (multiGroupStore), the batcher instead keeps at
// most one entry in flight for all groups together: everything that arrives meanwhile, from any
// number of groups, goes into the next single entry (group commit, as the segment log's fsync).
//
// A commit is acknowledged (commit returns nil) only after its entry is committed and applied.
//
// Goroutines: one per group with an entry in flight (or one flusher in multi-group mode), exiting when
// there is nothing queued. Lock: mu guards pending, inflight, running and unstable; it is never held
// across a proposal.
type commitBatcher struct {
	store   offsetStore
	multi   multiGroupStore // nil: one entry per group
	running bool            // multi-group mode: the flusher is active
	closing bool            // wait() began: new commits are refused (the coordinator is closing)

	mu       sync.Mutex
	pending  map[string]*groupCommits // queued behind the group's in-flight entry
	inflight map[string]bool
	unstable map[string]int // commits accepted and not yet answered, per group (OffsetFetch require_stable)
	wg       sync.WaitGroup

	entries atomic.Int64 // meta proposals made
	commits atomic.Int64 // commits answered
}

type groupCommits struct {
	offsets []meta.OffsetCommit
	index   map[meta.TopicPartition]int
	waiters []chan error
}

func newCommitBatcher(store offsetStore) *commitBatcher {
	cb := &commitBatcher{store: store, pending: map[string]*groupCommits{}, inflight: map[string]bool{}, unstable: map[string]int{}}
	cb.multi, _ = store.(multiGroupStore)
	return cb
}

// commit stores a group's offsets and returns once they are committed in Raft (or failed). It does not
// give up when the caller's context ends: the proposal is bounded by meta's proposal timeout, and a
// commit that was accepted is answered rather than abandoned half-way during a graceful shutdown.
func (cb *commitBatcher) commit(group string, offsets []meta.OffsetCommit) error {
	done := make(chan error, 1)
	cb.mu.Lock()
	if cb.closing {
		cb.mu.Unlock()
		return kerr.NotCoordinator
	}
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
	if cb.multi != nil {
		if !cb.running {
			cb.running = true
			cb.wg.Add(1)
			go cb.runMulti()
		}
	} else if !cb.inflight[group] {
		cb.inflight[group] = true
		delete(cb.pending, group)
		cb.wg.Add(1)
		go cb.run(group, gcm)
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

// wait refuses new commits (NOT_COORDINATOR) and blocks until every queued one was answered (shutdown).
func (cb *commitBatcher) wait() {
	cb.mu.Lock()
	cb.closing = true
	cb.mu.Unlock()
	cb.wg.Wait()
}

// run proposes gcm, then whatever queued for the group meanwhile, until nothing is left.
func (cb *commitBatcher) run(group string, gcm *groupCommits) {
	defer cb.wg.Done()
	for {
		cb.entries.Add(1)
		err := cb.store.CommitOffsets(context.Background(), group, gcm.offsets)
		cb.commits.Add(int64(len(gcm.waiters)))
		cb.mu.Lock()
		if cb.unstable[group] -= len(gcm.waiters); cb.unstable[group] <= 0 {
			delete(cb.unstable, group)
		}
		next := cb.pending[group]
		if next == nil {
			delete(cb.inflight, group)
		} else {
			delete(cb.pending, group)
		}
		cb.mu.Unlock()
		for _, w := range gcm.waiters {
			w <- err
		}
		if next == nil {
			return
		}
		gcm = next
	}
}

// runMulti proposes everything queued, for all groups, as one entry; then what queued meanwhile.
func (cb *commitBatcher) runMulti() {
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

		req := make([]meta.GroupOffsets, 0, len(batch))
		for g, gcm := range batch {
			req = append(req, meta.GroupOffsets{Group: g, Offsets: gcm.offsets})
		}
		sort.Slice(req, func(i, j int) bool { return req[i].Group < req[j].Group }) // deterministic entry
		cb.entries.Add(1)
		errs, err := cb.multi.CommitOffsetsBatch(context.Background(), req)
		groupErrs := make(map[string]error, len(errs))
		for i, e := range errs {
			if e != nil && i < len(req) {
				groupErrs[req[i].Group] = e
			}
		}
		cb.mu.Lock()
		for g, gcm := range batch {
			if cb.unstable[g] -= len(gcm.waiters); cb.unstable[g] <= 0 {
				delete(cb.unstable, g)
			}
		}
		cb.mu.Unlock()
		for g, gcm := range batch {
			e := err
			if e == nil {
				e = groupErrs[g]
			}
			cb.commits.Add(int64(len(gcm.waiters)))
			for _, w := range gcm.waiters {
				w <- e
			}
		}
	}
}
