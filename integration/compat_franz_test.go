package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var franzCodecs = map[string]kgo.CompressionCodec{
	"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
	"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
}

// TestCompatFranzGo: franz-go kadm creates the topics, kgo produces (idempotent, its default) with
// every codec and consumes back.
func TestCompatFranzGo(t *testing.T) {
	n := startNode(t, "", groupNodeArgs...)
	logVersion(t, "franz-go", goModVersion("github.com/twmb/franz-go")+" (kadm "+goModVersion("github.com/twmb/franz-go/pkg/kadm")+")")
	adm := kadm.NewClient(n.client(t))
	res := franzRoundTrip(t, n, allCodecs)
	checkCompat(t, n, res, allCodecs, "kadm CreateTopics")

	seedGroupTopic(t, n)
	checkGroup(t, n, "compat-franz-go", franzGroup(t, n, "compat-franz-go"))

	// The same scenario through the KIP-848 protocol (ConsumerGroupHeartbeat, server-side assignment):
	// matrix cell "group_kip848". Same topic, a new group.
	t.Run("group_kip848", func(t *testing.T) {
		res := franzGroup(t, n, "compat-franz-go-848", kgo.ServerSideBalancer(), kgo.Balancers(kgo.RangeBalancer()))
		checkGroup(t, n, "compat-franz-go-848", res)
		// The group really used the new protocol: ListGroups v5 filtered on type "consumer" names it.
		req := kmsg.NewPtrListGroupsRequest()
		req.TypesFilter = []string{"consumer"}
		resp, err := req.RequestWith(testCtx(t), n.client(t))
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, g := range resp.Groups {
			found = found || g.Group == "compat-franz-go-848"
		}
		if !found {
			t.Errorf("ListGroups(type=consumer) = %+v: the KIP-848 group is missing (did the client fall back to classic?)", resp.Groups)
		}
	})

	clusterCell(t, func(t *testing.T, n *node) {
		res := franzRoundTrip(t, n, []string{"none"})
		checkCompat(t, n, res, []string{"none"}, "kadm CreateTopics")
		checkSpread(t, n, compatTopic("none"))
		seedGroupTopic(t, n)
		checkGroup(t, n, "compat-franz-go", franzGroup(t, n, "compat-franz-go"))
	})

	replayCell(t, franzReplay)

	base := seedTimeTopic(t, n)
	ctx := testCtx(t) // after the cells above, however long they took
	got, errs := map[int64]int64{}, []string(nil)
	for _, ts := range timeQueryList(base) {
		lo, err := adm.ListOffsetsAfterMilli(ctx, ts, timeTopic)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		if o, ok := lo.Lookup(timeTopic, 0); ok && o.Err == nil {
			got[ts] = o.Offset
		} else if ok {
			errs = append(errs, o.Err.Error())
		}
	}
	checkTimes(t, base, got, errs)
}

// franzRoundTrip: kadm creates one topic per codec (and creates+deletes compat-delete), kgo produces
// with each codec and reads everything back.
func franzRoundTrip(t *testing.T, n *node, codecs []string) *compatResult {
	res := newCompatResult("franz-go", goModVersion("github.com/twmb/franz-go"))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	adm := kadm.NewClient(n.client(t))
	for _, c := range codecs {
		r, err := adm.CreateTopic(ctx, 3, compatRF, nil, compatTopic(c))
		if err == nil {
			err = r.Err
		}
		res.Created[compatTopic(c)] = errString(err)
	}
	res.Deleted = map[string]string{compatDeleteTopic: errString(func() error {
		if r, err := adm.CreateTopic(ctx, 3, compatRF, nil, compatDeleteTopic); err != nil || r.Err != nil {
			return fmt.Errorf("create: %v %v", err, r.Err)
		}
		r, err := adm.DeleteTopic(ctx, compatDeleteTopic)
		if err == nil {
			err = r.Err
		}
		return err
	}())}
	for _, c := range codecs {
		cl := n.client(t, kgo.ProducerBatchCompression(franzCodecs[c]), kgo.ProducerLinger(5*time.Millisecond))
		var recs []*kgo.Record
		for i := 0; i < compatN; i++ {
			r := &kgo.Record{Topic: compatTopic(c), Key: []byte(compatKey(i)), Value: []byte(compatValue("franz-go", c, i))}
			for _, h := range compatHeaders(c, i) {
				r.Headers = append(r.Headers, kgo.RecordHeader{Key: h[0], Value: []byte(h[1])})
			}
			recs = append(recs, r)
		}
		res.Produced[c] = errString(cl.ProduceSync(ctx, recs...).FirstErr())
	}
	for _, c := range codecs {
		cl := n.client(t, kgo.ConsumeTopics(compatTopic(c)), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		got := 0
		for got < compatN && ctx.Err() == nil {
			cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
				cr := compatRecord{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: string(r.Key), Value: string(r.Value)}
				for _, h := range r.Headers {
					cr.Headers = append(cr.Headers, [2]string{h.Key, string(h.Value)})
				}
				res.Consumed = append(res.Consumed, cr)
				got++
			})
		}
	}
	return res
}

