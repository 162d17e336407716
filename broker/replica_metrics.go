package broker

import (
	"fmt"
	"io"
	"sort"
	"strconv"
)

// Per-partition metrics in Prometheus text format, added to /metrics through broker-core's
// collector hook. Counters live on the Partition (atomics bumped by the produce and fetch paths);
// gauges are read from the log at scrape time. Labels: topic, partition.

func (rm *ReplicaManager) writeMetrics(w io.Writer) {
	parts := rm.Partitions()
	sort.Slice(parts, func(i, j int) bool {
		if parts[i].topic != parts[j].topic {
			return parts[i].topic < parts[j].topic
		}
		return parts[i].index < parts[j].index
	})
	type metric struct {
		name, typ, help string
		value           func(p *Partition) int64
	}
	for _, m := range []metric{
		{"sediment_partition_log_start_offset", "gauge", "Log start offset.", func(p *Partition) int64 { return p.log.StartOffset() }},
		{"sediment_partition_log_end_offset", "gauge", "Log end offset.", func(p *Partition) int64 { return p.log.EndOffset() }},
		{"sediment_partition_high_watermark", "gauge", "High watermark (consumers read below it).", func(p *Partition) int64 { return p.hw.Load() }},
		{"sediment_partition_log_bytes", "gauge", "Bytes in local segments.", func(p *Partition) int64 {
			var n int64
			for _, s := range p.log.Segments() {
				n += s.Size
			}
			return n
		}},
		{"sediment_partition_segments", "gauge", "Local segments.", func(p *Partition) int64 { return int64(len(p.log.Segments())) }},
		{"sediment_partition_recycle_pool_bytes", "gauge", "Bytes of deleted segment files kept on disk for new segments to reuse (log.segment.recycle.files, log.segment.recycle.ms), beyond the local segments.", func(p *Partition) int64 {
			_, n := p.log.RecyclePool()
			return n
		}},
		{"sediment_partition_leader", "gauge", "1 when this broker leads the partition.", func(p *Partition) int64 {
			if p.checkLeader(-1) == 0 {
				return 1
			}
			return 0
		}},
		{"sediment_partition_produced_bytes_total", "counter", "Record batch bytes appended by producers.", func(p *Partition) int64 { return p.bytesIn.Load() }},
		{"sediment_partition_produced_records_total", "counter", "Records appended by producers.", func(p *Partition) int64 { return p.recordsIn.Load() }},
		{"sediment_partition_duplicate_batches_total", "counter", "Idempotent retries answered without appending.", func(p *Partition) int64 { return p.duplicates.Load() }},
		{"sediment_partition_fetched_bytes_total", "counter", "Record batch bytes returned to fetchers.", func(p *Partition) int64 { return p.bytesOut.Load() }},
	} {
		family(w, m.name, m.typ, m.help)
		for _, p := range parts {
			fmt.Fprintf(w, "%s{topic=%s,partition=\"%d\"} %d\n", m.name, strconv.Quote(p.topic), p.index, m.value(p))
		}
	}
}
