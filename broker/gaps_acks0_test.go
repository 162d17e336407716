package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// A successful acks=0 produce is never answered (Kafka's contract: the producer does not read a
// response, so a stray one would be taken as the answer to its next request). Over a raw
// connection: two acks=0 produces, then ApiVersions; the first frame that comes back must be
// ApiVersions' answer with its correlation id, and the records must be in the log.
func TestProduceAcksZeroSuccessGetsNoResponse(t *testing.T) {
	b := newTestBroker(t)
	createTopic(t, b, "a0", 1, nil)
	rc := dialRaw(t, b)
	req := kmsg.NewPtrProduceRequest()
	req.Version = 9
	req.Acks = 0
	req.TimeoutMillis = 1000
	req.Topics = []kmsg.ProduceRequestTopic{{Topic: "a0", Partitions: []kmsg.ProduceRequestTopicPartition{
		{Partition: 0, Records: testBatch(t, testBatchOpts{records: 3})},
	}}}
	rc.write(frame(req, 41))
	rc.write(frame(req, 42))
	av := kmsg.NewPtrApiVersionsRequest()
	av.Version = 3
	av.ClientSoftwareName, av.ClientSoftwareVersion = "gaps", "1"
	rc.write(frame(av, 43))

	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 3
	corr, err := rc.read(resp)
	if corr != 43 { // checked first: a produce response would not parse as ApiVersions
		t.Fatalf("first response has correlation id %d (err %v), want 43 (ApiVersions): an acks=0 produce was answered", corr, err)
	}
	if err != nil {
		t.Fatalf("reading the ApiVersions response: %v", err)
	}
	if resp.ErrorCode != 0 || len(resp.ApiKeys) == 0 {
		t.Fatalf("ApiVersions answer: code %d, %d keys", resp.ErrorCode, len(resp.ApiKeys))
	}
	// Both acks=0 produces were appended (they were read and handled before ApiVersions).
	if end := endOffset(t, b, "a0"); end != 6 {
		t.Fatalf("end offset %d, want 6", end)
	}
}
