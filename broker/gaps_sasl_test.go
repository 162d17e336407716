package broker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
)

// SASL on the plaintext listener, as Kafka's KafkaApis answers it: SaslHandshake (v0–v1) and
// SaslAuthenticate (v0–v2) are advertised and answered ILLEGAL_SASL_STATE, and the connection stays
// open. A franz-go client configured with SASL/PLAIN fails with ILLEGAL_SASL_STATE, not with a
// dropped connection.
func TestSaslOnPlaintextListenerIsIllegalSaslState(t *testing.T) {
	b := newTestBroker(t)
	rc := dialRaw(t, b)
	av := kmsg.NewPtrApiVersionsRequest()
	av.Version = 0
	rc.write(frame(av, 1))
	avr := kmsg.NewPtrApiVersionsResponse()
	avr.Version = 0
	if _, err := rc.read(avr); err != nil {
		t.Fatal(err)
	}
	advertised := map[int16][2]int16{}
	for _, k := range avr.ApiKeys {
		advertised[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
	}
	if got := advertised[int16(kmsg.SASLHandshake)]; got != [2]int16{0, 1} {
		t.Fatalf("SaslHandshake advertised %v, want [0 1] (librdkafka needs v0 listed)", got)
	}
	if got := advertised[int16(kmsg.SASLAuthenticate)]; got != [2]int16{0, 2} {
		t.Fatalf("SaslAuthenticate advertised %v, want [0 2]", got)
	}

	corr := int32(1)
	for _, v := range []int16{0, 1} {
		hs := kmsg.NewPtrSASLHandshakeRequest()
		hs.Version, hs.Mechanism = v, "PLAIN"
		corr++
		rc.write(frame(hs, corr))
		resp := kmsg.NewPtrSASLHandshakeResponse()
		resp.Version = v
		if got, err := rc.read(resp); err != nil || got != corr {
			t.Fatalf("SaslHandshake v%d: corr %d err %v (connection closed?)", v, got, err)
		}
		if resp.ErrorCode != kerr.IllegalSaslState.Code || len(resp.SupportedMechanisms) != 0 {
			t.Fatalf("SaslHandshake v%d: %v, mechanisms %v", v, kerr.ErrorForCode(resp.ErrorCode), resp.SupportedMechanisms)
		}
	}
	for _, v := range []int16{0, 1, 2} {
		sa := kmsg.NewPtrSASLAuthenticateRequest()
		sa.Version, sa.SASLAuthBytes = v, []byte("\x00user\x00secret")
		corr++
		rc.write(frame(sa, corr))
		resp := kmsg.NewPtrSASLAuthenticateResponse()
		resp.Version = v
		if got, err := rc.read(resp); err != nil || got != corr {
			t.Fatalf("SaslAuthenticate v%d: corr %d err %v", v, got, err)
		}
		if resp.ErrorCode != kerr.IllegalSaslState.Code || resp.ErrorMessage == nil || len(resp.SASLAuthBytes) != 0 {
			t.Fatalf("SaslAuthenticate v%d: %v %v", v, kerr.ErrorForCode(resp.ErrorCode), resp.ErrorMessage)
		}
	}
	// Still the same connection.
	corr++
	rc.write(frame(av, corr))
	if got, err := rc.read(avr); err != nil || got != corr {
		t.Fatalf("ApiVersions after SASL requests: corr %d err %v", got, err)
	}

	// A client configured for SASL: a clear authentication error, quickly.
	cl := newTestClient(t, b, kgo.SASL(plain.Auth{User: "user", Pass: "secret"}.AsMechanism()), kgo.RequestRetries(0))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
	if !errors.Is(err, kerr.IllegalSaslState) {
		t.Fatalf("kgo with SASL/PLAIN against the plaintext listener: %v, want ILLEGAL_SASL_STATE", err)
	}
	// The broker counted no frame errors for any of this.
	if n := b.metrics.frameErrors.Load(); n != 0 {
		t.Fatalf("%d frame errors", n)
	}
}
