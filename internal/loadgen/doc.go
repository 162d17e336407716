// Package loadgen is a Kafka load generator built on franz-go: it produces fixed-size records to
// a topic and consumes them back, and reports throughput (MB/s, records/s) and produce→consume
// latency percentiles. It talks only the Kafka protocol, so the same workload runs against
// Sediment and against any other Kafka-compatible cluster (for example franz-go's in-memory
// kfake) for side-by-side comparison.
//
// A run has three phases, each optional:
//
//  1. produce: Records records as fast as the client settings allow (produce throughput);
//  2. consume: read those records back from the start with a fresh client (consume throughput);
//  3. latency: produce at a fixed Rate for LatencyDuration while a consumer reads concurrently;
//     each record carries its send time (8 bytes, UnixNano) at the start of its value, and the
//     consumer records now-sendTime (end-to-end latency; same process, same clock).
//
// Goroutines: franz-go's own, plus one consumer goroutine during the latency phase. Everything
// stops when the context is cancelled or the phase's bounds (count, duration) are reached.
package loadgen
