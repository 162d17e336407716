package broker

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// TestRemoteStorageCannotBeTurnedOff: once a topic has remote.storage.enable=true, no AlterConfigs
// path (incremental SET, incremental validate-only, legacy replace) may turn it off — Kafka answers
// INVALID_CONFIG — while changes that keep it on (removing the override when the broker default is
// on, remote.log.copy.disable) and turning it on are accepted.
func TestRemoteStorageCannotBeTurnedOff(t *testing.T) {
	b := newTestBroker(t, tieredConfig)
	createTopic(t, b, "on", 1, tierTopicConfigs())
	createTopic(t, b, "off", 1, map[string]*string{"remote.storage.enable": ptr("false")})
	adm := kadm.NewClient(newTestClient(t, b))
	ctx := testCtx(t)
	set := func(name, v string) []kadm.AlterConfig {
		return []kadm.AlterConfig{{Op: kadm.SetConfig, Name: name, Value: ptr(v)}}
	}
	enabled := func(topic string) string {
		t.Helper()
		rc, err := adm.DescribeTopicConfigs(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range rc[0].Configs {
			if c.Key == "remote.storage.enable" {
				return deref(c.Value)
			}
		}
		t.Fatalf("%s: remote.storage.enable not described", topic)
		return ""
	}
	wantErr := func(what string, rs kadm.AlterConfigsResponses, err error, want error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if len(rs) != 1 || !errors.Is(rs[0].Err, want) {
			t.Fatalf("%s: got %+v, want %v", what, rs, want)
		}
	}

	rs, err := adm.AlterTopicConfigs(ctx, set("remote.storage.enable", "false"), "on")
	wantErr("incremental SET false", rs, err, kerr.InvalidConfig)
	rs, err = adm.ValidateAlterTopicConfigs(ctx, set("remote.storage.enable", "FALSE"), "on")
	wantErr("validate-only SET FALSE", rs, err, kerr.InvalidConfig)
	rs, err = adm.AlterTopicConfigsState(ctx, set("remote.storage.enable", "false"), "on")
	wantErr("legacy AlterConfigs false", rs, err, kerr.InvalidConfig)
	if got := enabled("on"); got != "true" {
		t.Fatalf("after the refused changes remote.storage.enable = %q, want true", got)
	}

	// Still on afterwards (the broker's default is on): accepted.
	rs, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "remote.storage.enable"}}, "on")
	wantErr("DELETE the override (default on)", rs, err, nil)
	rs, err = adm.AlterTopicConfigs(ctx, set("remote.log.copy.disable", "true"), "on")
	wantErr("remote.log.copy.disable=true", rs, err, nil)
	if got := enabled("on"); got != "true" {
		t.Fatalf("remote.storage.enable = %q, want true from the broker default", got)
	}

	// Off to on is allowed; back to off is not.
	rs, err = adm.AlterTopicConfigs(ctx, set("remote.storage.enable", "true"), "off")
	wantErr("off topic: SET true", rs, err, nil)
	rs, err = adm.AlterTopicConfigs(ctx, set("remote.storage.enable", "false"), "off")
	wantErr("off topic turned on: SET false", rs, err, kerr.InvalidConfig)
	if got := enabled("off"); got != "true" {
		t.Fatalf("topic turned on: remote.storage.enable = %q, want true", got)
	}
}
