package broker

// ApiVersions: v0–v4.
//
// The answer is built from the handler registry (handlers.go), so what we advertise is exactly what
// we decode. A request at a version above v4 is answered at v0 with UNSUPPORTED_VERSION and our
// ranges (KIP-511); its body is not decoded (conn.go). v3+ validates ClientSoftwareName/Version as
// Kafka does ([a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?) and answers INVALID_REQUEST otherwise.
//
// Produce is advertised from v0 although v3+ is served: see advertisedMin.
//
// Deliberately absent: feature flags (KIP-584 SupportedFeatures/FinalizedFeatures) — Sediment has no
// feature versioning, so the lists are empty and FinalizedFeaturesEpoch is -1; v5 (KIP-1242
// ClusterID/NodeID re-bootstrap checks) is not served yet.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.ApiVersions, 0, 4, (*Broker).handleApiVersions) }

func (b *Broker) handleApiVersions(ctx context.Context, c *connCtx, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.ApiVersionsRequest)
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	if req.Version >= 3 && (!validSoftwareField(req.ClientSoftwareName) || !validSoftwareField(req.ClientSoftwareVersion)) {
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp, nil
	}
	resp.ApiKeys = apiVersionKeys()
	resp.FinalizedFeaturesEpoch = -1
	return resp, nil
}

// apiVersionsUnsupported answers an ApiVersions request newer than we serve (KIP-511).
func (b *Broker) apiVersionsUnsupported() kmsg.Response {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(0)
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	resp.ApiKeys = apiVersionKeys()
	return resp
}

// advertisedMin lowers the advertised minimum version of an API below what is served.
//
// Produce: librdkafka before 2.10 (Debian's kcat and confluent-kafka-python link 2.0.x) derives
// its feature set from ApiVersions and, when Produce v0–v2 are not advertised, disables "MsgVer1"
// and with it gzip/snappy/lz4 compression, silently sending uncompressed batches (librdkafka
// #4956). Apache Kafka 4.0 works around it the same way (KAFKA-18659): ApiVersions advertises
// Produce from v0 while v0–v2 requests are still refused, with UNSUPPORTED_VERSION per partition
// (conn.go, refuseOldProduce). No client that knows v3+ sends v0–v2.
var advertisedMin = map[kmsg.Key]int16{kmsg.Produce: 0}

func apiVersionKeys() []kmsg.ApiVersionsResponseApiKey {
	served := servedAPIs()
	keys := make([]kmsg.ApiVersionsResponseApiKey, 0, len(served))
	for _, h := range served {
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = int16(h.key), h.min, h.max
		if m, ok := advertisedMin[h.key]; ok && m < h.min {
			k.MinVersion = m
		}
		keys = append(keys, k)
	}
	return keys
}

// validSoftwareField: [a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?
func validSoftwareField(s string) bool {
	if s == "" {
		return false
	}
	alnum := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' }
	for i := 0; i < len(s); i++ {
		c := s[i]
		if alnum(c) {
			continue
		}
		if (c == '-' || c == '.') && i > 0 && i < len(s)-1 {
			continue
		}
		return false
	}
	return true
}
