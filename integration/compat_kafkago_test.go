package integration

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	kafka "github.com/segmentio/kafka-go"
)

var kafkagoCodecs = map[string]kafka.Compression{
	"none": 0, "gzip": kafka.Gzip, "snappy": kafka.Snappy, "lz4": kafka.Lz4, "zstd": kafka.Zstd,
}

// TestCompatKafkaGo: segmentio/kafka-go's Client.CreateTopics creates the topics, a Writer (hash
// balancer, acks=all) produces with every codec, one Reader per partition reads back.
func TestCompatKafkaGo(t *testing.T) {
	n := startNode(t, "", groupNodeArgs...)
	logVersion(t, "kafka-go", goModVersion("github.com/segmentio/kafka-go"))
	res := kafkagoRoundTrip(t, n, allCodecs)
	checkCompat(t, n, res, allCodecs, "kafka-go Client.CreateTopics")

	seedGroupTopic(t, n)
	checkGroup(t, n, "compat-kafka-go", kafkagoGroup(t, n, "compat-kafka-go"))

	clusterCell(t, func(t *testing.T, n *node) {
		res := kafkagoRoundTrip(t, n, []string{"none"})
		checkCompat(t, n, res, []string{"none"}, "kafka-go Client.CreateTopics")
		checkSpread(t, n, compatTopic("none"))
		seedGroupTopic(t, n)
		checkGroup(t, n, "compat-kafka-go", kafkagoGroup(t, n, "compat-kafka-go"))
	})

	replayCell(t, kafkagoReplay)

	base := seedTimeTopic(t, n)
	got, errs := map[int64]int64{}, []string(nil)
	if conn, err := kafka.DialLeader(testCtx(t), "tcp", n.kafka, timeTopic, 0); err != nil {
		errs = append(errs, err.Error())
	} else {
		for _, ts := range timeQueryList(base) {
			o, err := conn.ReadOffset(time.UnixMilli(ts))
			if err != nil {
				errs = append(errs, err.Error())
				continue
			}
			got[ts] = o
		}
		conn.Close()
	}
	checkTimes(t, base, got, errs)
}

// kafkagoRoundTrip: the round trip of kafka-go (see compat_util_test.go) with codecs.
func kafkagoRoundTrip(t *testing.T, n *node, codecs []string) *compatResult {
	res := newCompatResult("kafka-go", goModVersion("github.com/segmentio/kafka-go"))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	client := &kafka.Client{Addr: kafka.TCP(n.kafka), Timeout: 10 * time.Second}
	var topics []kafka.TopicConfig
	for _, c := range codecs {
		topics = append(topics, kafka.TopicConfig{Topic: compatTopic(c), NumPartitions: 3, ReplicationFactor: int(compatRF)})
	}
	resp, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: topics})
	for _, c := range codecs {
		e := err
		if e == nil {
			e = resp.Errors[compatTopic(c)]
		}
		res.Created[compatTopic(c)] = errString(e)
	}

	res.Deleted = map[string]string{compatDeleteTopic: errString(func() error {
		cr, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: compatDeleteTopic, NumPartitions: 3, ReplicationFactor: int(compatRF)}}})
		if err == nil {
			err = cr.Errors[compatDeleteTopic]
		}
		if err != nil {
			return fmt.Errorf("create: %w", err)
		}
		dr, err := client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{compatDeleteTopic}})
		if err == nil {
			err = dr.Errors[compatDeleteTopic]
		}
		return err
	}())}

	for _, c := range codecs {
		w := &kafka.Writer{
			Addr: kafka.TCP(n.kafka), Topic: compatTopic(c), Balancer: &kafka.Hash{},
			Compression: kafkagoCodecs[c], RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond,
		}
		var msgs []kafka.Message
		for i := 0; i < compatN; i++ {
			m := kafka.Message{Key: []byte(compatKey(i)), Value: []byte(compatValue("kafka-go", c, i))}
			for _, h := range compatHeaders(c, i) {
				m.Headers = append(m.Headers, kafka.Header{Key: h[0], Value: []byte(h[1])})
			}
			msgs = append(msgs, m)
		}
		err := w.WriteMessages(ctx, msgs...)
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		res.Produced[c] = errString(err)
	}

	for _, c := range codecs {
		recs, err := kafkagoConsume(ctx, n, compatTopic(c), 3, kafka.FirstOffset, compatN, 20*time.Second)
		if err != nil {
			t.Logf("consuming %s: %v", compatTopic(c), err) // consume/<codec> judges what was read
		}
		res.Consumed = append(res.Consumed, recs...)
	}
	return res
}

