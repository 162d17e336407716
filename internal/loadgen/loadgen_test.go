package loadgen

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// The load generator is checked against kfake: every produced record must be consumed back and
// every latency sample accounted for.
func TestRunAgainstKfake(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()

	c := DefaultConfig()
	c.Brokers = cluster.ListenAddrs()
	c.Partitions = 3
	c.Records = 2000
	c.RecordSize = 200
	c.Rate = 500
	c.LatencyFor = 500 * time.Millisecond
	c.Compression = "lz4"
	c.Timeout = 60 * time.Second

	var log bytes.Buffer
	res, err := Run(context.Background(), c, &log)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, log.String())
	}
	if res.Produce.Records != 2000 || res.Produce.Bytes != 2000*200 {
		t.Fatalf("produce: %+v", res.Produce)
	}
	if res.Consume.Records != 2000 {
		t.Fatalf("consume: %+v", res.Consume)
	}
	l := res.Latency
	if l.Sent < 200 || l.Received != l.Sent-l.ProduceErrors || l.ProduceErrors != 0 {
		t.Fatalf("latency phase: %+v", l)
	}
	if l.P50 <= 0 || l.P50 > l.P99 || l.P99 > l.P999 || l.P999 > l.Max {
		t.Fatalf("percentiles out of order: %+v", l)
	}

	var out bytes.Buffer
	Report(&out, c, Named{"a", res}, Named{"b", res})
	if !strings.Contains(out.String(), "e2e p99") || !strings.Contains(out.String(), "1.00") {
		t.Fatalf("report:\n%s", out.String())
	}
}

func TestConfigValidate(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "no brokers") {
		t.Fatalf("want no brokers error, got %v", err)
	}
	c.Brokers = []string{"127.0.0.1:1"}
	c.Acks = "2"
	c.Compression = "brotli"
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "acks") || !strings.Contains(err.Error(), "compression") {
		t.Fatalf("got %v", err)
	}
}
