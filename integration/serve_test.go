package integration

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestServeInvalidFlagsExitNamingThem(t *testing.T) {
	cases := []struct {
		env  []string
		args []string
		name string // what the message must name
	}{
		{nil, []string{"serve", "--node-id", "abc"}, "--node-id"},
		{nil, []string{"serve", "--listen", "nocolon"}, "--listen"},
		{nil, []string{"serve", "--voters", "1=127.0.0.1:x"}, "--voters"},
		{nil, []string{"serve", "--object-store", "ftp://x"}, "--object-store"},
		{nil, []string{"serve", "--object-store", "s3://b?bogus=1"}, "--object-store"},
		{nil, []string{"serve", "--conf", "no.such.config=1"}, "no.such.config"},
		{nil, []string{"serve", "--conf", "num.partitions=0"}, "num.partitions"},
		{nil, []string{"serve", "--conf", "log.flush.policy=sometimes"}, "log.flush.policy"},
		{nil, []string{"serve", "--no-such-flag"}, "no-such-flag"},
		{nil, []string{"serve", "--log-level", "loud"}, "--log-level"},
		{[]string{"SEDIMENT_NODE_ID=-1"}, []string{"serve"}, "SEDIMENT_NODE_ID"},
		{[]string{"SEDIMENT_CONF=num.partitions=x"}, []string{"serve"}, "SEDIMENT_CONF"},
		{nil, []string{"nosuchcommand"}, "nosuchcommand"},
	}
	for _, c := range cases {
		t.Run(strings.Join(append(c.env, c.args...), " "), func(t *testing.T) {
			out, code := runSediment(t, c.env, c.args...)
			if code == 0 {
				t.Fatalf("exit 0 for %v; output:\n%s", c.args, out)
			}
			if !strings.Contains(out, c.name) {
				t.Fatalf("message does not name %q:\n%s", c.name, out)
			}
		})
	}
}

func TestServeHelpDocumentsEveryFlag(t *testing.T) {
	out, code := runSediment(t, nil, "serve", "--help")
	if code != 0 {
		t.Fatalf("--help exit %d", code)
	}
	for _, f := range []string{"-node-id", "-data-dir", "-listen", "-advertise", "-raft-listen", "-http-listen",
		"-voters", "-object-store", "-conf", "-config", "SEDIMENT_", "log.retention.ms", "num.partitions",
		"auto.create.topics.enable", "socket.request.max.bytes", "log.flush.policy"} {
		if !strings.Contains(out, f) {
			t.Errorf("--help does not mention %s", f)
		}
	}
}

func TestServeConfigFileAndEnv(t *testing.T) {
	dir := t.TempDir()
	cfgFile := dir + "/sediment.conf"
	writeFile(t, cfgFile, "# a Kafka-style properties file\nnode-id = 7\nnum.partitions = 3\n")
	n := startNode(t, "", "--config", cfgFile)
	adm := n.admin(t)
	ctx := testCtx(t)
	bm, err := adm.BrokerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(bm.Brokers) != 1 || bm.Brokers[0].NodeID != 7 {
		t.Fatalf("node id from config file: %+v", bm.Brokers)
	}
	// num.partitions=3 from the file applies to CreateTopics with -1.
	r, err := adm.CreateTopic(ctx, -1, -1, nil, "fromfile")
	if err != nil || r.Err != nil || r.NumPartitions != 3 {
		t.Fatalf("create: %v %+v", err, r)
	}
}

func TestServeSIGTERMShutsDownCleanly(t *testing.T) {
	n := startNode(t, "")
	ctx := testCtx(t)
	cl := n.client(t, kgo.DefaultProduceTopic("durable"), kgo.AllowAutoTopicCreation())
	for i := 0; i < 100; i++ {
		r := &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf("value-%d", i))}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cl.Close()
	if code := n.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit code %d after SIGTERM", code)
	}
	if !strings.Contains(n.out.String(), "clean shutdown complete") {
		t.Fatalf("no clean shutdown line in the log")
	}
	// Restart on the same data dir: everything is there, in order.
	n2 := startNode(t, n.dataDir)
	c := n2.client(t, kgo.ConsumeTopics("durable"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := 0
	for got < 100 {
		fs := c.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of 100 after restart", got)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatal(err) })
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Key) != fmt.Sprint(got) || r.Offset != int64(got) {
				t.Fatalf("record %d: key %q offset %d", got, r.Key, r.Offset)
			}
			got++
		})
	}
	if code := n2.stop(syscall.SIGINT); code != 0 {
		t.Fatalf("exit code %d after SIGINT", code)
	}
}

func TestServeHTTPAndAdminErrors(t *testing.T) {
	n := startNode(t, "")
	resp, err := http.Get("http://" + n.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "sediment_requests_total") {
		t.Fatalf("/metrics %d:\n%s", resp.StatusCode, body)
	}
	adm := n.admin(t)
	ctx := testCtx(t)
	if r, _ := adm.CreateTopic(ctx, 1, 1, nil, "bad name!"); !errors.Is(r.Err, kerr.InvalidTopicException) {
		t.Fatalf("bad name: %v", r.Err)
	}
	if r, _ := adm.CreateTopic(ctx, 1, 2, nil, "rf2"); !errors.Is(r.Err, kerr.InvalidReplicationFactor) {
		t.Fatalf("rf 2 on one node: %v", r.Err)
	}
}
