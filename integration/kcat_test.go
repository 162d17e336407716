package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestKcatRoundTrip produces keyed records with Debian's kcat (librdkafka) and consumes them back.
// kcat is required: CI installs it (.ci/run). Set SEDIMENT_SKIP_KCAT=1 to skip it knowingly.
func TestKcatRoundTrip(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		if os.Getenv("SEDIMENT_SKIP_KCAT") == "1" {
			t.Skip("kcat not installed and SEDIMENT_SKIP_KCAT=1")
		}
		t.Fatal("kcat not found in PATH: apt-get install kcat (or set SEDIMENT_SKIP_KCAT=1 to skip this test)")
	}
	n := startNode(t, "")
	adm := n.admin(t)
	if r, err := adm.CreateTopic(testCtx(t), 3, 1, nil, "kcat"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}

	var in []string
	for i := 0; i < 50; i++ {
		in = append(in, fmt.Sprintf("key-%02d:value %d", i, i))
	}
	// Bounded: a protocol problem shows as a failure with kcat's output, not as a test-binary timeout.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	prod := exec.CommandContext(ctx, kcat, "-b", n.kafka, "-t", "kcat", "-P", "-K:", "-X", "acks=all")
	prod.Stdin = strings.NewReader(strings.Join(in, "\n") + "\n")
	if out, err := prod.CombinedOutput(); err != nil {
		t.Fatalf("kcat -P: %v\n%s", err, out)
	}

	cons := exec.CommandContext(ctx, kcat, "-b", n.kafka, "-t", "kcat", "-C", "-o", "beginning", "-e", "-q", "-f", "%k:%s\n")
	out, err := cons.CombinedOutput()
	if err != nil {
		t.Fatalf("kcat -C: %v\n%s", err, out)
	}
	got := strings.Split(strings.TrimSpace(string(out)), "\n")
	sort.Strings(got)
	sort.Strings(in)
	if strings.Join(got, "\n") != strings.Join(in, "\n") {
		t.Fatalf("consumed %d records, want %d:\n%s", len(got), len(in), out)
	}

	// Metadata as librdkafka sees it (-L): the topic with its 3 partitions and this broker.
	list := exec.CommandContext(ctx, kcat, "-b", n.kafka, "-L", "-t", "kcat")
	out, err = list.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "3 partitions") {
		t.Fatalf("kcat -L: %v\n%s", err, out)
	}
}
