package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// kafkajs has no pure-JS zstd (its @kafkajs/zstd codec is a native addon), so it is tested with the
// four codecs it supports through npm packages; the matrix shows zstd as not applicable.
var kafkajsCodecs = []string{"none", "gzip", "snappy", "lz4"}

// TestCompatKafkaJS: kafkajs from npm (integration/clients/node, `npm ci`) — admin.createTopics,
// idempotent producer with every codec it supports, a group consumer reading from the beginning.
func TestCompatKafkaJS(t *testing.T) {
	dir, err := filepath.Abs(filepath.Join("clients", "node"))
	if err != nil {
		t.Fatal(err)
	}
	nodeBin := requireTool(t, "SEDIMENT_SKIP_KAFKAJS", "install Node.js, then `cd integration/clients/node && npm ci --ignore-scripts`", func() (string, error) {
		node, err := exec.LookPath("node")
		if err != nil {
			return "", fmt.Errorf("node not found in PATH: %v", err)
		}
		if _, err := os.Stat(filepath.Join(dir, "node_modules", "kafkajs", "package.json")); err != nil {
			return "", fmt.Errorf("kafkajs not installed in %s/node_modules", dir)
		}
		return node, nil
	})
	var pkg struct{ Version string }
	if b, err := os.ReadFile(filepath.Join(dir, "node_modules", "kafkajs", "package.json")); err == nil {
		json.Unmarshal(b, &pkg)
	}
	logVersion(t, "kafkajs", pkg.Version)
	n := startNode(t, "", groupNodeArgs...)
	roundTrip := func(t *testing.T, n *node, codecs []string) {
		res := runDriver(t, 150*time.Second, nodeBin, nil, filepath.Join(dir, "kafkajs_driver.js"),
			"--bootstrap", n.kafka, "--codecs", strings.Join(codecs, ","), "--n", fmt.Sprint(compatN), "--rf", fmt.Sprint(compatRF), "--timeout", "30")
		for _, note := range res.Notes {
			t.Log(note)
		}
		checkCompat(t, n, res, codecs, "admin.createTopics")
	}
	groups := func(t *testing.T, n *node) {
		seedGroupTopic(t, n)
		var gres groupResult
		runDriverJSON(t, 150*time.Second, nodeBin, nil, &gres, filepath.Join(dir, "kafkajs_driver.js"), "--mode", "group",
			"--bootstrap", n.kafka, "--group", "compat-kafkajs", "--topic", groupTopic,
			"--first", fmt.Sprint(groupFirst), "--rest", fmt.Sprint(groupN-groupFirst), "--timeout", "30")
		checkGroup(t, n, "compat-kafkajs", &gres)
	}
	roundTrip(t, n, kafkajsCodecs)
	groups(t, n)
	clusterCell(t, func(t *testing.T, n *node) {
		roundTrip(t, n, []string{"none"})
		checkSpread(t, n, compatTopic("none"))
		groups(t, n)
	})

	replayCell(t, replayDriverClient("kafkajs", nodeBin, nil, filepath.Join(dir, "kafkajs_driver.js")))

	base := seedTimeTopic(t, n)
	var tres timeResult
	runDriverJSON(t, 60*time.Second, nodeBin, nil, &tres, append([]string{filepath.Join(dir, "kafkajs_driver.js")}, timeArgs(n, base)...)...)
	checkTimes(t, base, tres.byTimestamp(t), tres.Errors)
}
