package broker

// SaslHandshake: v0–v1, always answered ILLEGAL_SASL_STATE with no mechanisms.
//
// Sediment listens in plaintext only, so there is never a SASL exchange to start. This is what
// Kafka's KafkaApis answers when a handshake reaches it (a PLAINTEXT listener, or a connection
// already authenticated): a client configured for SASL against a plaintext listener then fails at
// once with an authentication error naming the state (Java: IllegalSaslStateException, fatal for
// producers; franz-go: ILLEGAL_SASL_STATE; librdkafka: "SASL handshake failed ... Illegal SASL
// state", retried), instead of seeing the connection dropped during authentication, which Java
// reports as a possible network problem and retries until its timeout. Advertised from v0 because
// librdkafka enables its SASL handshake only when it sees key 17 at version 0, and like Kafka on
// every listener. The connection stays open.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.SASLHandshake, 0, 1, (*Broker).handleSaslHandshake) }

func (b *Broker) handleSaslHandshake(ctx context.Context, c *connCtx, kreq kmsg.Request) (kmsg.Response, error) {
	resp := kreq.(*kmsg.SASLHandshakeRequest).ResponseKind().(*kmsg.SASLHandshakeResponse)
	resp.ErrorCode = kerr.IllegalSaslState.Code
	resp.SupportedMechanisms = []string{}
	return resp, nil
}
