package broker

// SaslAuthenticate: v0–v2, always answered ILLEGAL_SASL_STATE, as Kafka's KafkaApis answers it on
// a connection that is not in a SASL exchange (Sediment is plaintext only; see
// 17_sasl_handshake.go). The connection stays open.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.SASLAuthenticate, 0, 2, (*Broker).handleSaslAuthenticate) }

func (b *Broker) handleSaslAuthenticate(ctx context.Context, c *connCtx, kreq kmsg.Request) (kmsg.Response, error) {
	resp := kreq.(*kmsg.SASLAuthenticateRequest).ResponseKind().(*kmsg.SASLAuthenticateResponse)
	resp.ErrorCode = kerr.IllegalSaslState.Code
	resp.ErrorMessage = kmsg.StringPtr("SaslAuthenticate on a connection with no SASL exchange: this listener is plaintext")
	return resp, nil
}
