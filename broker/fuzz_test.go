package broker

import (
	"bytes"
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// FuzzRequestFrame feeds arbitrary bytes — a stream of request frames (size + header + body) — to a
// real connection of a real broker: the size check, the header parser, kmsg decoding and every
// registered handler. It fails on any recovered handler panic (the connection layer's recover is a
// last resort, never the intended path) and on a connection that does not finish (a hang).
//
// The seed corpus in testdata/fuzz/FuzzRequestFrame holds one valid frame per served API and version
// family (written by TestFuzzSeedCorpus -update-fuzz-corpus) plus hostile framing.
func FuzzRequestFrame(f *testing.F) {
	b := newTestBroker(f, func(c *Config) { c.NumPartitions = 2 })
	var (
		mu     sync.Mutex
		panics []string
	)
	panicHook.Lock()
	panicHook.fn = func(key int16, p any) {
		mu.Lock()
		panics = append(panics, fmt.Sprintf("%s: %v", kmsg.NameForKey(key), p))
		mu.Unlock()
	}
	panicHook.Unlock()
	f.Cleanup(func() { panicHook.Lock(); panicHook.fn = nil; panicHook.Unlock() })

	for _, s := range seedFrames() {
		f.Add(s.frame)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if tooExpensive(in) {
			return
		}
		// Long-polls and metadata waits end with this context, so one input cannot stall the run.
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		client, server := net.Pipe()
		done := make(chan struct{})
		go func() { b.serveConn(ctx, server); close(done) }()
		go io.Copy(io.Discard, client)
		client.SetWriteDeadline(time.Now().Add(5 * time.Second))
		client.Write(in)
		client.Close()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatalf("connection did not finish for input %x", in)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(panics) > 0 {
			t.Fatalf("handler panicked: %v (input %x)", panics, in)
		}
	})
}

// tooExpensive skips inputs that would be legitimately heavy rather than wrong: creating
// thousands of partitions (each a log directory on disk) makes the fuzzer crawl.
func tooExpensive(in []byte) bool {
	for len(in) >= 4 {
		size := int(binary.BigEndian.Uint32(in))
		if size < 0 || size > len(in)-4 {
			return false
		}
		req, err := decodeRequest(in[4 : 4+size])
		in = in[4+size:]
		if err != nil || req.kreq == nil {
			continue
		}
		switch r := req.kreq.(type) {
		case *kmsg.CreateTopicsRequest:
			for _, t := range r.Topics {
				if t.NumPartitions > 16 || len(t.ReplicaAssignment) > 16 {
					return true
				}
			}
		case *kmsg.FetchRequest:
			if r.MaxWaitMillis > 500 { // a legitimate long-poll; the run only waits
				return true
			}
		case *kmsg.CreatePartitionsRequest:
			for _, t := range r.Topics {
				if t.Count > 16 {
					return true
				}
			}
		}
	}
	return false
}

type seedFrame struct {
	name  string
	frame []byte
	api   bool // one valid request of a served API
}

// seedFrames: one valid frame per served API at its min and max version, plus hostile framing.
func seedFrames() []seedFrame {
	var out []seedFrame
	for _, h := range servedAPIs() {
		for _, v := range []int16{h.min, h.max} {
			req := sampleRequest(h.key, v)
			out = append(out, seedFrame{fmt.Sprintf("%s-v%d", h.key.Name(), v), frame(req, 1), true})
		}
	}
	// Two pipelined requests in one input.
	av := kmsg.NewPtrApiVersionsRequest()
	av.Version = 3
	av.ClientSoftwareName, av.ClientSoftwareVersion = "fuzz", "1"
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 12
	out = append(out, seedFrame{name: "pipelined", frame: append(frame(av, 1), frame(md, 2)...)})
	old := kmsg.NewPtrProduceRequest()
	old.Version, old.Acks, old.TimeoutMillis = 2, 1, 1000
	ot := kmsg.NewProduceRequestTopic()
	ot.Topic = "fuzz-topic"
	ot.Partitions = []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: []byte{}}}
	old.Topics = append(old.Topics, ot)
	out = append(out, seedFrame{name: "produce-v2-refused", frame: frame(old, 1)})
	// A flexible body ending in a 2^32-1 tagged-field count (upstream kmsg loops that often).
	hostile := []byte{0, 0, 0, 0, 0, 19, 0, 5, 0, 0, 0, 1, 0, 0, 0, 0x01, 0, 0, 0, 1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}
	binary.BigEndian.PutUint32(hostile, uint32(len(hostile)-4))
	out = append(out, seedFrame{name: "hostile-body-tag-count", frame: hostile})
	out = append(out,
		seedFrame{name: "huge-size", frame: []byte{0x7f, 0xff, 0xff, 0xff, 0, 18}},
		seedFrame{name: "negative-size", frame: []byte{0xff, 0xff, 0xff, 0xfe}},
		seedFrame{name: "short-header", frame: []byte{0, 0, 0, 3, 0, 18, 0}},
		seedFrame{name: "apiversions-v99", frame: []byte{0, 0, 0, 14, 0, 18, 0, 99, 0, 0, 0, 1, 0, 0, 0, 1, 2, 3}},
		seedFrame{name: "null-client-id-negative-strlen", frame: []byte{0, 0, 0, 12, 0, 3, 0, 1, 0, 0, 0, 1, 0xff, 0xfe, 0, 0}},
	)
	return out
}

