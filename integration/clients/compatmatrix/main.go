// Command compatmatrix writes docs/compatibility.md from the results of the real-client
// compatibility tests, read as `go test -json` events on stdin:
//
//	go test -count=1 -json -run '^TestCompat' ./integration/ | go run ./integration/clients/compatmatrix > docs/compatibility.md
//
// Each TestCompat<Client> test has subtests named after the matrix cells (see
// integration/compat_util_test.go and compat_group_util_test.go): create_topic, produce/<codec>,
// consume/<codec>, headers, group_commit_resume, group_kip848, offsets_for_times, replay_from_bucket and cluster. A codec
// cell passes only if both produce/<codec> and consume/<codec> passed. Client versions come from the
// "compat-version: <client>=<version>" lines the tests log. A feature no subtest covers is shown as
// "pending (issue N)" when it waits for an unbuilt Sediment feature, or "n/a" when the client lacks it.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"
)

type event struct {
	Time    time.Time
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

// client rows, in display order: the test function, how the row is labelled, and how the client
// was driven (static text: the tests are the source of truth for what is checked).
type client struct {
	Test, Name, Kind, How string
	NA                    map[string]string // feature -> why not applicable
}

var clients = []client{
	{"TestCompatFranzGo", "franz-go (kgo, kadm)", "Go module", "kadm.CreateTopic; kgo.ProduceSync (idempotent by default) per codec; direct partition consume; group: kgo.ConsumerGroup + CommitRecords", nil},
	{"TestCompatSarama", "IBM/sarama", "Go module", "ClusterAdmin.CreateTopic; idempotent SyncProducer (acks=all, Version 3.6) per codec; PartitionConsumer; group: ConsumerGroup + MarkMessage/session.Commit",
		map[string]string{"kip848": "the client has no KIP-848 (consumer protocol) support in this version"}},
	{"TestCompatKafkaGo", "segmentio/kafka-go", "Go module", "Client.CreateTopics; Writer (Hash balancer, acks=all) per codec; a Reader per partition; group: Reader{GroupID} + CommitMessages",
		map[string]string{"kip848": "the client has no KIP-848 (consumer protocol) support in this version"}},
	{"TestCompatKcat", "kcat (librdkafka)", "Debian package", "topics auto-created (kcat has no admin API; broker num.partitions=3); kcat -P -K -H -X compression.codec, enable.idempotence=true; kcat -C -J; group: kcat -G -e (librdkafka commits stored offsets on close)",
		map[string]string{"delete": "kcat has no admin API (its topics are auto-created)", "kip848": "librdkafka 2.0.2 predates KIP-848 (needs 2.4+)"}},
	{"TestCompatConfluentKafkaPython", "confluent-kafka-python (librdkafka)", "Debian package", "AdminClient.create_topics; idempotent Producer (acks=all) per codec; Consumer.assign from OFFSET_BEGINNING; group: subscribe + commit(asynchronous=False)",
		map[string]string{"kip848": "librdkafka 2.0.2 predates KIP-848 (needs 2.4+)"}},
	{"TestCompatKafkaPython", "kafka-python", "Debian package", "KafkaAdminClient.create_topics; KafkaProducer (acks=all) per codec; KafkaConsumer.assign + seek_to_beginning; group: subscribe + commit(offsets)",
		map[string]string{"kip848": "the client has no KIP-848 (consumer protocol) support in this version"}},
	{"TestCompatKafkaJS", "kafkajs", "npm", "admin.createTopics; idempotent producer (acks=-1) per codec (snappy via kafkajs-snappy, lz4 via lz4js); consumer in a group (kafkajs has no group-less consumer); group: autoCommit off + commitOffsets",
		map[string]string{"zstd": "kafkajs has no pure-JS zstd codec (@kafkajs/zstd is a native addon)", "kip848": "the client has no KIP-848 (consumer protocol) support in this version"}},
}

type feature struct {
	Key, Label string
	Subtests   []string // all must pass
	Pending    string   // shown when no client has a subtest for it
}

var features = []feature{
	{"create", "create topic", []string{"create_topic"}, ""},
	{"delete", "delete topic", []string{"delete_topic"}, ""},
	{"none", "uncompressed", []string{"produce/none", "consume/none"}, ""},
	{"gzip", "gzip", []string{"produce/gzip", "consume/gzip"}, ""},
	{"snappy", "snappy", []string{"produce/snappy", "consume/snappy"}, ""},
	{"lz4", "lz4", []string{"produce/lz4", "consume/lz4"}, ""},
	{"zstd", "zstd", []string{"produce/zstd", "consume/zstd"}, ""},
	{"headers", "keys + headers", []string{"headers"}, ""},
	{"group", "group commit / resume", []string{"group_commit_resume"}, "pending (issue 6)"},
	{"kip848", "KIP-848 group", []string{"group_kip848"}, ""},
	{"times", "offsets for times", []string{"offsets_for_times"}, ""},
	{"replay", "replay from bucket (offset 0 after tiering)", []string{"replay_from_bucket"}, ""},
	{"cluster", "3 brokers, RF 3", []string{"cluster"}, ""},
}

var versionRE = regexp.MustCompile(`compat-version: ([^=\s]+)=(.*)$`)

type results struct {
	status   map[string]string // "TestX/sub" -> pass|fail|skip
	versions map[string]string // test -> version text
	started  time.Time
}

func parse(r io.Reader) (*results, error) {
	res := &results{status: map[string]string{}, versions: map[string]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		var e event
		if err := json.Unmarshal(line, &e); err != nil {
			return nil, fmt.Errorf("bad go test -json line %q: %w", line, err)
		}
		if res.started.IsZero() && !e.Time.IsZero() {
			res.started = e.Time
		}
		switch e.Action {
		case "pass", "fail", "skip":
			if e.Test != "" {
				res.status[e.Test] = e.Action
			}
		case "output":
			if m := versionRE.FindStringSubmatch(strings.TrimSpace(e.Output)); m != nil && e.Test != "" {
				top := strings.SplitN(e.Test, "/", 2)[0]
				res.versions[top] = strings.TrimSpace(m[2])
			}
		}
	}
	return res, sc.Err()
}

// cell is one matrix entry.
func (r *results) cell(c client, f feature) string {
	if why, ok := c.NA[f.Key]; ok {
		_ = why
		return "n/a¹"
	}
	top, ok := r.status[c.Test]
	if !ok {
		if f.Pending != "" && !r.anyHas(f) {
			return f.Pending
		}
		return "not run"
	}
	if top == "skip" {
		return "skipped (opt-out)"
	}
	seen, failed := 0, false
	for _, s := range f.Subtests {
		st, ok := r.status[c.Test+"/"+s]
		if !ok {
			continue
		}
		seen++
		if st == "fail" {
			failed = true
		}
	}
	switch {
	case seen == 0 && f.Pending != "":
		return f.Pending
	case seen == 0:
		if top == "fail" {
			return "FAIL (test stopped before this check)"
		}
		return "not tested"
	case failed:
		return "FAIL"
	case seen < len(f.Subtests):
		return "partial"
	}
	return "pass"
}

func (r *results) anyHas(f feature) bool {
	for k := range r.status {
		for _, s := range f.Subtests {
			if strings.HasSuffix(k, "/"+s) {
				return true
			}
		}
	}
	return false
}

func write(w io.Writer, r *results) {
	fmt.Fprintln(w, "# Client compatibility")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "<!-- Generated by integration/clients/compatmatrix from `go test -json` output; do not edit by hand. -->")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Every cell is the result of a real client, driven through its own API, against real `sediment serve`")
	fmt.Fprintln(w, "processes (one broker; three for the cluster column) in `integration/compat_*_test.go`. Regenerate with:")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "```sh")
	fmt.Fprintln(w, "go test -count=1 -json -run '^TestCompat' ./integration/ | go run ./integration/clients/compatmatrix > docs/compatibility.md")
	fmt.Fprintln(w, "```")
	fmt.Fprintln(w)
	if !r.started.IsZero() {
		fmt.Fprintf(w, "Results of the run started %s.\n\n", r.started.UTC().Format("2006-01-02 15:04 UTC"))
	}
	// header
	fmt.Fprint(w, "| client | version |")
	for _, f := range features {
		fmt.Fprintf(w, " %s |", f.Label)
	}
	fmt.Fprintln(w)
	fmt.Fprint(w, "| --- | --- |")
	for range features {
		fmt.Fprint(w, " --- |")
	}
	fmt.Fprintln(w)
	for _, c := range clients {
		v := r.versions[c.Test]
		if v == "" {
			v = "?"
		}
		fmt.Fprintf(w, "| %s | %s |", c.Name, v)
		for _, f := range features {
			fmt.Fprintf(w, " %s |", r.cell(c, f))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
	var notes []string
	for _, c := range clients {
		keys := make([]string, 0, len(c.NA))
		for k := range c.NA {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			notes = append(notes, fmt.Sprintf("%s, %s: %s.", c.Name, k, c.NA[k]))
		}
	}
	if len(notes) > 0 {
		fmt.Fprintf(w, "¹ Not applicable: %s\n\n", strings.Join(notes, " "))
	}
	fmt.Fprintln(w, "## What each cell checks")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "- **create topic**: the client's admin API creates `compat-<codec>` (3 partitions) and the broker's metadata agrees.")
	fmt.Fprintln(w, "- **delete topic**: the client's admin API creates and deletes `compat-delete`; the broker no longer lists it.")
	fmt.Fprintln(w, "- **codec columns**: 60 keyed records (2 headers each, UTF-8 values) produced with that codec are acknowledged;")
	fmt.Fprintln(w, "  franz-go reads the stored batches back and every one carries that codec id (a client that silently sent")
	fmt.Fprintln(w, "  them uncompressed fails); the client itself reads them back: each value once, its key, a key always in one")
	fmt.Fprintln(w, "  partition, offsets 0..n-1 per partition.")
	fmt.Fprintln(w, "- **keys + headers**: every record the client read back carries exactly the headers written, in order.")
	fmt.Fprintln(w, "- **group commit / resume**: a group consumer processes 20 of 45 records and commits what it processed")
	fmt.Fprintln(w, "  through the client's commit API; the broker holds exactly those offsets; a new consumer of the group")
	fmt.Fprintln(w, "  starts each partition at the committed offset and reads the rest: every record once overall.")
	fmt.Fprintln(w, "- **KIP-848 group**: the same group scenario through the new consumer protocol (ConsumerGroupHeartbeat,")
	fmt.Fprintln(w, "  server-side range assignment; franz-go `ServerSideBalancer`), and ListGroups filtered on type `consumer`")
	fmt.Fprintln(w, "  names the group, so a silent fallback to the classic protocol fails.")
	fmt.Fprintln(w, "- **offsets for times**: 30 records in three batches timestamped base, base+1 s, base+2 s; the client's")
	fmt.Fprintln(w, "  timestamp lookup (ListOffsets by time: kadm.ListOffsetsAfterMilli, sarama Client.GetOffset, kafka-go")
	fmt.Fprintln(w, "  Conn.ReadOffset, kcat -o s@ts, offsets_for_times, fetchTopicOffsetsByTimestamp) answers the first offset at")
	fmt.Fprintln(w, "  or after each of six timestamps.")
	fmt.Fprintln(w, "- **replay from bucket**: a broker whose object store is a real MinIO bucket (`--object-store s3://…`,")
	fmt.Fprintln(w, "  `remote.log.storage.system.enable=true`, `log.retention.check.interval.ms=250`); kadm creates `compat-replay`")
	fmt.Fprintln(w, "  (3 partitions) with `remote.storage.enable=true`, `segment.bytes=4096`, `local.retention.ms=1000`; the client")
	fmt.Fprintln(w, "  produces 224 keyed records with 2 headers in 16 acknowledged rounds (many segments); the test waits until the")
	fmt.Fprintln(w, "  data is only in the bucket, judged independently of the read path: segment objects of every partition listed")
	fmt.Fprintln(w, "  with minio-go, ListOffsets earliest (-2) = 0 while earliest-local (-4) > 0, at least a quarter of the records")
	fmt.Fprintln(w, "  below it (never getting there fails the cell); then the client consumes every partition from offset 0 through")
	fmt.Fprintln(w, "  its own API (kgo.ConsumePartitions At(0), sarama ConsumePartition(…, 0), kafka-go Reader.SetOffset(0), `kcat -C")
	fmt.Fprintln(w, "  -o 0 -e`, confluent assign(TopicPartition(…, 0)) with auto.offset.reset=error, kafka-python assign + seek(tp, 0)")
	fmt.Fprintln(w, "  with auto_offset_reset=none, kafkajs seek to 0 on GROUP_JOIN) and every record must come back once with its")
	fmt.Fprintln(w, "  key, value and headers, at offsets 0..n-1 per partition.")
	fmt.Fprintln(w, "- **3 brokers, RF 3**: three `sediment serve` processes form one cluster (`--voters`); the client, given one")
	fmt.Fprintln(w, "  bootstrap address, repeats the uncompressed round trip (create, delete, produce acks=all, consume, headers)")
	fmt.Fprintln(w, "  and the group scenario with every topic at replication factor 3 (kcat's auto-created ones through")
	fmt.Fprintln(w, "  default.replication.factor=3); each partition has 3 replicas all in sync and the leaders are three different")
	fmt.Fprintln(w, "  brokers (the client must route to each); the group coordinator may sit on another broker.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "## How each client is driven")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| client | installed from | calls |")
	fmt.Fprintln(w, "| --- | --- | --- |")
	for _, c := range clients {
		fmt.Fprintf(w, "| %s | %s | %s |\n", c.Name, c.Kind, c.How)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "## Client notes found while testing")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "- librdkafka before 2.10 (kcat, confluent-kafka-python from Debian: 2.0.2) decides which codecs a broker")
	fmt.Fprintln(w, "  supports from ApiVersions and silently sends gzip/snappy batches uncompressed unless Produce v0 is")
	fmt.Fprintln(w, "  advertised, and lz4 unless FindCoordinator is. Sediment advertises Produce from v0 (as Kafka 4.0 does,")
	fmt.Fprintln(w, "  KAFKA-18659) while refusing v0-2 requests; the codec columns check the stored batches, so a regression shows.")
	fmt.Fprintln(w, "- kcat's `-c N` in group mode (`-G`) was seen committing past the N-th printed message (once: 25 for 20 read;")
	fmt.Fprintln(w, "  likely offsets stored as librdkafka hands messages over); the group test lets kcat read to the end (`-e`) instead.")
	fmt.Fprintln(w, "- librdkafka's admin client (confluent-kafka-python, 2.0.2) waits for the controller named in Metadata until its")
	fmt.Fprintln(w, "  request timeout if that id is not among the brokers of the same response: it never connects to an unknown")
	fmt.Fprintln(w, "  node id and asks for no new Metadata while it knows a controller id (periodic refresh: 5 min). Seen once in")
	fmt.Fprintln(w, "  ~11 runs of the cluster cell (\"Failed while waiting for controller\"); cause: while a cluster starts, a node could")
	fmt.Fprintln(w, "  name the Raft leader as controller before that leader's broker registration was applied on it (reproduced by")
	fmt.Fprintln(w, "  polling Metadata from process start, and with kfake answering an unlisted controller id). Fixed in f1844d6:")
	fmt.Fprintln(w, "  Metadata and DescribeCluster always name a listed broker (the Raft leader when listed), as a KRaft broker does.")
	fmt.Fprintln(w, "- kafkajs has no group-less consumer: its consume cells go through a consumer group.")
	fmt.Fprintln(w, "- kafkajs-lz4 depends on the `lz4` package, which ships macOS binaries and needs a native build; lz4js is used.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "A client that is not installed fails its test with the install command, unless its opt-out is set:")
	fmt.Fprintln(w, "`SEDIMENT_SKIP_KCAT=1`, `SEDIMENT_SKIP_CONFLUENT_KAFKA_PYTHON=1`, `SEDIMENT_SKIP_KAFKA_PYTHON=1`,")
	fmt.Fprintln(w, "`SEDIMENT_SKIP_KAFKAJS=1` (the Go clients are module dependencies and always present). CI installs")
	fmt.Fprintln(w, "all of them through `make test` (target `test-deps`, localstack/install-test-deps.sh): `apt-get install kcat")
	fmt.Fprintln(w, "python3-confluent-kafka python3-kafka python3-snappy python3-lz4 python3-zstandard` (Debian's packages serve")
	fmt.Fprintln(w, "`/usr/bin/python3`; `SEDIMENT_PYTHON3` overrides) and `npm ci` in `integration/clients/node`.")
}

func main() {
	r, err := parse(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "compatmatrix:", err)
		os.Exit(1)
	}
	if len(r.status) == 0 {
		fmt.Fprintln(os.Stderr, "compatmatrix: no test results on stdin (pipe `go test -json -run '^TestCompat' ./integration/` into it)")
		os.Exit(1)
	}
	write(os.Stdout, r)
}
