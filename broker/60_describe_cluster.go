package broker

// DescribeCluster: v0–v2.
//
// The cluster id, the controller (the metadata Raft leader, always a broker in Sediment) and the
// registered brokers; fenced brokers only when IncludeFencedBrokers (v2) asks, marked IsFenced.
// EndpointType (v1+) 2 (controllers) → UNSUPPORTED_ENDPOINT_TYPE, as a Kafka broker answers it:
// Sediment has no separate controller endpoints. Authorized operations: everything (no ACLs).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.DescribeCluster, 0, 2, (*Broker).handleDescribeCluster) }

func (b *Broker) handleDescribeCluster(ctx context.Context, c *connCtx, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.DescribeClusterRequest)
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.EndpointType = req.EndpointType
	if req.Version >= 1 && req.EndpointType != 1 {
		resp.ErrorCode = kerr.UnsupportedEndpointType.Code
		resp.ErrorMessage = strPtr("Sediment serves broker endpoints only (EndpointType 1)")
		return resp, nil
	}
	st := b.meta.State()
	resp.ClusterID = st.ClusterID()
	for _, br := range st.Brokers() {
		if br.Fenced && !req.IncludeFencedBrokers {
			continue
		}
		rb := kmsg.NewDescribeClusterResponseBroker()
		rb.NodeID, rb.Host, rb.Port, rb.IsFenced = br.ID, br.Host, br.Port, br.Fenced
		if br.Rack != "" {
			rb.Rack = strPtr(br.Rack)
		}
		resp.Brokers = append(resp.Brokers, rb)
	}
	resp.ControllerID = b.answeredControllerID(st.ControllerID(), func(yield func(int32) bool) {
		for _, rb := range resp.Brokers {
			if !rb.IsFenced && !yield(rb.NodeID) {
				return
			}
		}
	})
	if req.IncludeClusterAuthorizedOperations {
		resp.ClusterAuthorizedOperations = clusterAuthorizedOps
	}
	return resp, nil
}
