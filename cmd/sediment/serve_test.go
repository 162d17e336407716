package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sediment-io/sediment/broker"
)

func TestParseServeDefaults(t *testing.T) {
	cfg, _, err := parseServe(nil, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.NodeID != 1 || cfg.DataDir != "./data" || cfg.Listen != "127.0.0.1:9092" || cfg.RaftListen != "127.0.0.1:9093" ||
		cfg.HTTPListen != "127.0.0.1:9644" || cfg.ObjectStore != "file://./data/objects" || len(cfg.Voters) != 0 {
		t.Fatalf("defaults: %+v", cfg)
	}
}

func TestParseServePrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "s.conf")
	os.WriteFile(file, []byte("# comment\nnode-id = 5\ndata-dir = /from/file\nnum.partitions = 4\nlog.retention.ms=1000\n"), 0o644)
	t.Setenv("SEDIMENT_DATA_DIR", "/from/env")
	t.Setenv("SEDIMENT_CONF", "num.partitions=6; default.replication.factor=1")
	cfg, _, err := parseServe([]string{"--config", file, "--conf", "log.retention.ms=2000", "--voters", "5=127.0.0.1:9093,6=127.0.0.1:9193,7=127.0.0.1:9293"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case cfg.NodeID != 5: // file only
		t.Errorf("node id %d", cfg.NodeID)
	case cfg.DataDir != "/from/env": // env beats file
		t.Errorf("data dir %q", cfg.DataDir)
	case cfg.NumPartitions != 6: // env --conf applied after file --conf
		t.Errorf("num.partitions %d", cfg.NumPartitions)
	case cfg.LogRetentionMs != 2000: // flag beats file
		t.Errorf("log.retention.ms %d", cfg.LogRetentionMs)
	case cfg.ObjectStore != "file:///from/env/objects": // the default follows the data dir
		t.Errorf("object store %q", cfg.ObjectStore)
	case len(cfg.Voters) != 3 || cfg.Voters[2] != (broker.Voter{ID: 7, Addr: "127.0.0.1:9293"}):
		t.Errorf("voters %+v", cfg.Voters)
	}
}

