// Package broker is one Sediment node as Kafka clients see it: the Kafka wire protocol, the
// partition replicas behind it, and the HTTP endpoint for metrics and health.
//
// # What it owns
//
//   - server.go: Broker, Start and Close. Start order: data dir → Kafka listener (bound first so the
//     advertised port is known) → HTTP → meta.Open → WaitReady (a Raft leader) → RegisterBroker →
//     replica manager → group coordinator → accept loop. Close runs it backwards (see Goroutines).
//   - config.go: Config, a plain struct with DefaultConfig and Validate; Kafka broker configs are
//     typed fields reachable by their Kafka names through one table (Set/Get, DescribeConfigs, --help).
//     topic_config.go: a topic's effective config (override → broker synonym → Kafka default).
//   - conn.go: framing and dispatch. handlers.go: the API registry. One file per API key
//     (NN_name.go) registers its versions from init(); ApiVersions is built from the registry.
//     COMPAT.md lists every API, its versions and the deliberate gaps.
//   - errors.go: the one map from segment/meta sentinels (errors.Is) to Kafka error codes.
//     Kafka-level failures are error codes inside responses; a handler's Go error closes the connection.
//   - http.go: /metrics (Prometheus text), /healthz, /readyz.
//   - replica_manager.go, partition*.go, fetch_session*.go: partition logs, high watermark, producer
//     state, long-poll waiters, fetch sessions. group_*.go: the group coordinator.
//
// # Goroutines
//
//   - one accept loop;
//   - per connection a reader and a writer. The reader reads a frame (size checked against
//     socket.request.max.bytes before allocating), parses the header by hand, decodes the body with
//     kmsg and runs the handler inline, so a connection's requests start one at a time in order
//     (Kafka's contract) while the client may pipeline. A handler may return a deferredResponse
//     (handlers.go): Produce does its ordered part (validation, producer state, AppendNoWait) on the
//     reader and leaves the durability and acks=all wait to a goroutine of its own, so the next
//     request is appended while the previous one's fsync runs and pipelined produces share group
//     commits. The writer encodes responses strictly in request order, waiting for a deferred one
//     before anything queued behind it, and coalesces what is ready into one write; a panic while
//     encoding or writing is recovered, logged and counted, and closes only that connection. The queue between
//     them is bounded (maxPipelined responses per connection; the reader stops reading when full).
//     Idle connections (connections.max.idle.ms) are closed by a read deadline.
//   - the replica manager's event loop (meta.Subscribe) and retention loop; the group coordinator's
//     timers; the HTTP server;
//   - per followed leader, a replica fetcher (replica_fetcher.go) pulling its partitions and writing
//     what it gets without waiting for fsync, and its durability reporter (replica_durable.go): one
//     fsync goroutine per partition with unsynced writes, and a sender that reports the offsets now
//     durable to the leader on a connection of its own (what counts for the leader's HW);
//   - tiering (tiering.go, tier_task.go, tier_background.go): one tierTask per led partition of a
//     tiered topic — uploads, remote retention and orphan collection of that partition, one at a
//     time, started and stopped with leadership — and one broker-wide background loop (deleted
//     topics' objects on the controller, the bucket sweep). Reads from the bucket run on the
//     fetching connection's goroutine (partition_remote.go), bounded by tiering.RemoteLog's cold-read
//     slots and the optional remote fetch quota; the RemoteLog's prefetches are its own goroutines.
//     A read spanning several cached chunks comes back as the chunks' slices and is written in place
//     (01_fetch.go "Record sets in several slices": a sync.Map keyed by a weak pointer to the
//     response, entries dropped by addFetch or by a runtime cleanup if the response is never
//     written; no lock of its own);
//   - the adaptive cold-read throttle (tier_throttle.go; remote.log.reader.adaptive.throttle.enable,
//     default on): one goroutine per broker with an object store, started by newTierManager and
//     ended by tierManager.close (tm.ctx, tm.wg). Every 50 ms it reads the Produce request counter
//     and the p99 of goroutine scheduling latency (runtime/metrics /sched/latencies:seconds) over
//     the tick, and sets the adaptive rate of the remote fetch quota by AIMD: no limit while no
//     Produce was answered within 1 s; on contention (p99 above ….sched.latency.us) the floor at
//     once from unlimited or when p99 is above 4× the threshold, else halving; below half the
//     threshold it adds the floor per second, never above twice the rate reads use plus the floor,
//     and never above remote.log.manager.fetch.max.bytes.per.second. Lock: throttleController.mu,
//     a leaf;
//   - a Fetch over several partitions with records may read up to readParallelism of them at once on
//     short-lived helper goroutines (01_fetch.go); the response is then assembled in request order
//     with Kafka's limit rules, exactly as a one-at-a-time read would.
//
// Shutdown (Close): stop accepting; cancel the broker context, which ends long-polls and parked
// group joins; wake idle readers with a past read deadline; wait up to 10 s for every connection to
// answer the request it is serving and flush; then close the group coordinator (flushing offset
// commits while meta is still open), the replicas (clean-shutdown markers), the metadata node and
// the HTTP server. Partition tier tasks stop when their partition closes.
//
// # Locks
//
// The connection layer holds no lock while serving: the registry is immutable after init, metadata
// is read from meta's immutable State snapshots, and metrics are atomics. Broker.connsMu guards only
// the set of open connections (for shutdown) and is never held while doing I/O. Partition-level lock
// order is documented in partition.go (appendMu → stateMu → waitMu) and replica_manager.go.
package broker
