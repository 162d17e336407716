package integration

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

var saramaCodecs = map[string]sarama.CompressionCodec{
	"none": sarama.CompressionNone, "gzip": sarama.CompressionGZIP, "snappy": sarama.CompressionSnappy,
	"lz4": sarama.CompressionLZ4, "zstd": sarama.CompressionZSTD,
}

// TestCompatSarama: IBM/sarama's ClusterAdmin creates the topics, an idempotent SyncProducer
// (acks=all, hash partitioner) produces with every codec, a partition consumer reads back.
func TestCompatSarama(t *testing.T) {
	n := startNode(t, "", groupNodeArgs...)
	logVersion(t, "sarama", goModVersion("github.com/IBM/sarama"))
	addrs := []string{n.kafka}
	res := saramaRoundTrip(t, n, allCodecs)
	checkCompat(t, n, res, allCodecs, "sarama ClusterAdmin.CreateTopic")

	seedGroupTopic(t, n)
	checkGroup(t, n, "compat-sarama", saramaGroup(t, n, "compat-sarama"))

	clusterCell(t, func(t *testing.T, n *node) {
		res := saramaRoundTrip(t, n, []string{"none"})
		checkCompat(t, n, res, []string{"none"}, "sarama ClusterAdmin.CreateTopic")
		checkSpread(t, n, compatTopic("none"))
		seedGroupTopic(t, n)
		checkGroup(t, n, "compat-sarama", saramaGroup(t, n, "compat-sarama"))
	})

	replayCell(t, saramaReplay)

	base := seedTimeTopic(t, n)
	got, errs := map[int64]int64{}, []string(nil)
	if client, err := sarama.NewClient(addrs, saramaConfig("")); err != nil {
		errs = append(errs, err.Error())
	} else {
		for _, ts := range timeQueryList(base) {
			o, err := client.GetOffset(timeTopic, 0, ts)
			if err != nil {
				errs = append(errs, err.Error())
				continue
			}
			got[ts] = o
		}
		client.Close()
	}
	checkTimes(t, base, got, errs)
}

// saramaConfig: sarama at protocol version 3.6, idempotent acks=all producer, codec if set.
func saramaConfig(codec string) *sarama.Config {
	c := sarama.NewConfig()
	c.ClientID = "sediment-compat-sarama"
	c.Version = sarama.V3_6_0_0
	c.Producer.Return.Successes = true
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Idempotent = true
	c.Net.MaxOpenRequests = 1
	c.Producer.Flush.Frequency = 5 * time.Millisecond
	if codec != "" {
		c.Producer.Compression = saramaCodecs[codec]
	}
	c.Consumer.Return.Errors = true
	return c
}

// saramaRoundTrip: the round trip of sarama (see compat_util_test.go) with codecs.
func saramaRoundTrip(t *testing.T, n *node, codecs []string) *compatResult {
	res := newCompatResult("sarama", goModVersion("github.com/IBM/sarama"))

	addrs := []string{n.kafka}

	admin, err := sarama.NewClusterAdmin(addrs, saramaConfig(""))
	if err != nil {
		t.Fatalf("sarama.NewClusterAdmin: %v", err)
	}
	for _, c := range codecs {
		err := admin.CreateTopic(compatTopic(c), &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: compatRF}, false)
		res.Created[compatTopic(c)] = errString(err)
	}
	res.Deleted = map[string]string{compatDeleteTopic: errString(func() error {
		if err := admin.CreateTopic(compatDeleteTopic, &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: compatRF}, false); err != nil {
			return fmt.Errorf("create: %w", err)
		}
		return admin.DeleteTopic(compatDeleteTopic)
	}())}
	admin.Close()

	for _, c := range codecs {
		res.Produced[c] = errString(func() error {
			p, err := sarama.NewSyncProducer(addrs, saramaConfig(c))
			if err != nil {
				return err
			}
			defer p.Close()
			var msgs []*sarama.ProducerMessage
			for i := 0; i < compatN; i++ {
				m := &sarama.ProducerMessage{Topic: compatTopic(c), Key: sarama.StringEncoder(compatKey(i)), Value: sarama.StringEncoder(compatValue("sarama", c, i))}
				for _, h := range compatHeaders(c, i) {
					m.Headers = append(m.Headers, sarama.RecordHeader{Key: []byte(h[0]), Value: []byte(h[1])})
				}
				msgs = append(msgs, m)
			}
			return p.SendMessages(msgs)
		}())
	}

	consumer, err := sarama.NewConsumer(addrs, saramaConfig(""))
	if err != nil {
		t.Fatalf("sarama.NewConsumer: %v", err)
	}
	defer consumer.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, c := range codecs {
		parts, err := consumer.Partitions(compatTopic(c))
		if err != nil {
			t.Errorf("Partitions(%s): %v", compatTopic(c), err)
			continue
		}
		recs, err := saramaConsume(ctx, consumer, compatTopic(c), parts, sarama.OffsetOldest, compatN)
		if err != nil {
			t.Logf("consuming %s: %v", compatTopic(c), err) // consume/<codec> judges what was read
		}
		res.Consumed = append(res.Consumed, recs...)
	}
	return res
}

