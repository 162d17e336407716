package broker

// Consumer groups in Sediment (group_*.go and API keys 8–16, 42, 47, 68, 69).
//
// # Where offsets live: Raft, not __consumer_offsets
//
// Kafka stores committed offsets (and group metadata) as records in the internal, compacted topic
// __consumer_offsets, and the coordinator of a group is the leader of the offsets partition the group
// id hashes to. Sediment has no such topic: committed offsets are part of the replicated metadata
// state (meta: one Raft group), written with meta.CommitOffsets/DeleteOffsets and read from
// meta.State on any broker. Consequences:
//
//   - Metadata and ListTopics never show __consumer_offsets (there is nothing to show); clients that
//     list internal topics see none; asking for it by name answers UNKNOWN_TOPIC_OR_PARTITION and never
//     auto-creates it, and CreateTopics refuses the name (03_metadata.go, 19_create_topics.go).
//   - An offset commit is acknowledged only once its Raft entry is committed and applied here, so an
//     acknowledged commit survives the loss of any minority of metadata voters and is never rolled back.
//   - Because every broker can read every group's offsets, the coordinator is a pure function of the
//     group id and the set of live (registered, unfenced) brokers: rendezvous hashing (coordinatorFor).
//     When that set changes, some groups move; the old coordinator answers NOT_COORDINATOR (and drops
//     its in-memory state of the group), clients re-run FindCoordinator, and the new coordinator first
//     runs a Raft barrier (answering COORDINATOR_LOAD_IN_PROGRESS meanwhile, Kafka's "loading") so that
//     it serves the group from up-to-date committed offsets.
//   - Group membership (members, generations, assignments) lives only in the coordinator's memory.
//     Kafka's new coordinator reloads it from __consumer_offsets; Sediment's adopts the members that
//     present themselves instead (group_takeover.go), sending them into one rebalance.
//
// # Commit batching
//
// commitBatcher (group_commit.go) is a group commit with no timer: while one Raft entry is in flight,
// all commits arriving meanwhile, from any number of groups, queue up and go together in the next
// entry (meta.CommitOffsetsBatch; commits of the same partition merged, a refused group fails alone).
// So under load the number of Raft entries grows neither with requests nor with groups.
//
// # Protocols
//
//   - classic (JoinGroup/SyncGroup/Heartbeat/LeaveGroup): group_classic.go, Kafka's state machine
//     (Empty, PreparingRebalance, CompletingRebalance, Stable, Dead) with session/rebalance timeouts,
//     group.initial.rebalance.delay.ms, KIP-394 member ids, KIP-345 static membership; the broker relays
//     the leader's assignment, so every client-side assignor (including KIP-429 cooperative) works.
//   - KIP-848 (ConsumerGroupHeartbeat): group_consumer.go, server-side "uniform" and "range" assignors
//     (majority choice), member epochs, revocation confirmed before reassignment, static members.
//   - Coordinator takeover (group_takeover.go): members of a group that existed are adopted when they
//     present themselves to a new coordinator, for both protocols.
//
// # Goroutines, timers, locks
//
// No goroutine per group and nothing polls. Timers are time.AfterFunc: per classic member (session),
// per group (rebalance timeout / initial delay), per pending KIP-394 member id, per KIP-848 member
// (session, revocation timeout), and one coordinator-wide offset-expiry check
// (offsets.retention.check.interval.ms). Parked JoinGroup/SyncGroup requests wait on buffered channels
// in their connection's reader goroutine. The commit batcher runs one flusher goroutine only while
// commits are queued.
//
// Lock order: groupCoordinator.mu (the group map) → group.mu (one group's state). No lock is held
// across a Raft proposal: commits are validated under group.mu, then proposed without it.
// commitBatcher.mu is a leaf.
//
// # Configs (Kafka names; defaults as Kafka)
//
// group.initial.rebalance.delay.ms 3000, group.min.session.timeout.ms 6000,
// group.max.session.timeout.ms 1800000, group.max.size, offsets.retention.minutes 10080,
// offsets.retention.check.interval.ms 600000, offset.metadata.max.bytes 4096,
// group.consumer.heartbeat.interval.ms 5000, group.consumer.session.timeout.ms 45000,
// group.consumer.assignors uniform,range — fields of broker.Config, turned into durations by
// groupConfigFrom.