// franzGroup: kgo group consumers with autocommit off; CommitRecords for what was processed. extra
// options select the protocol (ServerSideBalancer: KIP-848).
func franzGroup(t *testing.T, n *node, group string, extra ...kgo.Opt) *groupResult {
	res := &groupResult{Version: goModVersion("github.com/twmb/franz-go")}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	consume := func(limit int, commit bool) []compatRecord {
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(n.kafka), kgo.ConsumerGroup(group), kgo.ConsumeTopics(groupTopic),
			kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, extra...)...)
		if err != nil {
			res.Errors = append(res.Errors, err.Error())
			return nil
		}
		defer cl.Close() // leaves the group
		var taken []*kgo.Record
		for len(taken) < limit && ctx.Err() == nil {
			fs := cl.PollRecords(ctx, limit-len(taken))
			fs.EachError(func(topic string, p int32, err error) {
				if ctx.Err() == nil {
					res.Errors = append(res.Errors, fmt.Sprintf("fetch %s/%d: %v", topic, p, err))
				}
			})
			taken = append(taken, fs.Records()...)
		}
		if commit {
			if err := cl.CommitRecords(ctx, taken...); err != nil {
				res.Errors = append(res.Errors, "CommitRecords: "+err.Error())
			}
		}
		var out []compatRecord
		for _, r := range taken {
			out = append(out, compatRecord{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: string(r.Key), Value: string(r.Value)})
		}
		return out
	}
	res.First = consume(groupFirst, true)
	res.Second = consume(groupN-groupFirst, false)
	return res
}

// franzReplay: kgo.ProduceSync per round (idempotent); kgo.ConsumePartitions at offset 0 of every
// partition (no group, no reset policy involved: the fetch starts at 0 itself).
var franzReplay = replayClient{
	name: "franz-go",
	produce: func(t *testing.T, n *node) error {
		// Uncompressed like every client's replay records (kgo's default is snappy): the segment
		// sizes, and so the number of segments, then do not depend on the codec.
		cl := n.client(t, kgo.ProducerLinger(5*time.Millisecond), kgo.ProducerBatchCompression(kgo.NoCompression()))
		for r := 0; r < replayRounds; r++ {
			if err := cl.ProduceSync(testCtx(t), replayRecords("franz-go", r)...).FirstErr(); err != nil {
				return fmt.Errorf("round %d: %w", r, err)
			}
		}
		return nil
	},
	consume: func(t *testing.T, n *node) ([]compatRecord, error) {
		at := map[int32]kgo.Offset{}
		for p := int32(0); p < replayPartitions; p++ {
			at[p] = kgo.NewOffset().At(0)
		}
		cl := n.client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{replayTopic: at}))
		ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
		defer cancel()
		var out []compatRecord
		var errs []string
		for len(out) < replayN && ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			fs.EachError(func(topic string, p int32, err error) {
				if ctx.Err() == nil && len(errs) < 5 {
					errs = append(errs, fmt.Sprintf("fetch %s/%d: %v", topic, p, err))
				}
			})
			fs.EachRecord(func(r *kgo.Record) {
				cr := compatRecord{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: string(r.Key), Value: string(r.Value)}
				for _, h := range r.Headers {
					cr.Headers = append(cr.Headers, [2]string{h.Key, string(h.Value)})
				}
				out = append(out, cr)
			})
		}
		if len(errs) > 0 {
			return out, fmt.Errorf("%s", strings.Join(errs, "; "))
		}
		return out, nil
	},
}
