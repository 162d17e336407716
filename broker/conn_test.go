package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestSmokeStart(t *testing.T) {
	b := newTestBroker(t)
	cl := newTestClient(t, b)
	req := kmsg.NewPtrMetadataRequest()
	resp, err := req.RequestWith(testCtx(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Brokers) != 1 || resp.Brokers[0].NodeID != 1 || *resp.ClusterID == "" || resp.ControllerID != 1 {
		t.Fatalf("metadata: %+v", resp)
	}
}