// kafkagoGroup: a kafka-go Reader with GroupID; FetchMessage + CommitMessages (synchronous commits).
func kafkagoGroup(t *testing.T, n *node, group string) *groupResult {
	res := &groupResult{Version: goModVersion("github.com/segmentio/kafka-go")}
	consume := func(limit int, commit bool) []compatRecord {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers: []string{n.kafka}, GroupID: group, Topic: groupTopic, StartOffset: kafka.FirstOffset,
			MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 200 * time.Millisecond,
			HeartbeatInterval: time.Second, SessionTimeout: 10 * time.Second, RebalanceTimeout: 5 * time.Second,
		})
		defer r.Close()
		var msgs []kafka.Message
		var out []compatRecord
		for len(msgs) < limit {
			m, err := r.FetchMessage(ctx)
			if err != nil {
				res.Errors = append(res.Errors, "FetchMessage: "+err.Error())
				break
			}
			msgs = append(msgs, m)
			out = append(out, compatRecord{Topic: m.Topic, Partition: int32(m.Partition), Offset: m.Offset, Key: string(m.Key), Value: string(m.Value)})
		}
		if commit {
			if err := r.CommitMessages(ctx, msgs...); err != nil {
				res.Errors = append(res.Errors, "CommitMessages: "+err.Error())
			}
		}
		return out
	}
	res.First = consume(groupFirst, true)
	res.Second = consume(groupN-groupFirst, false)
	return res
}

// kafkagoReplay: a Writer (Hash balancer, acks=all) WriteMessages per round; a Reader per partition
// with SetOffset(0).
var kafkagoReplay = replayClient{
	name: "kafka-go",
	produce: func(t *testing.T, n *node) error {
		w := &kafka.Writer{Addr: kafka.TCP(n.kafka), Topic: replayTopic, Balancer: &kafka.Hash{},
			RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond}
		for r := 0; r < replayRounds; r++ {
			var msgs []kafka.Message
			for _, rec := range replayRecords("kafka-go", r) {
				m := kafka.Message{Key: rec.Key, Value: rec.Value}
				for _, h := range rec.Headers {
					m.Headers = append(m.Headers, kafka.Header{Key: h.Key, Value: h.Value})
				}
				msgs = append(msgs, m)
			}
			if err := w.WriteMessages(testCtx(t), msgs...); err != nil {
				w.Close()
				return fmt.Errorf("round %d: %w", r, err)
			}
		}
		return w.Close()
	},
	consume: func(t *testing.T, n *node) ([]compatRecord, error) {
		return kafkagoConsume(context.Background(), n, replayTopic, replayPartitions, 0, replayN, 45*time.Second)
	},
}

// kafkagoConsume reads partitions 0..parts-1 of topic from offset with a Reader each until want
// records arrived or the timeout, and returns them with the readers' errors.
func kafkagoConsume(ctx context.Context, n *node, topic string, parts int, offset int64, want int, timeout time.Duration) ([]compatRecord, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	col := &recordCollector{want: want, cancel: cancel}
	var wg sync.WaitGroup
	for p := 0; p < parts; p++ {
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers: []string{n.kafka}, Topic: topic, Partition: p,
			MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 200 * time.Millisecond,
		})
		if err := r.SetOffset(offset); err != nil {
			r.Close()
			col.fail(fmt.Errorf("SetOffset(%d) on %s p%d: %w", offset, topic, p, err))
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.Close()
			for {
				m, err := r.ReadMessage(ctx)
				if err != nil {
					if ctx.Err() == nil {
						col.fail(fmt.Errorf("ReadMessage(%s p%d): %w", topic, p, err))
					}
					return
				}
				cr := compatRecord{Topic: m.Topic, Partition: int32(m.Partition), Offset: m.Offset, Key: string(m.Key), Value: string(m.Value)}
				for _, h := range m.Headers {
					cr.Headers = append(cr.Headers, [2]string{h.Key, string(h.Value)})
				}
				col.add(cr)
			}
		}()
	}
	wg.Wait()
	return col.result()
}
