package broker

// DescribeLogDirs: v0–v4.
//
// Sediment has one log directory per broker (DataDir/logs). Each local partition replica is
// reported with its on-disk size (the sum of its segment files); OffsetLag is 0 (a leader, or a
// follower's lag is not tracked here) and IsFuture false (no intra-broker moves). v4 adds the
// file system's total and usable bytes. Topics nil = every local replica; a requested topic or
// partition not on this broker is simply absent, as in Kafka. Deliberately absent: v5 (IsCordoned).

import (
	"context"
	"path/filepath"
	"sort"
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
	names := make([]string, 0, len(byTopic))
	for n := range byTopic {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		ps := byTopic[n]
		sort.Slice(ps, func(i, j int) bool { return ps[i].Partition < ps[j].Partition })
		dt := kmsg.NewDescribeLogDirsResponseDirTopic()
		dt.Topic, dt.Partitions = n, ps
		dir.Topics = append(dir.Topics, dt)
	}
	var fs syscall.Statfs_t
	if err := syscall.Statfs(abs, &fs); err == nil {
		dir.TotalBytes = int64(fs.Blocks) * int64(fs.Bsize)
		dir.UsableBytes = int64(fs.Bavail) * int64(fs.Bsize)
	} else {
		dir.ErrorCode = kerr.KafkaStorageError.Code
		dir.TotalBytes, dir.UsableBytes = -1, -1
	}
	resp.Dirs = append(resp.Dirs, dir)
	return resp, nil
}
