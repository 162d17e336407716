package broker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sediment-io/sediment/meta"
)

// A non-controller broker waits for a topic it does not know yet (its Raft has not applied the
// creation): waitForState returns the first state that has it, or the latest one once the bound
// has passed, or at once when the first state already has it.
func TestWaitForStateCatchesUp(t *testing.T) {
	loads := 0
	load := func() int { loads++; return loads }
	got := waitForState(context.Background(), 0, load, func(s int) bool { return s >= 3 }, time.Minute)
	if got != 3 || loads != 3 {
		t.Fatalf("got state %d after %d loads, want the 3rd", got, loads)
	}
	loads = 0
	if got := waitForState(context.Background(), 7, load, func(s int) bool { return s == 7 }, time.Minute); got != 7 || loads != 0 {
		t.Fatalf("a state that already qualifies: got %d after %d loads", got, loads)
	}
	// Never known (a topic that does not exist): the latest state after the bound.
	got = waitForState(context.Background(), 0, load, func(int) bool { return false }, 30*time.Millisecond)
	if got != loads || loads == 0 {
		t.Fatalf("never qualifying: got %d, %d loads", got, loads)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if got := waitForState(ctx, -1, load, func(int) bool { return false }, time.Minute); got != -1 {
		t.Fatalf("cancelled: got %d, want the state it was given", got)
	}
}

// On a 3-broker cluster, every non-controller broker lists a topic the moment CreateTopics has
// returned from the controller (it waits for its own Raft to apply the creation), and still answers
// UNKNOWN_TOPIC_OR_PARTITION for a topic that does not exist.
func TestMetadataOnFollowersAfterCreate(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three brokers")
	}
	brokers := startReplCluster(t, 3)
	var seeds []string
	for _, b := range brokers {
		seeds = append(seeds, b.Addr())
	}
	var ctrl *Broker
	waitFor(t, "a controller", func() bool { // an election may be under way
		for _, b := range brokers {
			if b.meta.IsController() {
				ctrl = b
				return true
			}
		}
		return false
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ask := func(b *Broker, topic string) int16 {
		t.Helper()
		req := kmsg.NewPtrMetadataRequest()
		req.AllowAutoTopicCreation = false
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(testCtx(t), cl.Broker(int(b.cfg.NodeID)))
		if err != nil || len(resp.Topics) != 1 {
			t.Fatalf("metadata from %d: %v", b.cfg.NodeID, err)
		}
		return resp.Topics[0].ErrorCode
	}
	adm := kadmFor(t, []string{ctrl.Addr()}) // CreateTopics served by the controller
	for i := 0; i < 5; i++ {
		topic := fmt.Sprintf("catchup-%d", i)
		if resp, err := adm.CreateTopic(testCtx(t), 1, 3, nil, topic); err != nil || resp.Err != nil {
			t.Fatalf("create: %v %v", err, resp.Err)
		}
		for _, b := range brokers {
			if code := ask(b, topic); code != 0 {
				t.Fatalf("broker %d right after CreateTopics: %v", b.cfg.NodeID, kerr.ErrorForCode(code))
			}
		}
	}
	for _, b := range brokers {
		if code := ask(b, "no-such-topic"); code != kerr.UnknownTopicOrPartition.Code {
			t.Fatalf("broker %d, a topic that does not exist: %v", b.cfg.NodeID, kerr.ErrorForCode(code))
		}
	}
}

// A dry run (validateOnly) through a non-controller broker answers from the committed metadata, not
// from the broker's own view, which can trail it: CreateTopics refuses a topic the controller has
// just created, and CreatePartitions validates against it instead of answering that it does not exist.
func TestValidateOnlyOnFollowersAfterCreate(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three brokers")
	}
	brokers := startReplCluster(t, 3)
	seeds := brokerAddrs(brokers)
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := 0; i < 10; i++ {
		topic := fmt.Sprintf("dry-%d", i)
		var ctrl *Broker
		waitFor(t, "a controller", func() bool {
			for _, b := range brokers {
				if b.meta.IsController() {
					ctrl = b
					return true
				}
			}
			return false
		})
		// Created through the controller's meta node directly: the call returns once the controller
		// has applied it, and nothing makes the other brokers wait for it.
		if _, err := ctrl.meta.CreateTopic(testCtx(t), meta.TopicSpec{Name: topic, Partitions: 1, ReplicationFactor: 3}); err != nil {
			t.Fatal(err)
		}
		for _, b := range brokers {
			if b == ctrl {
				continue
			}
			ct := kmsg.NewPtrCreateTopicsRequest()
			ct.ValidateOnly = true
			rt := kmsg.NewCreateTopicsRequestTopic()
			rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, 1, 3
			ct.Topics = append(ct.Topics, rt)
			resp, err := ct.RequestWith(testCtx(t), cl.Broker(int(b.cfg.NodeID)))
			if err != nil || len(resp.Topics) != 1 {
				t.Fatalf("CreateTopics from %d: %v", b.cfg.NodeID, err)
			}
			if code := resp.Topics[0].ErrorCode; code != kerr.TopicAlreadyExists.Code {
				t.Fatalf("round %d, broker %d: validateOnly CreateTopics of a topic just created answered %v, want TOPIC_ALREADY_EXISTS", i, b.cfg.NodeID, kerr.ErrorForCode(code))
			}
			cp := kmsg.NewPtrCreatePartitionsRequest()
			cp.ValidateOnly = true
			cpt := kmsg.NewCreatePartitionsRequestTopic()
			cpt.Topic, cpt.Count = topic, 2
			cp.Topics = append(cp.Topics, cpt)
			presp, err := cp.RequestWith(testCtx(t), cl.Broker(int(b.cfg.NodeID)))
			if err != nil || len(presp.Topics) != 1 {
				t.Fatalf("CreatePartitions from %d: %v", b.cfg.NodeID, err)
			}
			if code := presp.Topics[0].ErrorCode; code != 0 {
				t.Fatalf("round %d, broker %d: validateOnly CreatePartitions of a topic just created answered %v, want success", i, b.cfg.NodeID, kerr.ErrorForCode(code))
			}
		}
	}
}
