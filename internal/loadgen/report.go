package loadgen

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// Named is a result labelled with the cluster it was measured on.
type Named struct {
	Name   string `json:"name"`
	Desc   string `json:"description,omitempty"`
	Result Result `json:"result"`
	Err    string `json:"error,omitempty"`
	// Load averages (1 min) read from /proc/loadavg before and after this target's run.
	LoadBefore float64 `json:"load1_before"`
	LoadAfter  float64 `json:"load1_after"`
}

// Limits are the machine's limits measured in the same invocation; a nil figure was not measured
// (its error, if any, says why).
type Limits struct {
	Disk      *DiskResult   `json:"disk,omitempty"`
	Sync      *SyncLatency  `json:"sync_latency,omitempty"`
	SyncErr   string        `json:"sync_latency_error,omitempty"`
	DiskErr   string        `json:"disk_error,omitempty"`
	TCP       *TCPResult    `json:"tcp,omitempty"`
	TCPErr    string        `json:"tcp_error,omitempty"`
	Object    *ObjectResult `json:"object,omitempty"`
	ObjectErr string        `json:"object_error,omitempty"`
}

// Machine describes where a run happened.
type Machine struct {
	NumCPU    int        `json:"num_cpu"`
	MemTotal  string     `json:"mem_total"`
	Kernel    string     `json:"kernel"`
	GoVersion string     `json:"go_version"`
	DataDir   string     `json:"data_dir"`
	LoadStart [3]float64 `json:"loadavg_start"`
	LoadEnd   [3]float64 `json:"loadavg_end"`
}

// Cell is one target's figure in a row with its ratios (0 = no ratio).
type Cell struct {
	Target  string  `json:"target"`
	Value   float64 `json:"value"`
	VsPeer  float64 `json:"ratio_to_peer,omitempty"`
	VsLimit float64 `json:"ratio_to_limit,omitempty"`
}

// Row is one metric across targets. Ratios are figure/peer and figure/limit; for latencies
// (HigherIsBetter false) a ratio above 1 means slower than the peer or the floor.
type Row struct {
	Metric         string  `json:"metric"`
	Unit           string  `json:"unit"`
	HigherIsBetter bool    `json:"higher_is_better"`
	Limit          float64 `json:"limit,omitempty"`
	LimitName      string  `json:"limit_name,omitempty"`
	Cells          []Cell  `json:"cells"`
	// Pending rows are workloads not measurable yet (the reason is in Comparison.Pending); they
	// carry the limit measured for them and no cells.
	Pending bool `json:"pending,omitempty"`
}

// Comparison is one `sediment bench` invocation: what ran, where, and every figure with ratios.
type Comparison struct {
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Command  string    `json:"command"`
	Machine  Machine   `json:"machine"`
	Workload Config    `json:"workload"`
	Peer     string    `json:"peer"`
	Limits   Limits    `json:"limits"`
	Targets  []Named   `json:"targets"`
	Rows     []Row     `json:"rows"`
	Pending  []string  `json:"pending,omitempty"`
	// Tiering workloads (upload, replay from the bucket vs local disk, produce latency during a
	// replay), nil when not run.
	Tier     *TierResult `json:"tiering,omitempty"`
	TierRows []TierRow   `json:"tiering_rows,omitempty"`
}

// DescribeMachine reads CPU count, memory, kernel and load from the running system (Linux /proc;
// fields it cannot read stay empty).
func DescribeMachine(dataDir string) Machine {
	m := Machine{NumCPU: runtime.NumCPU(), GoVersion: runtime.Version(), DataDir: dataDir, LoadStart: LoadAvg()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
				m.MemTotal = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	return m
}

// LoadAvg is /proc/loadavg's 1, 5 and 15 minute averages (zeros when unreadable).
func LoadAvg() [3]float64 {
	var l [3]float64
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return l
	}
	fmt.Sscanf(string(b), "%f %f %f", &l[0], &l[1], &l[2])
	return l
}

