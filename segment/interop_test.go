package segment_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sediment-io/sediment/segment"
	"github.com/sediment-io/sediment/segment/vfs"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestRealClientBatches produces with franz-go under every codec to an
// in-process kfake cluster (loopback), fetches the raw batches the client built,
// and checks the segment package against them: header parsing and CRC,
// Decompress of the client's compression framing, append, read-back of identical
// bytes, and the timestamp lookup to the exact record.
func TestRealClientBatches(t *testing.T) {
	codecs := []struct {
		name  string
		codec kgo.CompressionCodec
		want  segment.Codec
	}{
		{"none", kgo.NoCompression(), segment.CodecNone},
		{"gzip", kgo.GzipCompression(), segment.CodecGzip},
		{"snappy", kgo.SnappyCompression(), segment.CodecSnappy},
		{"lz4", kgo.Lz4Compression(), segment.CodecLZ4},
		{"zstd", kgo.ZstdCompression(), segment.CodecZstd},
	}
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			raw := produceAndFetch(t, c.codec)
			hs, err := segment.SplitBatches(raw)
			if err != nil {
				t.Fatalf("client batches rejected: %v", err)
			}
			records := 0
			pos := 0
			for _, h := range hs {
				if h.Compression() != c.want {
					t.Fatalf("batch codec %v, want %v", h.Compression(), c.want)
				}
				records += int(h.RecordCount())
				if c.want != segment.CodecNone {
					out, err := segment.Decompress(h.Compression(), raw[pos+segment.HeaderSize:pos+h.Size()], 1<<20)
					if err != nil {
						t.Fatalf("Decompress(%v) of a client batch: %v", c.want, err)
					}
					if !bytes.Contains(out, []byte("value-")) {
						t.Fatal("decompressed records do not hold the produced values")
					}
				}
				pos += h.Size()
			}
			if records != 50 {
				t.Fatalf("%d records fetched, want 50", records)
			}
			l, err := segment.Open("/p", segment.Config{
				SegmentBytes: 1 << 20, SegmentMs: time.Hour, SegmentIndexBytes: 1 << 16,
				IndexIntervalBytes: 0, FS: vfs.NewMemFS(),
			})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if _, err := l.AppendReplicated(raw); err != nil {
				t.Fatalf("AppendReplicated(client batches): %v", err)
			}
			r, err := l.Read(0, segment.ReadOptions{MaxBytes: 1 << 20})
			if err != nil || !bytes.Equal(r.Data, raw) {
				t.Fatalf("read back differs (%v)", err)
			}
			// Record i was produced with timestamp base+i ms.
			off, ts, ok, err := l.OffsetForTimestamp(baseTs + 17)
			if err != nil || !ok || off != 17 || ts != baseTs+17 {
				t.Fatalf("OffsetForTimestamp(base+17) = %d@%d %v %v, want offset 17", ts, off, ok, err)
			}
		})
	}
}

const baseTs = 1_700_000_000_000

func produceAndFetch(t *testing.T, codec kgo.CompressionCodec) []byte {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic("t"),
		kgo.ProducerBatchCompression(codec), kgo.ProducerLinger(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var rs []*kgo.Record
	for i := 0; i < 50; i++ {
		rs = append(rs, &kgo.Record{Value: []byte(fmt.Sprintf("value-%03d-%s", i, bytes.Repeat([]byte("x"), 100))),
			Timestamp: time.UnixMilli(baseTs + int64(i))})
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	mreq := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("t")
	mreq.Topics = append(mreq.Topics, mt)
	mresp, err := mreq.RequestWith(ctx, cl)
	if err != nil || len(mresp.Topics) != 1 {
		t.Fatalf("metadata: %v", err)
	}
	req := kmsg.NewPtrFetchRequest()
	req.MaxWaitMillis = 100
	req.MaxBytes = 1 << 20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = "t"
	rt.TopicID = mresp.Topics[0].TopicID
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.PartitionMaxBytes = 1 << 20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("unexpected fetch response shape")
	}
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 || len(p.RecordBatches) == 0 {
		t.Fatalf("fetch: error %d, %d bytes", p.ErrorCode, len(p.RecordBatches))
	}
	return p.RecordBatches
}
