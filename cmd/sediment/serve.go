package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sediment-io/sediment/broker"
)

func init() {
	registerSubcommand("serve", "run a broker (with no flags: a complete single-node cluster in ./data)", runServe)
}

// serveFlags are the command-line settings of `sediment serve`. Each flag NAME is also read from
// the environment as SEDIMENT_<NAME> (upper case, '-' → '_') and from the optional config file as
// "name = value"; precedence is flag > environment > config file > default.
type serveFlags struct {
	nodeID, dataDir, listen, advertise, raftListen, raftAdvertise, httpListen string
	voters, objectStore, logLevel, logFormat, configFile                      string
	conf                                                                      confList
}

// valueOrigin is where a flag's value came from when not from the command line.
type valueOrigin struct{ where, value string }

// confList collects repeatable --conf name=value.
type confList []string

func (c *confList) String() string { return strings.Join(*c, ",") }
func (c *confList) Set(v string) error {
	if !strings.Contains(v, "=") {
		return fmt.Errorf("want name=value, got %q", v)
	}
	*c = append(*c, v)
	return nil
}

func newServeFlagSet(f *serveFlags, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(out)
	d := broker.DefaultConfig()
	fs.StringVar(&f.nodeID, "node-id", strconv.Itoa(int(d.NodeID)), "this node's id (Kafka node.id), >= 0, unique in the cluster")
	fs.StringVar(&f.dataDir, "data-dir", d.DataDir, "directory for partition logs (logs/) and metadata (meta/)")
	fs.StringVar(&f.listen, "listen", d.Listen, "Kafka listener host:port")
	fs.StringVar(&f.advertise, "advertise", "", "host:port clients are told to connect to (default: the listen address)")
	fs.StringVar(&f.raftListen, "raft-listen", d.RaftListen, "Raft (metadata) listener host:port")
	fs.StringVar(&f.raftAdvertise, "raft-advertise", "", "Raft address other voters use to reach this node (default: raft-listen)")
	fs.StringVar(&f.httpListen, "http-listen", d.HTTPListen, "HTTP listener for /metrics, /healthz, /readyz (\"\" = off)")
	fs.StringVar(&f.voters, "voters", "", "initial Raft voters as id=host:port,... (empty: a single-node cluster of this node)")
	fs.StringVar(&f.objectStore, "object-store", "file://./data/objects", "object store: file://DIR or s3://BUCKET[/PREFIX]?endpoint=URL&region=R&path-style=true\n(closed segments of tiered topics go there: remote.log.storage.system.enable, topic remote.storage.enable.\nS3 credentials come from the standard AWS environment/config chain)")
	fs.Var(&f.conf, "conf", "a Kafka broker config as name=value (repeatable), e.g. --conf log.retention.ms=3600000")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&f.logFormat, "log-format", "text", "log format: text or json (one line per event, on stderr)")
	fs.StringVar(&f.configFile, "config", "", "optional config file of \"name = value\" lines: flag names (node-id, data-dir, ...)\nand Kafka broker configs (log.retention.ms, ...); '#' starts a comment")
	fs.Usage = func() {} // errors are reported by run(); --help prints serveUsage to stdout
	return fs
}

func serveUsage(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprintln(w, "Usage: sediment serve [flags]")
	fmt.Fprintln(w, "\nRuns one Sediment broker. With no flags it is a complete single-node cluster: data in ./data,")
	fmt.Fprintln(w, "Kafka on 127.0.0.1:9092, Raft on 127.0.0.1:9093, HTTP (/metrics, /healthz, /readyz) on 127.0.0.1:9644.")
	fmt.Fprintln(w, "\nEvery flag can also be set in the environment as SEDIMENT_<NAME> (e.g. SEDIMENT_DATA_DIR,")
	fmt.Fprintln(w, "SEDIMENT_CONF with several name=value separated by ';') or in the --config file.")
	fmt.Fprintln(w, "Precedence: flag > environment > config file > default.")
	fmt.Fprintln(w, "\nFlags:")
	fs.PrintDefaults()
	fmt.Fprintln(w, "\nBroker configs for --conf (Kafka names; default in brackets):")
	for _, n := range broker.BrokerConfigNames() {
		def, doc, _ := broker.BrokerConfigDoc(n)
		fmt.Fprintf(w, "  %s [%s]\n      %s\n", n, def, doc)
	}
	fmt.Fprintln(w, "\nSIGTERM or SIGINT shuts down cleanly.")
}

