package loadgen

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// Named is a result labelled with the cluster it was measured on.
type Named struct {
	Name   string
	Result Result
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

// Report prints one table with a column per result and, when there are two, a ratio column
// (first / second; for latencies, lower is better, so a ratio below 1 favours the first).
func Report(w io.Writer, c Config, rs ...Named) {
	fmt.Fprintf(w, "\nworkload: %d B records, acks=%s, linger=%s, batch.max.bytes=%d, compression=%s, partitions=%d\n",
		c.RecordSize, c.Acks, c.Linger, c.BatchMaxBytes, c.Compression, c.Partitions)
	fmt.Fprintf(w, "          throughput phases: %d records each; latency phase: %d records/s for %s\n\n", c.Records, c.Rate, c.LatencyFor)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "\t")
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t", r.Name)
	}
	if len(rs) == 2 {
		fmt.Fprintf(tw, "%s/%s\t", rs[0].Name, rs[1].Name)
	}
	fmt.Fprintln(tw)
	row := func(label string, f func(Result) float64, format func(float64) string) {
		fmt.Fprintf(tw, "%s\t", label)
		for _, r := range rs {
			fmt.Fprintf(tw, "%s\t", format(f(r.Result)))
		}
		if len(rs) == 2 {
			a, b := f(rs[0].Result), f(rs[1].Result)
			if b != 0 {
				fmt.Fprintf(tw, "%.2f\t", a/b)
			} else {
				fmt.Fprint(tw, "-\t")
			}
		}
		fmt.Fprintln(tw)
	}
	mbps := func(v float64) string { return fmt.Sprintf("%.1f MB/s", v) }
	rps := func(v float64) string { return fmt.Sprintf("%.0f rec/s", v) }
	dur := func(v float64) string { return ms(time.Duration(v)) }
	if c.Records > 0 {
		row("produce", func(r Result) float64 { return r.Produce.MBps() }, mbps)
		row("produce", func(r Result) float64 { return r.Produce.RecordsPerSec() }, rps)
		row("consume", func(r Result) float64 { return r.Consume.MBps() }, mbps)
		row("consume", func(r Result) float64 { return r.Consume.RecordsPerSec() }, rps)
	}
	if c.LatencyFor > 0 {
		row("sent rate", func(r Result) float64 { return r.Latency.AchievedRate }, rps)
		row("e2e p50", func(r Result) float64 { return float64(r.Latency.P50) }, dur)
		row("e2e p99", func(r Result) float64 { return float64(r.Latency.P99) }, dur)
		row("e2e p99.9", func(r Result) float64 { return float64(r.Latency.P999) }, dur)
		row("e2e max", func(r Result) float64 { return float64(r.Latency.Max) }, dur)
		row("ack p50", func(r Result) float64 { return float64(r.Latency.AckP50) }, dur)
		row("ack p99", func(r Result) float64 { return float64(r.Latency.AckP99) }, dur)
		row("received", func(r Result) float64 { return float64(r.Latency.Received) }, func(v float64) string { return fmt.Sprintf("%.0f", v) })
	}
	tw.Flush()
}
