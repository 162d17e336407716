package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestCompatKcat: Debian's kcat (librdkafka) produces keyed records with headers in every codec,
// creating the topics by auto-create (kcat has no admin API; the broker runs with num.partitions=3),
// with the idempotent producer on, and reads them back as JSON (-J). broker-core's TestKcatRoundTrip
// covers the plain round trip and -L; this covers codecs and headers.
func TestCompatKcat(t *testing.T) {
	kcat := requireTool(t, "SEDIMENT_SKIP_KCAT", "apt-get install kcat", func() (string, error) { return exec.LookPath("kcat") })
	verOut, _ := exec.Command(kcat, "-V").CombinedOutput()
	version := kcatVersion(string(verOut))
	logVersion(t, "kcat", version)
	n := startNode(t, "", append([]string{"--conf", "num.partitions=3"}, groupNodeArgs...)...)
	res := kcatRoundTrip(t, kcat, version, n, allCodecs)
	checkCompat(t, n, res, allCodecs, "auto-create (kcat has no admin API)")

	checkGroup(t, n, "compat-kcat", kcatGroup(t, kcat, n, "compat-kcat"))

	clusterCell(t, func(t *testing.T, n *node) {
		res := kcatRoundTrip(t, kcat, version, n, []string{"none"})
		checkCompat(t, n, res, []string{"none"}, "auto-create (kcat has no admin API)")
		checkSpread(t, n, compatTopic("none"))
		checkGroup(t, n, "compat-kcat", kcatGroup(t, kcat, n, "compat-kcat"))
	})

	replayCell(t, kcatReplay(kcat))

	// kcat -o s@<ms>: start consuming at the first offset with timestamp >= ms (ListOffsets by time).
	base := seedTimeTopic(t, n)
	got, errs := map[int64]int64{}, []string(nil)
	for _, ts := range timeQueryList(base) {
		out, err := exec.CommandContext(testCtx(t), kcat, "-b", n.kafka, "-C", "-t", timeTopic, "-p", "0",
			"-o", fmt.Sprintf("s@%d", ts), "-c", "1", "-e", "-q", "-f", "%o\n").CombinedOutput()
		var o int64
		if err != nil {
			errs = append(errs, fmt.Sprintf("kcat -o s@%d: %v: %s", ts, err, out))
		} else if _, err := fmt.Sscan(strings.TrimSpace(string(out)), &o); err != nil {
			errs = append(errs, fmt.Sprintf("kcat -o s@%d printed %q", ts, out))
		} else {
			got[ts] = o
		}
	}
	checkTimes(t, base, got, errs)
}

// kcatRoundTrip: kcat -P per codec (auto-created topics) and kcat -C -J back.
func kcatRoundTrip(t *testing.T, kcat, version string, n *node, codecs []string) *compatResult {
	res := newCompatResult("kcat", version)

	for _, c := range codecs {
		res.Produced[c] = errString(func() error {
			for part := 0; part < 3; part++ {
				var lines []string
				for i := part; i < compatN; i += 3 {
					lines = append(lines, compatKey(i)+"\t"+compatValue("kcat", c, i))
				}
				args := []string{"-b", n.kafka, "-P", "-t", compatTopic(c), "-K", "\t",
					"-X", "compression.codec=" + c, "-X", "enable.idempotence=true", "-X", "linger.ms=5"}
				for _, h := range compatHeaders(c, part) {
					args = append(args, "-H", h[0]+"="+h[1])
				}
				cmd := exec.CommandContext(testCtx(t), kcat, args...)
				cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
				if out, err := cmd.CombinedOutput(); err != nil {
					return fmt.Errorf("kcat -P: %v: %s", err, out)
				}
			}
			return nil
		}())
		res.Created[compatTopic(c)] = "" // by auto-create; checkCompat asks the broker whether it exists
	}
	for _, c := range codecs {
		cmd := exec.CommandContext(testCtx(t), kcat, "-b", n.kafka, "-C", "-t", compatTopic(c), "-o", "beginning", "-e", "-q", "-J")
		out, err := cmd.Output()
		if err != nil {
			t.Errorf("kcat -C -J %s: %v\n%s", compatTopic(c), err, out)
			continue
		}
		recs, err := parseKcatJSON(out)
		if err != nil {
			t.Error(err)
		}
		res.Consumed = append(res.Consumed, recs...)
	}
	return res
}