// envName is the environment variable of a flag.
func envName(flagName string) string {
	return "SEDIMENT_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func runServe(args []string, stdout, stderr io.Writer) error {
	cfg, logger, err := parseServe(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		var f serveFlags
		serveUsage(newServeFlagSet(&f, stdout), stdout)
		return err
	}
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	startCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	b, err := broker.Start(startCtx, cfg)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted while starting: %w", err)
		}
		return err
	}
	<-ctx.Done()
	logger.Info("signal received, shutting down")
	if err := b.Close(); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	logger.Info("clean shutdown complete")
	return nil
}

// parseServe turns flags, environment and config file into a validated broker.Config.
func parseServe(args []string, stderr io.Writer) (broker.Config, *slog.Logger, error) {
	var f serveFlags
	fs := newServeFlagSet(&f, stderr)
	cfg := broker.DefaultConfig()
	// origins remembers values that came from the environment or the config file, so an error
	// names where the bad value was written, not just the flag.
	origins := map[string]valueOrigin{}
	bad := func(flagName, value, format string, args ...any) error {
		where := "flag --" + flagName
		if o, ok := origins[flagName]; ok && o.value == value {
			where = o.where + " (flag --" + flagName + ")"
		}
		return usageErrorf("invalid value %q for %s: %s", value, where, fmt.Sprintf(format, args...))
	}

	// Layers below the command line: config file (named by --config or SEDIMENT_CONFIG), then env.
	file := os.Getenv(envName("config"))
	for i, a := range args {
		switch {
		case a == "--config" || a == "-config":
			if i+1 < len(args) {
				file = args[i+1]
			}
		case strings.HasPrefix(a, "--config=") || strings.HasPrefix(a, "-config="):
			file = a[strings.IndexByte(a, '=')+1:]
		}
	}
	if file != "" {
		if err := applyConfigFile(fs, file, origins); err != nil {
			return cfg, nil, err
		}
	}
	var envErr error
	fs.VisitAll(func(fl *flag.Flag) {
		env := envName(fl.Name)
		v, ok := os.LookupEnv(env)
		if !ok || envErr != nil || fl.Name == "config" {
			return
		}
		vals := []string{v}
		if fl.Name == "conf" {
			vals = splitConfEnv(v)
		}
		for _, v := range vals {
			if err := fs.Set(fl.Name, v); err != nil {
				envErr = usageErrorf("invalid value %q for environment variable %s (flag --%s): %v", v, env, fl.Name, err)
				return
			}
			if fl.Name == "conf" {
				origins["conf="+v] = valueOrigin{"environment variable " + env, v}
			} else {
				origins[fl.Name] = valueOrigin{"environment variable " + env, fl.Value.String()}
			}
		}
	})
	if envErr != nil {
		return cfg, nil, envErr
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, nil, err
		}
		return cfg, nil, usageErrorf("%v", err) // the flag package names the flag
	}
	if fs.NArg() > 0 {
		return cfg, nil, usageErrorf("unexpected argument %q (flags only)", fs.Arg(0))
	}

	logger, err := newLogger(f.logLevel, f.logFormat, stderr)
	if err != nil {
		return cfg, nil, err
	}
	cfg.Logger = logger

	id, err := strconv.ParseInt(f.nodeID, 10, 32)
	if err != nil || id < 0 {
		return cfg, nil, bad("node-id", f.nodeID, "want an integer >= 0")
	}
	cfg.NodeID = int32(id)
	if f.dataDir == "" {
		return cfg, nil, bad("data-dir", f.dataDir, "must not be empty")
	}
	cfg.DataDir = f.dataDir
	cfg.Listen, cfg.Advertise = f.listen, f.advertise
	cfg.RaftListen, cfg.RaftAdvertise = f.raftListen, f.raftAdvertise
	cfg.HTTPListen = f.httpListen
	if cfg.Voters, err = parseVoters(f.voters); err != nil {
		return cfg, nil, bad("voters", f.voters, "%v", err)
	}
	objectStoreSet := false
	fs.Visit(func(fl *flag.Flag) { objectStoreSet = objectStoreSet || fl.Name == "object-store" })
	if !objectStoreSet { // the default follows --data-dir
		f.objectStore = "file://" + strings.TrimSuffix(f.dataDir, "/") + "/objects"
	}
	cfg.ObjectStore = f.objectStore
	if _, err := broker.ParseObjectStore(f.objectStore); err != nil {
		return cfg, nil, bad("object-store", f.objectStore, "%v", err)
	}
	// The embedded default store is a directory of this broker's own. In a cluster of several
	// brokers each would upload to its own disk: after a leadership move the manifest would name
	// objects no other broker can read, and once local retention ran the history would live on one
	// machine. So without --object-store such a cluster does not tier, unless asked to (an error).
	multiNode := len(cfg.Voters) > 1 || len(cfg.Voters) == 1 && cfg.Voters[0].ID != cfg.NodeID
	if multiNode && !objectStoreSet {
		cfg.RemoteLogStorageEnable = false
	}
	for _, kv := range f.conf {
		name, value, _ := strings.Cut(kv, "=")
		if err := cfg.Set(strings.TrimSpace(name), strings.TrimSpace(value)); err != nil {
			where := "flag --conf"
			if o, ok := origins["conf="+kv]; ok {
				where = o.where + " (flag --conf)"
			}
			return cfg, nil, usageErrorf("invalid value %q for %s: %v", kv, where, err)
		}
	}
	for _, a := range []struct{ flag, v string }{{"listen", f.listen}, {"raft-listen", f.raftListen}, {"advertise", f.advertise}, {"raft-advertise", f.raftAdvertise}, {"http-listen", f.httpListen}} {
		if a.v == "" {
			continue
		}
		if err := checkHostPort(a.v); err != nil {
			return cfg, nil, bad(a.flag, a.v, "%v", err)
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, nil, usageErrorf("invalid configuration: %v", err)
	}
	switch {
	case multiNode && !objectStoreSet && cfg.RemoteLogStorageEnable:
		return cfg, nil, usageErrorf("remote.log.storage.system.enable=true in a cluster of several brokers (--voters) needs an object store they all share: pass --object-store s3://BUCKET?... (or a file:// directory on a filesystem every broker mounts); the default %s is this broker's alone", f.objectStore)
	case multiNode && !objectStoreSet:
		logger.Info("tiered storage off: a cluster of several brokers (--voters) without --object-store; the default store is a directory of this broker's own")
	case multiNode && strings.HasPrefix(cfg.ObjectStore, "file://"):
		logger.Warn("file:// object store in a cluster of several brokers: every broker must see the same directory (a shared filesystem), or reads of tiered data fail after leadership moves", "object_store", cfg.ObjectStore)
	}
	return cfg, logger, nil
}