// saramaGroup: sarama ConsumerGroup sessions with auto-commit off; MarkMessage + session.Commit()
// for what was processed.
func saramaGroup(t *testing.T, n *node, group string) *groupResult {
	res := &groupResult{Version: goModVersion("github.com/IBM/sarama")}
	consume := func(limit int, commit bool) []compatRecord {
		cfg := sarama.NewConfig()
		cfg.ClientID = "sediment-compat-sarama"
		cfg.Version = sarama.V3_6_0_0
		cfg.Consumer.Offsets.AutoCommit.Enable = false
		cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
		cfg.Consumer.Return.Errors = true
		cg, err := sarama.NewConsumerGroup([]string{n.kafka}, group, cfg)
		if err != nil {
			res.Errors = append(res.Errors, "NewConsumerGroup: "+err.Error())
			return nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		h := &saramaHandler{limit: limit, commit: commit, done: cancel}
		go func() {
			for e := range cg.Errors() {
				if ctx.Err() == nil {
					h.mu.Lock()
					res.Errors = append(res.Errors, "group error: "+e.Error())
					h.mu.Unlock()
				}
			}
		}()
		for ctx.Err() == nil {
			if err := cg.Consume(ctx, []string{groupTopic}, h); err != nil && ctx.Err() == nil {
				res.Errors = append(res.Errors, "Consume: "+err.Error())
				break
			}
		}
		if err := cg.Close(); err != nil {
			res.Errors = append(res.Errors, "Close: "+err.Error())
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.commitErr != nil {
			res.Errors = append(res.Errors, "Commit: "+h.commitErr.Error())
		}
		return h.got
	}
	res.First = consume(groupFirst, true)
	res.Second = consume(groupN-groupFirst, false)
	return res
}

type saramaHandler struct {
	limit     int
	commit    bool
	done      func()
	mu        sync.Mutex
	got       []compatRecord
	commitErr error
}

func (h *saramaHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *saramaHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *saramaHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for m := range claim.Messages() {
		h.mu.Lock()
		if len(h.got) >= h.limit {
			h.mu.Unlock()
			continue // processed enough; wait for the session to end without marking more
		}
		h.got = append(h.got, compatRecord{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Key: string(m.Key), Value: string(m.Value)})
		sess.MarkMessage(m, "")
		if len(h.got) == h.limit {
			if h.commit {
				sess.Commit() // synchronous with auto-commit off
			}
			h.done()
		}
		h.mu.Unlock()
	}
	return nil
}

// saramaReplay: an idempotent SyncProducer.SendMessages per round; a PartitionConsumer per partition
// started at offset 0.
var saramaReplay = replayClient{
	name: "sarama",
	produce: func(t *testing.T, n *node) error {
		p, err := sarama.NewSyncProducer([]string{n.kafka}, saramaConfig("none"))
		if err != nil {
			return err
		}
		defer p.Close()
		for r := 0; r < replayRounds; r++ {
			var msgs []*sarama.ProducerMessage
			for _, rec := range replayRecords("sarama", r) {
				m := &sarama.ProducerMessage{Topic: rec.Topic, Key: sarama.ByteEncoder(rec.Key), Value: sarama.ByteEncoder(rec.Value)}
				for _, h := range rec.Headers {
					m.Headers = append(m.Headers, sarama.RecordHeader{Key: []byte(h.Key), Value: h.Value})
				}
				msgs = append(msgs, m)
			}
			if err := p.SendMessages(msgs); err != nil {
				return fmt.Errorf("round %d: %w", r, err)
			}
		}
		return nil
	},
	consume: func(t *testing.T, n *node) ([]compatRecord, error) {
		consumer, err := sarama.NewConsumer([]string{n.kafka}, saramaConfig(""))
		if err != nil {
			return nil, err
		}
		defer consumer.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
		defer cancel()
		return saramaConsume(ctx, consumer, replayTopic, []int32{0, 1, 2}, 0, replayN)
	},
}

// saramaConsume reads parts of topic from offset with a PartitionConsumer each until want records
// arrived or ctx ends, and returns them with the consumers' errors.
func saramaConsume(ctx context.Context, consumer sarama.Consumer, topic string, parts []int32, offset int64, want int) ([]compatRecord, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	col := &recordCollector{want: want, cancel: cancel}
	var wg sync.WaitGroup
	for _, p := range parts {
		pc, err := consumer.ConsumePartition(topic, p, offset)
		if err != nil {
			col.fail(fmt.Errorf("ConsumePartition(%s, %d, %d): %w", topic, p, offset, err))
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer pc.AsyncClose()
			for {
				select {
				case <-ctx.Done():
					return
				case e := <-pc.Errors():
					col.fail(e)
				case m := <-pc.Messages():
					cr := compatRecord{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Key: string(m.Key), Value: string(m.Value)}
					for _, h := range m.Headers {
						cr.Headers = append(cr.Headers, [2]string{string(h.Key), string(h.Value)})
					}
					col.add(cr)
				}
			}
		}()
	}
	wg.Wait()
	return col.result()
}