// sampleRequest is a plausible request of key at version v (content matters more than realism:
// names, ids and counts that reach the handlers' interesting branches).
func sampleRequest(key kmsg.Key, v int16) kmsg.Request {
	req := kmsg.RequestForKey(int16(key))
	req.SetVersion(v)
	topic := "fuzz-topic"
	switch r := req.(type) {
	case *kmsg.ApiVersionsRequest:
		r.ClientSoftwareName, r.ClientSoftwareVersion = "fuzz", "1.0"
	case *kmsg.MetadataRequest:
		r.Topics = []kmsg.MetadataRequestTopic{{Topic: &topic}}
		r.AllowAutoTopicCreation = true
	case *kmsg.CreateTopicsRequest:
		t := kmsg.NewCreateTopicsRequestTopic()
		t.Topic, t.NumPartitions, t.ReplicationFactor = topic, 2, 1
		t.Configs = []kmsg.CreateTopicsRequestTopicConfig{{Name: "retention.ms", Value: kmsg.StringPtr("60000")}}
		r.Topics = append(r.Topics, t)
		r.TimeoutMillis = 1000
	case *kmsg.DeleteTopicsRequest:
		r.TopicNames = []string{topic}
		r.Topics = []kmsg.DeleteTopicsRequestTopic{{Topic: &topic}}
	case *kmsg.CreatePartitionsRequest:
		r.Topics = []kmsg.CreatePartitionsRequestTopic{{Topic: topic, Count: 3}}
	case *kmsg.DescribeConfigsRequest:
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, topic
		br := kmsg.NewDescribeConfigsRequestResource()
		br.ResourceType, br.ResourceName = kmsg.ConfigResourceTypeBroker, "1"
		r.Resources = append(r.Resources, rr, br)
		r.IncludeSynonyms, r.IncludeDocumentation = true, true
	case *kmsg.AlterConfigsRequest:
		rr := kmsg.NewAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, topic
		rr.Configs = []kmsg.AlterConfigsRequestResourceConfig{{Name: "retention.ms", Value: kmsg.StringPtr("1000")}}
		r.Resources = append(r.Resources, rr)
	case *kmsg.IncrementalAlterConfigsRequest:
		rr := kmsg.NewIncrementalAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, topic
		rr.Configs = []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "cleanup.policy", Op: kmsg.IncrementalAlterConfigOpAppend, Value: kmsg.StringPtr("delete")}}
		r.Resources = append(r.Resources, rr)
	case *kmsg.DescribeLogDirsRequest:
		r.Topics = []kmsg.DescribeLogDirsRequestTopic{{Topic: topic, Partitions: []int32{0, 1}}}
	case *kmsg.ProduceRequest:
		r.Acks, r.TimeoutMillis = -1, 1000
		t := kmsg.NewProduceRequestTopic()
		t.Topic = topic
		p := kmsg.NewProduceRequestTopicPartition()
		p.Records = sampleBatch()
		t.Partitions = append(t.Partitions, p)
		r.Topics = append(r.Topics, t)
	case *kmsg.FetchRequest:
		r.MaxWaitMillis, r.MaxBytes, r.MinBytes = 100, 1<<20, 1
		t := kmsg.NewFetchRequestTopic()
		t.Topic = topic
		p := kmsg.NewFetchRequestTopicPartition()
		p.PartitionMaxBytes = 1 << 20
		t.Partitions = append(t.Partitions, p)
		r.Topics = append(r.Topics, t)
	case *kmsg.ListOffsetsRequest:
		t := kmsg.NewListOffsetsRequestTopic()
		t.Topic = topic
		p := kmsg.NewListOffsetsRequestTopicPartition()
		p.Timestamp = -1
		t.Partitions = append(t.Partitions, p)
		r.Topics = append(r.Topics, t)
	case *kmsg.DeleteRecordsRequest:
		t := kmsg.NewDeleteRecordsRequestTopic()
		t.Topic = topic
		t.Partitions = []kmsg.DeleteRecordsRequestTopicPartition{{Partition: 0, Offset: 1}}
		r.Topics = append(r.Topics, t)
		r.TimeoutMillis = 1000
	case *kmsg.OffsetForLeaderEpochRequest:
		t := kmsg.NewOffsetForLeaderEpochRequestTopic()
		t.Topic = topic
		p := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		p.LeaderEpoch, p.CurrentLeaderEpoch = 0, -1
		t.Partitions = append(t.Partitions, p)
		r.Topics = append(r.Topics, t)
	case *kmsg.InitProducerIDRequest:
		r.TransactionTimeoutMillis = 60000
	}
	return req
}