func TestParseServeErrorsNameTheSetting(t *testing.T) {
	for _, c := range []struct {
		args []string
		env  [2]string
		want string
	}{
		{[]string{"--node-id", "x"}, [2]string{}, "--node-id"},
		{[]string{"--voters", "a=b"}, [2]string{}, "--voters"},
		{[]string{"--voters", "1=127.0.0.1:1,1=127.0.0.1:2"}, [2]string{}, "listed twice"},
		{[]string{"--http-listen", "nope"}, [2]string{}, "--http-listen"},
		{[]string{"--object-store", "s3://B"}, [2]string{}, "--object-store"},
		{[]string{"--conf", "message.max.bytes=-5"}, [2]string{}, "message.max.bytes"},
		{[]string{"--conf", "node.id=3"}, [2]string{}, "node.id"}, // read-only: set with --node-id
		{[]string{"--config", "/does/not/exist"}, [2]string{}, "--config"},
		{nil, [2]string{"SEDIMENT_LISTEN", "no-port"}, "--listen"},
		{nil, [2]string{"SEDIMENT_HTTP_LISTEN", "x:y"}, "SEDIMENT_HTTP_LISTEN"},
		{[]string{"stray"}, [2]string{}, "stray"},
	} {
		t.Run(strings.Join(c.args, " ")+c.env[0], func(t *testing.T) {
			if c.env[0] != "" {
				t.Setenv(c.env[0], c.env[1])
			}
			_, _, err := parseServe(c.args, &bytes.Buffer{})
			if err == nil {
				t.Fatal("no error")
			}
			var ue *usageError
			if !errorsAs(err, &ue) {
				t.Fatalf("not a usage error: %v", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("%q does not name %q", err, c.want)
			}
		})
	}
}

func TestRunExitCodes(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"serve", "--help"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "--conf") && !strings.Contains(out.String(), "-conf") {
		t.Fatalf("--help: %d\n%s", code, out.String())
	}
	if code := run([]string{"serve", "--node-id", "-1"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "--node-id") {
		t.Fatalf("bad flag: %d %s", code, errb.String())
	}
	if code := run([]string{"frobnicate"}, &out, &errb); code != 2 {
		t.Fatalf("unknown command: %d", code)
	}
	if code := run(nil, &out, &errb); code != 2 {
		t.Fatalf("no command: %d", code)
	}
}

// TestREADMEDocumentsEverything keeps the README's configuration reference complete.
func TestREADMEDocumentsEverything(t *testing.T) {
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	var f serveFlags
	newServeFlagSet(&f, &bytes.Buffer{}).VisitAll(func(fl *flag.Flag) {
		if !strings.Contains(readme, "`--"+fl.Name) || !strings.Contains(readme, envName(fl.Name)) {
			t.Errorf("README does not document --%s / %s", fl.Name, envName(fl.Name))
		}
	})
	for _, n := range broker.BrokerConfigNames() {
		def, _, _ := broker.BrokerConfigDoc(n)
		if def == "" {
			def = "(none)"
		} else {
			def = "`" + def + "`"
		}
		if !strings.Contains(readme, "| `"+n+"` | "+def+" |") {
			t.Errorf("README's broker config table lacks %s with default %s", n, def)
		}
	}
}

func errorsAs(err error, target **usageError) bool {
	for err != nil {
		if ue, ok := err.(*usageError); ok {
			*target = ue
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

func TestConfErrorsNameTheirSource(t *testing.T) {
	t.Setenv("SEDIMENT_CONF", "num.partitions=x")
	_, _, err := parseServe(nil, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "SEDIMENT_CONF") || !strings.Contains(err.Error(), "num.partitions") {
		t.Fatalf("env conf error: %v", err)
	}
	os.Unsetenv("SEDIMENT_CONF")
	file := filepath.Join(t.TempDir(), "c")
	os.WriteFile(file, []byte("\nlog.roll.ms = -4\n"), 0o644)
	_, _, err = parseServe([]string{"--config", file}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), file+":2") || !strings.Contains(err.Error(), "log.roll.ms") {
		t.Fatalf("file conf error: %v", err)
	}
}

// TestParseServeMultiNodeTiering: the embedded default store is per broker, so a cluster of several
// brokers tiers only with an --object-store they share.
func TestParseServeMultiNodeTiering(t *testing.T) {
	three := "1=127.0.0.1:9093,2=127.0.0.1:9193,3=127.0.0.1:9293"
	for _, c := range []struct {
		name     string
		args     []string
		wantTier bool
		wantErr  string
	}{
		{"single node, default store", nil, true, ""},
		{"single listed voter is this node", []string{"--voters", "1=127.0.0.1:9093"}, true, ""},
		{"three voters, default store", []string{"--voters", three}, false, ""},
		{"joiner, default store", []string{"--node-id", "4", "--voters", "1=127.0.0.1:9093"}, false, ""},
		{"three voters, s3 store", []string{"--voters", three, "--object-store", "s3://bucket?endpoint=http://127.0.0.1:9000&path-style=true"}, true, ""},
		{"three voters, explicit file store", []string{"--voters", three, "--object-store", "file:///shared/objects"}, true, ""},
		{"three voters, default store, tiering asked for", []string{"--voters", three, "--conf", "remote.log.storage.system.enable=true"}, false, "all share"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, _, err := parseServe(append([]string{"--data-dir", t.TempDir()}, c.args...), &bytes.Buffer{})
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) || !strings.Contains(err.Error(), "--object-store") {
					t.Fatalf("err = %v, want one naming --object-store and %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.RemoteLogStorageEnable != c.wantTier {
				t.Errorf("remote.log.storage.system.enable = %v, want %v", cfg.RemoteLogStorageEnable, c.wantTier)
			}
		})
	}
}
