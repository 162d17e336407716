// Package loadgen is a Kafka load generator built on franz-go, plus the machine-limit probes and
// the comparison report of `sediment bench`. It talks only the Kafka protocol, so the same
// workload runs against Sediment and against any other Kafka-compatible cluster (for example
// franz-go's kfake) for side-by-side comparison.
//
// A run (Run) has three phases, each optional:
//
//  1. produce: Records records as fast as the client settings allow (produce throughput);
//  2. consume: read those records back from the start with a fresh client (consume throughput);
//     Config.OnPhase lets the caller act before it (the bench drops the page cache of the
//     target's log files so that the consume phase reads the disk);
//  3. latency: produce at a fixed Rate for LatencyFor while a consumer reads concurrently;
//     each record carries its send time (8 bytes, UnixNano) at the start of its value, and the
//     consumer records now-sendTime (end-to-end latency; same process, same clock); the
//     producer's promise records produce→ack latency.
//
// Machine limits (limits.go), measured by the bench in the same invocation as the brokers:
// DiskWrite (sequential 1 MiB writes with fdatasync every N bytes, bounded by MaxDiskBytes, read
// back with the page cache dropped, and fdatasync latency of 4 KiB appends), PacedSyncLatency
// (one file per partition, record-size write + fdatasync paced at the workload's rate: the latency
// floor of a durable produce), LoopbackTCP (one stream), ObjectPutGet (minio-go PUT/GET).
//
// Report (report.go): BuildRows turns per-target Results and Limits into rows with each figure's
// ratio to the peer (kfake) and to the limit; Comparison prints them as text or JSON.
//
// Goroutines: franz-go's own; one consumer goroutine during the latency phase; one progress-line
// goroutine per phase (stopped before the phase returns); one goroutine per file in
// PacedSyncLatency and a receiver in LoopbackTCP, all joined before those functions return.
// Everything stops when the context is cancelled or the phase's bounds (count, duration) are
// reached. No locks are held across calls into franz-go except the latency slices' mutex.
package loadgen