// sampleBatch is one valid RecordBatch v2 with one record, encoded by kmsg.
func sampleBatch() []byte {
	rec := kmsg.NewRecord()
	rec.Key, rec.Value = []byte("k"), []byte("v")
	recs := rec.AppendTo(nil)
	batch := kmsg.NewRecordBatch()
	batch.Magic = 2
	batch.LastOffsetDelta = 0
	batch.FirstTimestamp = 1_700_000_000_000 // fixed: the corpus must be reproducible
	batch.MaxTimestamp = batch.FirstTimestamp
	batch.ProducerID, batch.ProducerEpoch, batch.FirstSequence = -1, -1, -1
	batch.NumRecords = 1
	batch.Records = recs
	raw := batch.AppendTo(nil)
	batch.Length = int32(len(raw) - 12)
	raw = batch.AppendTo(nil)
	// CRC32C over attributes..end.
	crc := crc32c(raw[21:])
	binary.BigEndian.PutUint32(raw[17:], crc)
	return raw
}

var updateFuzzCorpus = flag.Bool("update-fuzz-corpus", false, "rewrite testdata/fuzz/FuzzRequestFrame from seedFrames()")

// TestFuzzSeedCorpus checks the committed corpus: one file per seed, each byte-identical to what
// seedFrames produces now, and every served API's frames decode (so the corpus reaches handlers,
// not just the framing checks). -update-fuzz-corpus rewrites it.
func TestFuzzSeedCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzRequestFrame")
	seeds := seedFrames()
	if *updateFuzzCorpus {
		os.MkdirAll(dir, 0o755)
		for _, s := range seeds {
			body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(s.frame)) + ")\n"
			if err := os.WriteFile(filepath.Join(dir, s.name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	decoded := 0
	for _, s := range seeds {
		raw, err := os.ReadFile(filepath.Join(dir, s.name))
		if err != nil {
			t.Fatalf("seed %s missing (run go test ./broker -run TestFuzzSeedCorpus -update-fuzz-corpus): %v", s.name, err)
		}
		lines := strings.SplitN(string(raw), "\n", 3)
		if len(lines) < 2 || lines[0] != "go test fuzz v1" || !strings.HasPrefix(lines[1], "[]byte(") {
			t.Fatalf("seed %s: not a go fuzz corpus file", s.name)
		}
		q := strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")")
		got, err := strconv.Unquote(q)
		if err != nil {
			t.Fatalf("seed %s: %v", s.name, err)
		}
		if !bytes.Equal([]byte(got), s.frame) {
			t.Errorf("seed %s differs from seedFrames() (rerun with -update-fuzz-corpus)", s.name)
		}
		if s.api {
			size := binary.BigEndian.Uint32(s.frame)
			if _, err := decodeRequest(s.frame[4 : 4+size]); err != nil {
				t.Errorf("seed %s does not decode: %v", s.name, err)
			}
			decoded++
		}
	}
	if decoded != 2*len(apiHandlers) {
		t.Fatalf("%d API seeds for %d APIs", decoded, len(apiHandlers))
	}
}

func crc32c(b []byte) uint32 { return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)) }

// countingTagReader is a TagReader over nothing: every read fails; it counts the reads.
type countingTagReader struct{ reads, first int }

func (c *countingTagReader) Uvarint() uint32 {
	c.reads++
	if c.reads == 1 {
		return uint32(c.first)
	}
	return 0
}
func (c *countingTagReader) Span(int) []byte { return nil }
func (c *countingTagReader) Ok() bool        { return c.reads <= 1 }

// TestTagLoopsStopAtEndOfInput pins the third_party/kmsg patch: a hostile tagged-field count does
// not make the decoder loop after the input ran out (upstream v1.15.0 loops up to 2^32 times).
func TestTagLoopsStopAtEndOfInput(t *testing.T) {
	r := &countingTagReader{first: 1 << 30}
	kmsg.SkipTags(r)
	if r.reads > 4 {
		t.Fatalf("SkipTags read %d times for an exhausted input (unpatched kmsg?)", r.reads)
	}
	r = &countingTagReader{first: 1 << 30}
	kmsg.ReadTags(r)
	if r.reads > 4 {
		t.Fatalf("ReadTags read %d times for an exhausted input (unpatched kmsg?)", r.reads)
	}
	// The same inside generated decoders: a CreateTopics v5 body ending in a 2^32-1 tag count.
	body := []byte{0x01, 0, 0, 0, 1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version = 5
	if err := req.ReadFrom(body); err == nil {
		t.Fatal("hostile tag count decoded without error")
	}
}
