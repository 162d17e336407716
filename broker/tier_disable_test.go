package broker

import (
	"errors"
	"strings"
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
	rs, err = adm.AlterTopicConfigs(ctx, append(set("remote.log.copy.disable", "true"), set("local.retention.ms", "-2")...), "on")
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

// TestTieredTopicConfigRules: Kafka's checks of a topic with remote storage on
// (LogConfig.validateTopicLogConfigValues), on CreateTopics and on every AlterConfigs path, against
// the effective values after the change: INVALID_CONFIG with Kafka's message.
func TestTieredTopicConfigRules(t *testing.T) {
	ctx := testCtx(t)
	type outcome struct {
		err error
		msg string
	}
	create := func(adm *kadm.Client, name string, configs map[string]*string) outcome {
		t.Helper()
		rs, err := adm.CreateTopics(ctx, 1, 1, configs, name)
		if err != nil {
			t.Fatal(err)
		}
		r := rs[name]
		return outcome{r.Err, r.ErrMessage}
	}
	check := func(what string, got outcome, want error, msg string) {
		t.Helper()
		if !errors.Is(got.err, want) && !(want == nil && got.err == nil) || !strings.Contains(got.msg, msg) {
			t.Errorf("%s: %v %q; want %v with %q", what, got.err, got.msg, want, msg)
		}
	}

	// A broker without tiered storage refuses remote.storage.enable=true, at creation and later.
	off := kadm.NewClient(newTestClient(t, newTestBroker(t, func(c *Config) { c.RemoteLogStorageEnable = false })))
	check("create on a broker without tiering", create(off, "t0", map[string]*string{"remote.storage.enable": ptr("true")}),
		kerr.InvalidConfig, "Tiered Storage functionality is disabled in the broker")
	check("create plain", create(off, "t1", nil), nil, "")
	rs, err := off.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "remote.storage.enable", Value: ptr("true")}}, "t1")
	if err != nil {
		t.Fatal(err)
	}
	check("enable later", outcome{rs[0].Err, rs[0].ErrMessage}, kerr.InvalidConfig, "Tiered Storage functionality is disabled")

	adm := kadm.NewClient(newTestClient(t, newTestBroker(t, tieredConfig)))
	for _, c := range []struct {
		name    string
		configs []string
		want    error
		msg     string
	}{
		{"local above total", []string{"retention.ms", "3600000", "local.retention.ms", "3600001"}, kerr.InvalidConfig,
			"Invalid value 3600001 for configuration local.retention.ms: Value must not be more than retention.ms property value: 3600000"},
		{"local unlimited, total limited", []string{"retention.ms", "3600000", "local.retention.ms", "-1"}, kerr.InvalidConfig,
			"Value must not be -1 as retention.ms value is set as 3600000."},
		{"local bytes above total", []string{"retention.bytes", "1000", "local.retention.bytes", "2000"}, kerr.InvalidConfig,
			"Value must not be more than retention.bytes property value: 1000"},
		{"local above the broker's default total (7 days)", []string{"local.retention.ms", "604800001"}, kerr.InvalidConfig,
			"Value must not be more than retention.ms property value: 604800000"},
		{"both unlimited", []string{"retention.ms", "-1", "local.retention.ms", "-1"}, nil, ""},
		{"local follows total", []string{"retention.ms", "3600000", "local.retention.ms", "-2"}, nil, ""},
		{"local equal to total", []string{"retention.bytes", "1000", "local.retention.bytes", "1000"}, nil, ""},
		{"copy disabled, local shorter", []string{"remote.log.copy.disable", "true"}, kerr.InvalidConfig,
			"the `local.retention.ms` and `retention.ms` must be set to the identical value"},
		{"copy disabled, local follows", []string{"remote.log.copy.disable", "true", "local.retention.ms", "-2"}, nil, ""},
	} {
		check("create: "+c.name, create(adm, strings.ReplaceAll(c.name, " ", "-")[:10]+"-x", tierTopicConfigs(c.configs...)), c.want, c.msg)
	}

	// AlterConfigs judge the topic's configs after the change, in every form.
	check("create tiered", create(adm, "alt", tierTopicConfigs("retention.ms", "3600000")), nil, "")
	lower := []kadm.AlterConfig{{Name: "retention.ms", Value: ptr("50")}} // below local.retention.ms 100
	for _, alter := range []struct {
		name string
		call func() (kadm.AlterConfigsResponses, error)
	}{
		{"incremental", func() (kadm.AlterConfigsResponses, error) { return adm.AlterTopicConfigs(ctx, lower, "alt") }},
		{"incremental validate-only", func() (kadm.AlterConfigsResponses, error) { return adm.ValidateAlterTopicConfigs(ctx, lower, "alt") }},
		{"legacy replace", func() (kadm.AlterConfigsResponses, error) {
			return adm.AlterTopicConfigsState(ctx, append(lower, kadm.AlterConfig{Name: "local.retention.ms", Value: ptr("100")},
				kadm.AlterConfig{Name: "remote.storage.enable", Value: ptr("true")}), "alt")
		}},
	} {
		rs, err := alter.call()
		if err != nil {
			t.Fatal(err)
		}
		check(alter.name+": retention.ms below local.retention.ms", outcome{rs[0].Err, rs[0].ErrMessage}, kerr.InvalidConfig,
			"Invalid value 100 for configuration local.retention.ms: Value must not be more than retention.ms property value: 50")
	}
	// Lowering both together is fine.
	rs, err = adm.AlterTopicConfigs(ctx, append(lower, kadm.AlterConfig{Name: "local.retention.ms", Value: ptr("40")}), "alt")
	if err != nil {
		t.Fatal(err)
	}
	check("lower both", outcome{rs[0].Err, rs[0].ErrMessage}, nil, "")
}