// BuildRows turns targets and limits into rows. peer names the target ratios are taken against
// (its own cells carry no peer ratio). Limits: durable produce against the disk's sequential
// write with periodic fdatasync, consume against loopback TCP, latencies against the latency of
// one fdatasync after a 4 KiB append (the floor under an acks=all produce with flush `always`).
func BuildRows(c Config, peer string, lim Limits, ts []Named) []Row {
	var rows []Row
	recPerMB := float64(1<<20) / float64(c.RecordSize)
	add := func(metric, unit string, higher bool, limit float64, limitName string, f func(Result) float64) {
		r := Row{Metric: metric, Unit: unit, HigherIsBetter: higher, Limit: limit, LimitName: limitName}
		var pv float64
		for _, t := range ts {
			if t.Name == peer && t.Err == "" {
				pv = f(t.Result)
			}
		}
		for _, t := range ts {
			if t.Err != "" {
				continue
			}
			v := f(t.Result)
			cell := Cell{Target: t.Name, Value: v}
			if t.Name != peer && pv > 0 {
				cell.VsPeer = v / pv
			}
			if limit > 0 {
				cell.VsLimit = v / limit
			}
			r.Cells = append(r.Cells, cell)
		}
		rows = append(rows, r)
	}
	var diskMB, tcpMB, syncP99ms float64
	var syncP50ms, syncP999ms float64
	if lim.Disk != nil {
		diskMB = lim.Disk.MBps()
	}
	sync := "paced write+fdatasync"
	if lim.Sync != nil {
		syncP50ms, syncP99ms, syncP999ms = float64(lim.Sync.P50)/1e6, float64(lim.Sync.P99)/1e6, float64(lim.Sync.P999)/1e6
		sync = fmt.Sprintf("%d files, %d B write+fdatasync at %d/s", lim.Sync.Files, lim.Sync.RecordSize, lim.Sync.Rate)
	}
	if lim.TCP != nil {
		tcpMB = lim.TCP.MBps()
	}
	diskName := "disk write+fdatasync"
	if lim.Disk != nil {
		diskName = fmt.Sprintf("disk write, fdatasync every %d MiB", lim.Disk.SyncEvery>>20)
	}
	msOf := func(d time.Duration) float64 { return float64(d) / 1e6 }
	if c.Records > 0 {
		add("produce", "MB/s", true, diskMB, diskName, func(r Result) float64 { return r.Produce.MBps() })
		add("produce", "rec/s", true, diskMB*recPerMB, diskName, func(r Result) float64 { return r.Produce.RecordsPerSec() })
		consMB, consName := tcpMB, "loopback TCP"
		if lim.Disk != nil && lim.Disk.ReadMBps() > 0 && (tcpMB == 0 || lim.Disk.ReadMBps() < tcpMB) {
			consMB, consName = lim.Disk.ReadMBps(), "disk sequential read, page cache dropped"
		}
		if c.WarmConsume {
			add("consume, cache warm", "MB/s", true, tcpMB, "loopback TCP", func(r Result) float64 { return r.ConsumeWarm.MBps() })
		}
		add("consume", "MB/s", true, consMB, consName, func(r Result) float64 { return r.Consume.MBps() })
		add("consume", "rec/s", true, consMB*recPerMB, consName, func(r Result) float64 { return r.Consume.RecordsPerSec() })
	}
	if c.LatencyFor > 0 {
		add("sent rate", "rec/s", true, 0, "", func(r Result) float64 { return r.Latency.AchievedRate })
		add("ack p50", "ms", false, syncP50ms, sync, func(r Result) float64 { return msOf(r.Latency.AckP50) })
		add("ack p99", "ms", false, syncP99ms, sync, func(r Result) float64 { return msOf(r.Latency.AckP99) })
		add("ack p99.9", "ms", false, syncP999ms, sync, func(r Result) float64 { return msOf(r.Latency.AckP999) })
		add("e2e p50", "ms", false, syncP50ms, sync, func(r Result) float64 { return msOf(r.Latency.P50) })
		add("e2e p99", "ms", false, syncP99ms, sync, func(r Result) float64 { return msOf(r.Latency.P99) })
		add("e2e p99.9", "ms", false, syncP999ms, sync, func(r Result) float64 { return msOf(r.Latency.P999) })
		add("e2e max", "ms", false, 0, "", func(r Result) float64 { return msOf(r.Latency.Max) })
		add("received", "records", true, 0, "", func(r Result) float64 { return float64(r.Latency.Received) })
	}
	if lim.Object != nil {
		name := fmt.Sprintf("MinIO %d MiB objects, minio-go", lim.Object.ObjectSize>>20)
		rows = append(rows,
			Row{Metric: "upload to bucket", Unit: "MB/s", HigherIsBetter: true, Limit: lim.Object.PutMBps(), LimitName: name + " PUT", Pending: true},
			Row{Metric: "replay from bucket", Unit: "MB/s", HigherIsBetter: true, Limit: lim.Object.GetMBps(), LimitName: name + " GET", Pending: true})
	}
	return rows
}

