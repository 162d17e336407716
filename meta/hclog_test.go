package meta

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func TestHclogAdapterRoutesToSlog(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	h := newHclog(l, "raft").With("peer", "n2").Named("replication")
	h.Debug("hidden")
	h.Warn("slow follower", "lag", 7)
	h.StandardLogger(nil).Print("from std logger")
	out := buf.String()
	if strings.Contains(out, "hidden") {
		t.Fatal("debug output passed an info-level handler")
	}
	for _, want := range []string{"level=WARN", "slow follower", "component=raft.replication", "peer=n2", "lag=7", "from std logger"} {
		if !strings.Contains(out, want) {
			t.Fatalf("missing %q in %q", want, out)
		}
	}
	if h.IsDebug() || !h.IsWarn() {
		t.Fatal("level checks do not follow the handler")
	}
	var _ hclog.Logger = h
}

func TestValidateOnlyCommitsNothing(t *testing.T) {
	n := openTestNode(t, nil)
	ctx := ctxT(t)
	tp, err := n.CreateTopic(ctx, TopicSpec{Name: "v", Partitions: 2, ReplicationFactor: 1, ValidateOnly: true})
	if err != nil || tp == nil || len(tp.Partitions) != 2 {
		t.Fatalf("%+v %v", tp, err)
	}
	if _, err := n.CreateTopic(ctx, TopicSpec{Name: "v", Partitions: 2, ReplicationFactor: 2, ValidateOnly: true}); err == nil {
		t.Fatal("validate-only accepted RF 2 with one broker")
	}
	if _, ok := n.State().Topic("v"); ok {
		t.Fatal("validate-only committed something")
	}
	if _, err := n.CreateTopic(ctx, TopicSpec{Name: "v", Partitions: 2, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	if err := n.CreatePartitions(ctx, "v", 1, nil, true); err == nil {
		t.Fatal("validate-only accepted shrinking")
	}
	if err := n.CreatePartitions(ctx, "v", 4, nil, true); err != nil {
		t.Fatal(err)
	}
	if tp, _ := n.State().Topic("v"); len(tp.Partitions) != 2 {
		t.Fatal("validate-only CreatePartitions committed")
	}
	if err := n.ValidateTopicConfigs("v", map[string]string{"retention.ms": "x"}, nil); err == nil {
		t.Fatal("bad config validated")
	}
}
