package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// A large fetch response is framed into a buffer grown once to its size, not doubled up to it
// (which would copy the record bytes about twice more and allocate at each step).
func TestAppendResponseSizesFetchFrameOnce(t *testing.T) {
	resp := kmsg.NewPtrFetchResponse()
	resp.Version = 12
	topic := kmsg.NewFetchResponseTopic()
	topic.Topic = "t"
	for p := int32(0); p < 8; p++ {
		part := kmsg.NewFetchResponseTopicPartition()
		part.Partition = p
		part.RecordBatches = make([]byte, 1<<20)
		topic.Partitions = append(topic.Partitions, part)
	}
	resp.Topics = append(resp.Topics, topic)
	r := response{corr: 7, kresp: resp}

	frame := appendResponse(nil, r)
	if want := 8 << 20; len(frame) < want {
		t.Fatalf("frame is %d bytes, want at least the %d record bytes", len(frame), want)
	}
	if cap(frame) < len(frame) || cap(frame) > len(frame)+64*1024 {
		t.Fatalf("frame len %d cap %d: the buffer was not sized to the frame", len(frame), cap(frame))
	}
	if raceEnabled {
		t.Skip("allocation counts under -race are the race detector's (the buffer sizing above was checked)")
	}
	// kmsg's encoder allocates on its own (tag handling); growing the frame must add exactly one.
	presized := make([]byte, 0, len(frame))
	base := testing.AllocsPerRun(5, func() { resp.AppendTo(presized[:0]) })
	allocs := testing.AllocsPerRun(5, func() { appendResponse(nil, r) })
	if allocs > base+1 {
		t.Fatalf("framing an 8 MiB fetch response took %.0f allocations; encoding into a sized buffer takes %.0f, so the frame grew in steps", allocs, base)
	}
}
