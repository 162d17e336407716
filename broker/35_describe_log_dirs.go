package broker

// DescribeLogDirs: v0–v4.
//
// Sediment has one log directory per broker (DataDir/logs). Each local partition replica is
// reported with its on-disk size (the sum of its segment files); OffsetLag is 0 (a leader, or a
// follower's lag is not tracked here) and IsFuture false (no intra-broker moves). v4 adds the
// file system's total and usable bytes. Topics nil = every local replica; a requested topic or
// partition not on this broker is simply absent, as in Kafka. Deliberately absent: v5 (IsCordoned).
//
// Remote sizes (issue 7). Kafka's DescribeLogDirs has no field for the bytes a partition holds in
// object storage (KAFKA-19368 proposes RemoteLogSize; no KIP or protocol version carries it yet), so
// Sediment reports them as a second, pseudo log dir named "remote:<store>" (the object store without
// its query parameters, e.g. "remote:s3://bucket/prefix"), listed only when a requested partition
// has remote data: one entry per partition this broker LEADS (the bucket is shared by the
// replicas, so summing over brokers counts it once), Size = the sum of the partition's manifest
// entries (the segment objects' sizes in the bucket), TotalBytes/UsableBytes -1 (unknown). The
// local dir keeps reporting on-disk sizes only, as Kafka does for a tiered partition.

import (
	"context"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.DescribeLogDirs, 0, 4, (*Broker).handleDescribeLogDirs) }

func (b *Broker) handleDescribeLogDirs(ctx context.Context, c *connCtx, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.DescribeLogDirsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeLogDirsResponse)

	want := func(topic string, partition int32) bool { return true }
	if req.Topics != nil {
		asked := map[string]map[int32]bool{}
		for _, t := range req.Topics {
			if asked[t.Topic] == nil {
				asked[t.Topic] = map[int32]bool{}
			}
			for _, p := range t.Partitions {
				asked[t.Topic][p] = true
			}
		}
		want = func(topic string, partition int32) bool { return asked[topic][partition] }
	}

	dir := kmsg.NewDescribeLogDirsResponseDir()
	abs, err := filepath.Abs(filepath.Join(b.cfg.DataDir, "logs"))
	if err != nil {
		abs = filepath.Join(b.cfg.DataDir, "logs")
	}
	dir.Dir = abs
	byTopic := map[string][]kmsg.DescribeLogDirsResponseDirTopicPartition{}
	for _, p := range b.replicas.Partitions() {
		if !want(p.topic, p.index) {
			continue
		}
		var size int64
		for _, s := range p.log.Segments() {
			size += s.Size
		}
		dp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
		dp.Partition, dp.Size = p.index, size
		byTopic[p.topic] = append(byTopic[p.topic], dp)
	}
	dir.Topics = sortedLogDirTopics(byTopic)
	var fs syscall.Statfs_t
	if err := syscall.Statfs(abs, &fs); err == nil {
		dir.TotalBytes = int64(fs.Blocks) * int64(fs.Bsize)
		dir.UsableBytes = int64(fs.Bavail) * int64(fs.Bsize)
	} else {
		dir.ErrorCode = kerr.KafkaStorageError.Code
		dir.TotalBytes, dir.UsableBytes = -1, -1
	}
	resp.Dirs = append(resp.Dirs, dir)
	if rd, ok := b.remoteLogDir(want); ok {
		resp.Dirs = append(resp.Dirs, rd)
	}
	return resp, nil
}

// remoteLogDir is the pseudo log dir reporting the remote bytes of the partitions this broker leads
// (see the file comment); ok=false when none of them has remote data.
func (b *Broker) remoteLogDir(want func(topic string, partition int32) bool) (kmsg.DescribeLogDirsResponseDir, bool) {
	dir := kmsg.NewDescribeLogDirsResponseDir()
	st := b.meta.State()
	byTopic := map[string][]kmsg.DescribeLogDirsResponseDirTopicPartition{}
	for _, p := range b.replicas.Partitions() {
		if !want(p.topic, p.index) || p.checkLeader(-1) != 0 {
			continue
		}
		segs := st.RemoteSegments(p.topicID, p.index)
		if len(segs) == 0 {
			continue
		}
		var size int64
		for _, s := range segs {
			size += s.Size
		}
		dp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
		dp.Partition, dp.Size = p.index, size
		byTopic[p.topic] = append(byTopic[p.topic], dp)
	}
	if len(byTopic) == 0 {
		return dir, false
	}
	dir.Dir = "remote:" + redactStoreURL(b.cfg.ObjectStore)
	dir.Topics = sortedLogDirTopics(byTopic)
	dir.TotalBytes, dir.UsableBytes = -1, -1
	return dir, true
}

// redactStoreURL drops an object store URL's query (endpoint, tuning) for display.
func redactStoreURL(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i]
	}
	return u
}

// sortedLogDirTopics orders topics by name and each topic's partitions by index.
func sortedLogDirTopics(byTopic map[string][]kmsg.DescribeLogDirsResponseDirTopicPartition) []kmsg.DescribeLogDirsResponseDirTopic {
	names := make([]string, 0, len(byTopic))
	for n := range byTopic {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]kmsg.DescribeLogDirsResponseDirTopic, 0, len(names))
	for _, n := range names {
		ps := byTopic[n]
		sort.Slice(ps, func(i, j int) bool { return ps[i].Partition < ps[j].Partition })
		dt := kmsg.NewDescribeLogDirsResponseDirTopic()
		dt.Topic, dt.Partitions = n, ps
		out = append(out, dt)
	}
	return out
}