// WriteJSON writes the comparison as indented JSON.
func (cmp *Comparison) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(cmp)
}

func fmtVal(v float64, unit string) string {
	switch unit {
	case "MB/s":
		return fmt.Sprintf("%.1f", v)
	case "ms":
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

// WriteText prints the machine, the limits, one table (a column per target, then the limit, then
// each non-peer target's ratio to the peer, then each target's ratio to the limit), per-target
// load and errors, and what is pending.
func (cmp *Comparison) WriteText(w io.Writer) {
	m := cmp.Machine
	fmt.Fprintf(w, "\nmachine: %d CPUs, %s memory, kernel %s, %s; data dir %s\n", m.NumCPU, m.MemTotal, m.Kernel, m.GoVersion, m.DataDir)
	fmt.Fprintf(w, "load average at start %.2f %.2f %.2f, at end %.2f %.2f %.2f (shared machine: other work runs concurrently)\n",
		m.LoadStart[0], m.LoadStart[1], m.LoadStart[2], m.LoadEnd[0], m.LoadEnd[1], m.LoadEnd[2])
	c := cmp.Workload
	fmt.Fprintf(w, "workload: %d B records, acks=%s, linger=%s, batch.max.bytes=%d, compression=%s, partitions=%d; "+
		"throughput phases %d records each; latency phase %d records/s for %s\n",
		c.RecordSize, c.Acks, c.Linger, c.BatchMaxBytes, c.Compression, c.Partitions, c.Records, c.Rate, c.LatencyFor)
	l := cmp.Limits
	fmt.Fprintln(w, "machine limits (same invocation):")
	if l.Disk != nil {
		fmt.Fprintf(w, "  disk: %d MiB sequential in 1 MiB writes, fdatasync every %d MiB: %.1f MB/s; read back (page cache dropped): %.1f MB/s; fdatasync after a 4 KiB append (%d×): p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
			l.Disk.Bytes>>20, l.Disk.SyncEvery>>20, l.Disk.MBps(), l.Disk.ReadMBps(), l.Disk.SmallSyncs,
			float64(l.Disk.SmallSyncP50)/1e6, float64(l.Disk.SmallSyncP99)/1e6, float64(l.Disk.SmallSyncMax)/1e6)
	} else {
		fmt.Fprintf(w, "  disk: not measured %s\n", l.DiskErr)
	}
	if l.Sync != nil {
		fmt.Fprintf(w, "  fdatasync floor: %d files (one per partition), %d B write+fdatasync each, %d/s in total (%d samples): p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms\n",
			l.Sync.Files, l.Sync.RecordSize, l.Sync.Rate, l.Sync.Samples, float64(l.Sync.P50)/1e6, float64(l.Sync.P99)/1e6, float64(l.Sync.P999)/1e6, float64(l.Sync.Max)/1e6)
	} else {
		fmt.Fprintf(w, "  fdatasync floor: not measured %s\n", l.SyncErr)
	}
	if l.TCP != nil {
		fmt.Fprintf(w, "  loopback TCP (one Go stream, 1 MiB writes, %.1fs): %.1f MB/s\n", l.TCP.Elapsed.Seconds(), l.TCP.MBps())
	} else {
		fmt.Fprintf(w, "  loopback TCP: not measured %s\n", l.TCPErr)
	}
	if l.Object != nil {
		fmt.Fprintf(w, "  MinIO (loopback, minio-go, %d × %d MiB objects): PUT %.1f MB/s, GET %.1f MB/s\n",
			l.Object.Objects, l.Object.ObjectSize>>20, l.Object.PutMBps(), l.Object.GetMBps())
	} else {
		fmt.Fprintf(w, "  MinIO: not measured (%s)\n", l.ObjectErr)
	}
	fmt.Fprintln(w)

	if len(cmp.Targets) > 0 {
		cmp.writeTable(w)
	}
	for _, t := range cmp.Targets {
		fmt.Fprintf(w, "%-16s %s; load1 %.2f → %.2f", t.Name, t.Desc, t.LoadBefore, t.LoadAfter)
		if t.Err != "" {
			fmt.Fprintf(w, "; FAILED: %s", t.Err)
		}
		fmt.Fprintln(w)
	}
	if cmp.Tier != nil {
		writeTier(w, cmp.Tier, cmp.TierRows)
	}
	for _, p := range cmp.Pending {
		fmt.Fprintf(w, "pending: %s\n", p)
	}
}

// writeTable prints the targets table (a column per target, then the limit, then the ratios).
func (cmp *Comparison) writeTable(w io.Writer) {
	var ok []Named
	for _, t := range cmp.Targets {
		if t.Err == "" {
			ok = append(ok, t)
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "metric\tunit\t")
	for _, t := range ok {
		fmt.Fprintf(tw, "%s\t", t.Name)
	}
	fmt.Fprint(tw, "limit\t")
	for _, t := range ok {
		if t.Name != cmp.Peer {
			fmt.Fprintf(tw, "%s/%s\t", t.Name, cmp.Peer)
		}
	}
	// Ratios to the limit in the text only for the peer and non-kfake targets (all are in the JSON).
	var limT []Named
	for _, t := range ok {
		if t.Name == cmp.Peer || !strings.HasPrefix(t.Name, "kfake") {
			limT = append(limT, t)
		}
	}
	for _, t := range limT {
		fmt.Fprintf(tw, "%s/limit\t", t.Name)
	}
	fmt.Fprintln(tw)
	for _, r := range cmp.Rows {
		byT := map[string]Cell{}
		for _, cl := range r.Cells {
			byT[cl.Target] = cl
		}
		fmt.Fprintf(tw, "%s\t%s\t", r.Metric, r.Unit)
		for _, t := range ok {
			if r.Pending {
				fmt.Fprint(tw, "pending\t")
				continue
			}
			fmt.Fprintf(tw, "%s\t", fmtVal(byT[t.Name].Value, r.Unit))
		}
		if r.Limit > 0 {
			fmt.Fprintf(tw, "%s\t", fmtVal(r.Limit, r.Unit))
		} else {
			fmt.Fprint(tw, "-\t")
		}
		ratio := func(v float64) string {
			if r.Pending {
				return "pending"
			}
			if v == 0 {
				return "-"
			}
			return fmt.Sprintf("%.2f", v)
		}
		for _, t := range ok {
			if t.Name != cmp.Peer {
				fmt.Fprintf(tw, "%s\t", ratio(byT[t.Name].VsPeer))
			}
		}
		for _, t := range limT {
			fmt.Fprintf(tw, "%s\t", ratio(byT[t.Name].VsLimit))
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nlimits: produce = disk write with periodic fdatasync; consume = the lower of disk sequential read (page cache dropped) and loopback TCP; ack/e2e percentiles = the same percentile of the paced fdatasync floor (ratio > 1: slower than that floor)")
}