// parseKcatJSON reads kcat -J output: one JSON object per consumed message.
func parseKcatJSON(out []byte) ([]compatRecord, error) {
	var recs []compatRecord
	var errs []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		var m struct {
			Topic     string   `json:"topic"`
			Partition int32    `json:"partition"`
			Offset    int64    `json:"offset"`
			Key       string   `json:"key"`
			Payload   string   `json:"payload"`
			Headers   []string `json:"headers"`
		}
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			errs = append(errs, fmt.Sprintf("kcat -J line %q: %v", line, err))
			continue
		}
		r := compatRecord{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Key: m.Key, Value: m.Payload}
		for i := 0; i+1 < len(m.Headers); i += 2 {
			r.Headers = append(r.Headers, [2]string{m.Headers[i], m.Headers[i+1]})
		}
		recs = append(recs, r)
	}
	if len(errs) > 0 {
		return recs, fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return recs, nil
}

// kcatReplay: kcat -P per round and header value (kcat's -H applies to a whole run, so 3 runs per
// round); kcat -C -o 0 -e -J reads every partition from offset 0 to the end.
func kcatReplay(kcat string) replayClient {
	return replayClient{
		name: "kcat",
		produce: func(t *testing.T, n *node) error {
			for r := 0; r < replayRounds; r++ {
				from, to := replayRound(r)
				for part := 0; part < 3; part++ {
					var lines []string
					for i := from; i < to; i++ {
						if i%3 == part {
							lines = append(lines, compatKey(i)+"\t"+compatValue("kcat", replayCodec, i))
						}
					}
					args := []string{"-b", n.kafka, "-P", "-t", replayTopic, "-K", "\t", "-X", "enable.idempotence=true", "-X", "linger.ms=5"}
					for _, h := range compatHeaders(replayCodec, part) {
						args = append(args, "-H", h[0]+"="+h[1])
					}
					cmd := exec.CommandContext(testCtx(t), kcat, args...)
					cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
					if out, err := cmd.CombinedOutput(); err != nil {
						return fmt.Errorf("round %d: kcat -P: %v: %s", r, err, out)
					}
				}
			}
			return nil
		},
		consume: func(t *testing.T, n *node) ([]compatRecord, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, kcat, "-b", n.kafka, "-C", "-t", replayTopic, "-o", "0", "-e", "-q", "-J")
			var stderr syncBuffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			recs, perr := parseKcatJSON(out)
			if err != nil {
				return recs, fmt.Errorf("kcat -C -o 0 -e: %v (ctx %v)\nstderr: %s", err, ctx.Err(), tail(stderr.String(), 2000))
			}
			return recs, perr
		},
	}
}

// kcatVersion pulls "kcat 1.7.1 ... librdkafka 2.0.2" out of `kcat -V`.
func kcatVersion(out string) string {
	var kv, lv string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "Version" && kv == "" {
				kv = f[i+1]
			}
			if f[i] == "librdkafka" && lv == "" && strings.ContainsAny(f[i+1], "0123456789") {
				lv = strings.TrimSuffix(f[i+1], ",")
			}
		}
	}
	if kv == "" {
		kv = "unknown"
	}
	if lv != "" {
		return kv + " (librdkafka " + lv + ")"
	}
	return kv
}

// kcatGroup: kcat's balanced consumer (-G). kcat has no explicit commit: librdkafka stores the offset
// of each message handed to kcat and commits the stored offsets when kcat closes. kcat's -c count is
// not exact for that (messages polled past the count are stored but not printed), so each consumer
// instead reads to the end (-e): the first after groupFirst records exist, the second after the rest
// were written — it must start at the committed offsets and read exactly the new records.
func kcatGroup(t *testing.T, kcat string, n *node, group string) *groupResult {
	res := &groupResult{}
	consume := func() []compatRecord {
		ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, kcat, "-b", n.kafka, "-G", group, "-X", "auto.offset.reset=earliest",
			"-X", "session.timeout.ms=10000", "-e", "-J", "-q", groupTopic)
		out, err := cmd.Output()
		if err != nil {
			res.Errors = append(res.Errors, fmt.Sprintf("kcat -G: %v (ctx %v)", err, ctx.Err()))
		}
		recs, err := parseKcatJSON(out)
		if err != nil {
			res.Errors = append(res.Errors, err.Error())
		}
		return recs
	}
	createGroupTopic(t, n)
	produceGroupRange(t, n, 0, groupFirst)
	res.First = consume()
	res.CommittedAfterFirst = committedOffsets(t, n, group)
	produceGroupRange(t, n, groupFirst, groupN)
	res.Second = consume()
	return res
}
