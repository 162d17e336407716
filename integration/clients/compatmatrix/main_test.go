package main

import (
	"bytes"
	"strings"
	"testing"
)

func ev(action, test, output string) string {
	o := ""
	if output != "" {
		o = `,"Output":` + quote(output)
	}
	return `{"Time":"2026-11-22T04:00:00Z","Action":"` + action + `","Package":"p","Test":"` + test + `"` + o + "}\n"
}

func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '\n':
			b.WriteString(`\n`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// TestCells: a codec passes only when produce and consume both pass; a failed subtest shows FAIL; a
// feature no test covers is pending; a skipped client says so; n/a codecs are marked; versions parsed.
func TestCells(t *testing.T) {
	in := ev("output", "TestCompatFranzGo", "    x_test.go:1: compat-version: franz-go=v1.2.3 (kadm v1.0.0)\n") +
		ev("pass", "TestCompatFranzGo/create_topic", "") +
		ev("pass", "TestCompatFranzGo/produce/gzip", "") +
		ev("fail", "TestCompatFranzGo/consume/gzip", "") +
		ev("pass", "TestCompatFranzGo/produce/none", "") +
		ev("pass", "TestCompatFranzGo/consume/none", "") +
		ev("pass", "TestCompatFranzGo/group_commit_resume", "") +
		ev("fail", "TestCompatFranzGo", "") +
		ev("skip", "TestCompatKafkaJS", "")
	r, err := parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	byKey := func(k string) feature {
		for _, f := range features {
			if f.Key == k {
				return f
			}
		}
		t.Fatalf("no feature %s", k)
		return feature{}
	}
	franz, kafkajs, sarama := clients[0], clients[6], clients[1]
	for _, tc := range []struct {
		c    client
		f    string
		want string
	}{
		{franz, "none", "pass"},
		{franz, "gzip", "FAIL"},
		{franz, "create", "pass"},
		{franz, "group", "pass"},
		{franz, "times", "FAIL (test stopped before this check)"},
		{franz, "replay", "FAIL (test stopped before this check)"},
		{sarama, "replay", "not run"},
		{franz, "zstd", "FAIL (test stopped before this check)"},
		{kafkajs, "zstd", "n/a¹"},
		{clients[3], "delete", "n/a¹"},
		{kafkajs, "none", "skipped (opt-out)"},
		{sarama, "none", "not run"},
	} {
		if got := r.cell(tc.c, byKey(tc.f)); got != tc.want {
			t.Errorf("%s %s = %q, want %q", tc.c.Name, tc.f, got, tc.want)
		}
	}
	if r.versions["TestCompatFranzGo"] != "v1.2.3 (kadm v1.0.0)" {
		t.Errorf("version = %q", r.versions["TestCompatFranzGo"])
	}
	var out bytes.Buffer
	write(&out, r)
	if !strings.Contains(out.String(), "| franz-go (kgo, kadm) | v1.2.3 (kadm v1.0.0) | pass | FAIL (test stopped before this check) | pass | FAIL |") {
		t.Errorf("franz-go row not as expected:\n%s", out.String())
	}
}

func TestRejectsGarbage(t *testing.T) {
	if _, err := parse(strings.NewReader("{not json\n")); err == nil {
		t.Fatal("want an error for a corrupt event line")
	}
}
