// Package meta is Sediment's metadata layer: one hashicorp/raft group whose replicated state machine
// holds the cluster's metadata, and the controller that acts on it from the Raft leader.
//
// # What it owns
//
// The replicated State (state.go): cluster id; brokers (id, Kafka host/port, Raft address, rack,
// incarnation, epoch, fenced); topics (UUID id, name, configs with Kafka names, validated in configs.go)
// and their partitions (replicas, leader, leader epoch, ISR, partition epoch); per-partition remote
// segment manifests (the tiering layer's, including those of deleted topics until their objects are
// gone, so nothing leaks in the bucket); committed consumer-group offsets; the producer-id counter.
// Every apply builds a new immutable State (copy on write: maps and topics are copied at most once per
// applied batch; group offsets live in persistent HAMT maps) and swaps an atomic pointer, so
// State() never blocks and a *State is a consistent snapshot. State.Digest hashes its canonical form.
//
// hashicorp/raft stays inside this package; only Config.Transport exposes raft.Transport (tests inject
// raft.InmemTransport).
//
// # Storage
//
// The Raft log and stable store are github.com/hashicorp/raft-wal; snapshots are raft.FileSnapshotStore
// (DataDir/raft and DataDir/snapshots). raft-wal rather than raft-boltdb: raft-boltdb/v2 does not build
// against the current go-metrics module, and raft-wal is what HashiCorp wrote to replace it — append-only
// segment files, one write and one fsync per batch of entries, no B-tree page churn or free-list growth,
// cheap head truncation after snapshots. Two raft-wal v0.4.0 quirks are handled here: its Close leaves
// the bolt metadata file open (Open supplies and closes its own metadb.BoltMetaDB), and it keeps serving
// entries below a head truncation until their segment file is deleted (walStore.GetLog reports them
// gone, so a lagging follower is sent the snapshot, as raft expects). DataDir/meta-node.json pins the
// directory to a node id.
//
// # Deployment (KRaft-like combined mode)
//
// Config.Voters lists the initial voters (1, 3 or 5); empty means a single voter, this node, so
// `sediment serve` without flags bootstraps a one-node cluster. A voter bootstraps the configuration
// only when its data dir holds no Raft state; restarts reuse the persisted state; Bootstrap on a
// directory with state fails with ErrAlreadyBootstrapped. A node not in Voters starts empty and waits:
// Join(ctx, seeds) asks the leader (over TCP) to add it as a non-voter, or AddNonvoter on the leader
// does it directly (in-process tests). Non-voters receive and apply the log (or a snapshot) and forward
// writes like any member. AddVoter / RemoveServer / Members (leader-side Go API) change and list the
// membership; there is no wire-level command for them yet (the cluster issue).
//
// ControlledShutdown (Kafka's controlled shutdown) stops the heartbeats and fences the broker at once,
// so its leaderships move now rather than after the session timeout.
//
// # Writes
//
// Every write method encodes a command, proposes it and returns once it is committed and applied on
// this node (read-your-writes). On the leader: the proposal batcher (batcher.go) packs the proposals
// waiting at that moment into one Raft entry of kind multi (each inner command keeps its request id and
// gets its own result); at most two such entries are in flight, so proposals arriving during an fsync
// form the next, larger batch, and raft additionally writes several entries per fsync
// (BatchApplyCh, MaxAppendEntries). On a follower: forwarded to the leader —
// over TCP on the Raft port itself (the mux in tcpforward.go routes a connection by its first byte:
// raft's RPC types are 0..4, forwarding uses 'F' and 'J'), or in-process for injected transports — and
// then the follower waits until it has applied the entry's index. ErrNotLeader, ErrLeadershipLost and
// an unreachable leader are retried with backoff until the context ends.
//
// Retries are safe because every non-idempotent command carries a random 16-byte request id; the state
// machine remembers the last 8192 ids with their results (and snapshots them), and a command whose id it
// has seen returns the remembered result without a second effect. Commands are also written to be
// absolute or conditional where it is natural: CreateTopic carries the topic UUID (same name and id:
// already done), FenceBroker names the broker epoch, AlterPartition the leader and partition epochs,
// InitCluster only sets an empty id, AddRemoteSegment is a no-op for an identical segment.
//
// # Command encoding and versions
//
// One Raft entry = version byte | kind byte | 16-byte request id | body. The body is the JSON object
// of the kind's struct, except heartbeat, commit-offsets and commit-offsets-batch (the bulk of the log
// by count), which have a compact varint encoding (codec.go). The decoder bounds every length by the
// bytes left and never panics (FuzzDecodeCommand, corpus under testdata/fuzz); a command that does not
// decode is rejected the same way on every node, so state never diverges.
//
// How version N+1 reads version N: the decoder accepts every version from 1 to its own. A new field is
// added with a zero value that means the old behaviour, and the version byte is bumped; N+1 reading an
// N entry sees the zero value. An entry is written with the lowest version that has every field it
// uses (versionOf), so entries that use no new field stay readable by older builds; an entry whose
// version lacks a field it carries is corrupt. Version 2: AlterPartition.ISREpochs; version 3: AddRemoteSegment.FenceEpoch. New kinds take new kind numbers; kinds and error codes are never
// renumbered. Within one version, unknown JSON fields are rejected (a body from an unknown build). An N
// node cannot read N+1 entries, so a mixed-version cluster must keep writing version N until every node
// runs N+1 (a finalized-version command like KRaft's metadata.version is the planned gate; not built).
// Snapshots have their own header: magic "SDMS", version, length, CRC-32C, then JSON.
//
// A multi entry's body is a count and length-prefixed complete commands (version, kind, request id,
// body each); nesting is refused. All inner commands apply at the entry's index, in order.
//
// Apply is deterministic: no clocks, no randomness (ids and the cluster id come in the command), sorted
// iteration wherever order reaches the state; a broker's epoch is the Raft index of its registration
// shifted left 16 bits, plus its position inside a multi entry.
//
// # Controller rules (controller.go, fsm.go)
//
//   - Brokers register (RegisterBroker) and then heartbeat every HeartbeatInterval. A heartbeat is a small
//     Raft command (binary, no request id); the controller notes locally when each broker's registration or
//     heartbeat was applied. Because the leader applies an entry as soon as it commits, that time is close
//     to the arrival time; followers note it too, but only the leader acts on it.
//   - A node that becomes leader grants every broker one session timeout from that moment before it can be
//     fenced, since it cannot know how recent the heartbeats it applied as a follower were.
//     Putting heartbeats through Raft costs one log entry per broker per heartbeat interval (250 ms) (batched with everything
//     else, compacted by snapshots) and buys: every member sees liveness changes in order with the rest of
//     the metadata, a fenced broker is unfenced by the same command that proves it is back, and no second
//     RPC path is needed for liveness.
//   - Fast path for a dead process: a broker whose heartbeat is overdue (HeartbeatInterval plus half of it,
//     by heartbeats this node applied) and whose Raft address refuses TCP connections (ECONNREFUSED: no
//     process listens) is fenced at once, grace period or not. Load never produces a refusal (a slow or
//     paused process's kernel still accepts), a heartbeat that arrives keeps the broker live whatever
//     the probe says, and a probe that times out proves nothing, so this adds no false fencing; it cuts
//     kill -9 → new leaders from the session timeout to about one heartbeat interval.
//   - A broker unheard for SessionTimeout (default 6 s) is fenced by a FenceBroker command (conditional on
//     its epoch). Every node applies every heartbeat, so a new controller counts sessions from the
//     heartbeats it applied as a follower, giving each broker at least a short grace after its election
//     (a third of the session, at least four heartbeat intervals) to reach it. Applying it removes the broker from every ISR (unless it is the last member) and gives
//     every partition it led a new leader: the first live ISR member in replica order, leader epoch +1 and
//     partition epoch +1, all in that one entry. With no live ISR member: if the topic's
//     unclean.leader.election.enable is true, the first live replica becomes leader with ISR = {it};
//     otherwise the partition is leaderless (-1) and keeps its last ISR member.
//   - A fenced broker that heartbeats (or registers) again is unfenced and immediately elected for
//     leaderless partitions whose ISR holds it (or, unclean, whose replicas do). It rejoins other ISRs
//     when their leaders propose it (AlterPartition). A registration with a new incarnation (a restarted
//     process) first moves the broker's leaderships away as if fenced.
//   - Preferred leaders: ElectPreferredLeaders moves leadership back to a partition's first replica when it
//     is live and in the ISR (leader epoch +1). The controller does so by itself every
//     LeaderImbalanceCheckInterval (Kafka's leader.imbalance.check.interval.seconds, 300 s; negative = off),
//     for every such partition — without Kafka's 10 % per-broker threshold, since a returned broker that
//     leads nothing is exactly the imbalance to fix.
//   - Placement (CreateTopic, CreatePartitions): over live brokers; each replica goes to the least-loaded
//     broker (leader slot by leaderships, others by replicas, counting all existing topics) among those whose
//     rack the partition does not use yet, ties rotated by partition index. Manual assignments are checked:
//     registered brokers, no duplicates, equal lengths, at least one live broker.
//   - AlterPartition (a leader proposing an ISR) is accepted only from the current live leader at its current
//     broker epoch, with the current leader epoch (else FENCED_LEADER_EPOCH) and partition epoch (else
//     INVALID_UPDATE_VERSION); the ISR must contain the leader and only replicas, and brokers joining it
//     must be live (else INELIGIBLE_REPLICA). KIP-903: the leader may give each member's broker epoch as
//     seen in its fetches (ISREpochs, Kafka's NewIsrWithEpochs; -1 = unknown); a member not live at
//     exactly that epoch (it re-registered since: a restarted process, maybe with an empty disk) is
//     INELIGIBLE_REPLICA, so stale evidence never puts a replica into the ISR. Success bumps the
//     partition epoch, not the leader epoch.
//
// # Events
//
// After each applied batch, the events it produced (TopicCreated, TopicDeleted, PartitionChanged,
// TopicConfigChanged, BrokerChanged, RemoteManifestChanged; ControllerChanged from the leader observer;
// StateRestored after a snapshot install) go to every subscriber. A subscriber has its own pending list,
// deduplicated, drained by its own goroutine into its channel: the FSM never blocks on a slow reader,
// and a reader far behind gets one StateRestored instead of an unbounded backlog.
//
// # Goroutines
//
// hashicorp/raft's own (run loop, FSM, snapshots, replication per peer); per node: watchLeader (leader
// observations → ControllerID, ControllerChanged), batcher (forms multi entries; plus one goroutine per
// entry in flight that waits for raft's future and answers the proposers), controller.run (session checks every
// SessionTimeout/20, clamped to 10..100 ms; liveness probes of overdue brokers in parallel goroutines, 200 ms each), heartbeatLoop once a broker is registered; per subscriber:
// subscriber.run; with TCP: the mux accept loop and one goroutine per accepted connection. Raft never
// answers a future still queued at Shutdown; the per-entry waiter then lives until exit, but proposers
// never wait on it: they watch their context and the node's closing channel.
//
// # Lock order
//
// Two nestings only: hub.mu → subscriber.mu (publish), and Node.hbMu → Node.regMu (a heartbeat that
// re-registers; hbMu is held across that heartbeat's proposal so ControlledShutdown can wait for it).
// The others are leaves:
// Node.applyMu (apply notification channel), Node.regMu (registration), controller.mu (heard-from times),
// inprocNet.mu. The FSM's idempotency table is touched only by raft's FSM goroutine. The FSM goroutine
// calls afterApply, which takes controller.mu, applyMu and hub.mu in turn, never nested.
package meta