func checkHostPort(s string) error {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return errors.New("want host:port")
	}
	p, err := strconv.ParseUint(s[i+1:], 10, 16)
	if err != nil {
		return fmt.Errorf("bad port %q", s[i+1:])
	}
	_ = p
	return nil
}

// splitConfEnv splits SEDIMENT_CONF: name=value entries separated by ';' or newlines.
func splitConfEnv(v string) []string {
	var out []string
	for _, part := range strings.FieldsFunc(v, func(r rune) bool { return r == ';' || r == '\n' }) {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// parseVoters parses id=host:port,id=host:port.
func parseVoters(s string) ([]broker.Voter, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []broker.Voter
	for _, part := range strings.Split(s, ",") {
		idStr, addr, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, fmt.Errorf("%q: want id=host:port", part)
		}
		id, err := strconv.ParseInt(idStr, 10, 32)
		if err != nil || id < 0 {
			return nil, fmt.Errorf("%q: bad node id %q", part, idStr)
		}
		if err := checkHostPort(addr); err != nil {
			return nil, fmt.Errorf("%q: %v", part, err)
		}
		out = append(out, broker.Voter{ID: int32(id), Addr: addr})
	}
	return out, nil
}

// applyConfigFile reads "name = value" lines: a flag name sets that flag; any other name is a broker
// config (as --conf name=value).
func applyConfigFile(fs *flag.FlagSet, path string, origins map[string]valueOrigin) error {
	fh, err := os.Open(path)
	if err != nil {
		return usageErrorf("invalid value %q for flag --config: %v", path, err)
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for ln := 1; sc.Scan(); ln++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok {
			return usageErrorf("config file %s:%d: want name = value, got %q", path, ln, line)
		}
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if name == "config" {
			return usageErrorf("config file %s:%d: a config file cannot name another config file", path, ln)
		}
		if fs.Lookup(name) == nil {
			name, value = "conf", name+"="+value
		}
		if err := fs.Set(name, value); err != nil {
			return usageErrorf("config file %s:%d: invalid value %q for %s: %v", path, ln, value, name, err)
		}
		where := fmt.Sprintf("config file %s:%d", path, ln)
		if name == "conf" {
			origins["conf="+value] = valueOrigin{where, value}
		} else {
			origins[name] = valueOrigin{where, fs.Lookup(name).Value.String()}
		}
	}
	if err := sc.Err(); err != nil {
		return usageErrorf("config file %s: %v", path, err)
	}
	return nil
}

func newLogger(level, format string, w io.Writer) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usageErrorf("invalid value %q for flag --log-level: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usageErrorf("invalid value %q for flag --log-format: want text or json", format)
}
