package broker

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// BenchmarkDecodeProduceFrame: header parse + kmsg decode of a Produce request carrying one 1 MiB
// record batch — the per-request cost the connection layer adds before the handler.
func BenchmarkDecodeProduceFrame(b *testing.B) {
	req := kmsg.NewPtrProduceRequest()
	req.Version = 9
	req.Acks = -1
	t := kmsg.NewProduceRequestTopic()
	t.Topic = "bench"
	p := kmsg.NewProduceRequestTopicPartition()
	p.Records = make([]byte, 1<<20)
	t.Partitions = append(t.Partitions, p)
	req.Topics = append(req.Topics, t)
	f := frame(req, 1)
	body := f[4:]
	b.SetBytes(int64(len(f)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeRequest(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConnPipelinedMetadata: requests per second through a real TCP connection of a real
// broker (reader, dispatch, Metadata handler, writer), with 64 requests in flight.
func BenchmarkConnPipelinedMetadata(b *testing.B) {
	br := newTestBroker(b)
	nc, err := net.DialTimeout("tcp", br.Addr(), 5*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 12
	f := frame(md, 1)
	const window = 64
	done := make(chan error, 1)
	r := bufio.NewReaderSize(nc, 1<<16)
	b.ReportAllocs()
	b.ResetTimer()
	go func() {
		var size [4]byte
		buf := make([]byte, 0, 4096)
		for i := 0; i < b.N; i++ {
			if _, err := io.ReadFull(r, size[:]); err != nil {
				done <- err
				return
			}
			n := int(binary.BigEndian.Uint32(size[:]))
			buf = buf[:n]
			if _, err := io.ReadFull(r, buf); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	w := bufio.NewWriterSize(nc, 1<<16)
	for i := 0; i < b.N; i++ {
		w.Write(f)
		if i%window == window-1 {
			w.Flush()
		}
	}
	w.Flush()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}
