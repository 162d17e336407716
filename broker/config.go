package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sediment-io/sediment/meta"
	"github.com/sediment-io/sediment/segment"
	"github.com/sediment-io/sediment/tiering"
)

// Config is everything one broker process needs. It is a plain struct: cmd/sediment fills it from
// flags, environment and a config file; tests fill it directly. DefaultConfig gives a complete
// single-node setup; Validate checks it before anything is opened.
//
// The Kafka broker configs (the second group of fields) carry Kafka's names and defaults. They are
// also reachable by those names through Set/Get (used by `--conf name=value` and DescribeConfigs),
// driven by the table brokerConfigDefs below, so a name is spelled in exactly one place.
type Config struct {
	// Process identity and addresses (Sediment's own; not Kafka configs).
	NodeID        int32  // node.id / broker.id
	DataDir       string // log.dirs: partition logs under DataDir/logs, Raft state under DataDir/meta
	Listen        string // Kafka listener host:port; port 0 picks a free port
	Advertise     string // host:port given to clients in Metadata; "" = the bound Listen address
	RaftListen    string // Raft listener host:port
	RaftAdvertise string // "" = RaftListen
	HTTPListen    string // metrics and health host:port; "" = no HTTP server
	// Voters are the initial Raft voters (id → Raft address); empty means a single-voter cluster of this node.
	// A node not listed joins the cluster as a non-voter through the listed voters (meta.Join).
	Voters      []Voter
	ObjectStore string // file://DIR or s3://BUCKET?...: where closed segments of tiered topics go
	Rack        string // broker.rack
	Logger      *slog.Logger
	// MetaConfig, when set, adjusts the metadata node's config after the broker filled it (tests
	// shorten Raft timings; tools may tune it).
	MetaConfig func(*meta.Config)
	// tierTuning, when set (tests in this package), adjusts the tiering loops' timings;
	// tierStoreWrap wraps the opened object store (tests inject faults with it).
	tierTuning    func(*tierTuning)
	tierStoreWrap func(tiering.Store) tiering.Store
	// tierThrottleSchedP99 edits the contention signal of the adaptive cold-read throttle each
	// tick (tests inject contention with it; tier_throttle.go).
	tierThrottleSchedP99 func(*time.Duration)

	// Kafka broker configs. Durations are in milliseconds as in Kafka.
	NumPartitions            int32  // num.partitions
	DefaultReplicationFactor int16  // default.replication.factor
	AutoCreateTopicsEnable   bool   // auto.create.topics.enable
	DeleteTopicEnable        bool   // delete.topic.enable
	SocketRequestMaxBytes    int32  // socket.request.max.bytes
	QueuedMaxRequestBytes    int64  // queued.max.request.bytes (<= 0 = unbounded)
	ConnectionsMaxIdleMs     int64  // connections.max.idle.ms
	MessageMaxBytes          int32  // message.max.bytes (batch size limit; topic max.message.bytes)
	FetchMaxBytes            int32  // fetch.max.bytes
	MinInsyncReplicas        int32  // min.insync.replicas
	ReplicaLagTimeMaxMs      int64  // replica.lag.time.max.ms
	LogRetentionMs           int64  // log.retention.ms (-1 = unlimited)
	LogRetentionBytes        int64  // log.retention.bytes (-1 = unlimited)
	LogRetentionCheckMs      int64  // log.retention.check.interval.ms
	LogSegmentBytes          int32  // log.segment.bytes
	LogRollMs                int64  // log.roll.ms
	LogIndexSizeMaxBytes     int32  // log.index.size.max.bytes
	LogIndexIntervalBytes    int32  // log.index.interval.bytes
	LogCleanupPolicy         string // log.cleanup.policy (only "delete" is implemented)
	LogFlushPolicy           string // log.flush.policy: always | interval | os (Sediment extension)
	LogFlushIntervalMs       int64  // log.flush.interval.ms (used by policy "interval")
	LogSegmentRecycleFiles   int32  // log.segment.recycle.files (Sediment extension; 0 = off)
	LogSegmentRecycleMs      int64  // log.segment.recycle.ms (Sediment extension): pool files' idle limit
	LogMessageTimestampType  string // log.message.timestamp.type: CreateTime | LogAppendTime
	LogTimestampBeforeMaxMs  int64  // log.message.timestamp.before.max.ms
	LogTimestampAfterMaxMs   int64  // log.message.timestamp.after.max.ms
	LogLocalRetentionMs      int64  // log.local.retention.ms (-2 = use log.retention.ms)
	LogLocalRetentionBytes   int64  // log.local.retention.bytes (-2 = use log.retention.bytes)
	RemoteLogStorageEnable   bool   // remote.log.storage.system.enable
	CompressionType          string // compression.type (only "producer" is implemented)
	ReplicaSelectorClass     string // replica.selector.class (KIP-392; "" = leader only)

	// Tiering task timings: remote.log.manager.task.interval.ms, remote.log.manager.task.retry.backoff.ms,
	// remote.log.manager.task.retry.backoff.max.ms.
	RemoteLogManagerTaskIntervalMs        int64
	RemoteLogManagerTaskRetryBackoffMs    int64
	RemoteLogManagerTaskRetryBackoffMaxMs int64
	RemoteLogReaderCacheBytes             int64  // remote.log.reader.cache.bytes (Sediment extension)
	RemoteLogSegmentCompressionType       string // remote.log.segment.compression.type: none | lz4 (Sediment extension)
	RemoteLogManagerFetchMaxBytesPerSec   int64  // remote.log.manager.fetch.max.bytes.per.second (KIP-956)
	RemoteLogManagerCopyMaxBytesPerSec    int64  // remote.log.manager.copy.max.bytes.per.second (KIP-956)
	// Adaptive cold-read budget (Sediment extensions; broker/tier_throttle.go):
	// remote.log.reader.adaptive.throttle.enable, .min.bytes.per.second, .sched.latency.us.
	RemoteLogReaderAdaptiveThrottleEnable         bool
	RemoteLogReaderAdaptiveThrottleMinBytesPerSec int64
	RemoteLogReaderAdaptiveThrottleSchedLatencyUs int64

	// Group coordinator (Kafka names and defaults; read by the groups code).
	GroupInitialRebalanceDelayMs     int32  // group.initial.rebalance.delay.ms
	GroupMinSessionTimeoutMs         int32  // group.min.session.timeout.ms
	GroupMaxSessionTimeoutMs         int32  // group.max.session.timeout.ms
	GroupMaxSize                     int32  // group.max.size
	OffsetsRetentionMinutes          int32  // offsets.retention.minutes
	OffsetsRetentionCheckIntervalMs  int64  // offsets.retention.check.interval.ms
	OffsetMetadataMaxBytes           int32  // offset.metadata.max.bytes
	GroupConsumerHeartbeatIntervalMs int32  // group.consumer.heartbeat.interval.ms
	GroupConsumerSessionTimeoutMs    int32  // group.consumer.session.timeout.ms
	GroupConsumerAssignors           string // group.consumer.assignors (comma-separated; the first is the default)
}

// Voter is one initial Raft voter.
type Voter struct {
	ID   int32
	Addr string
}

// DefaultConfig is a complete single-node cluster on loopback with Kafka's defaults.
func DefaultConfig() Config {
	c := Config{
		NodeID:     1,
		DataDir:    "./data",
		Listen:     "127.0.0.1:9092",
		RaftListen: "127.0.0.1:9093",
		HTTPListen: "127.0.0.1:9644",
	}
	for _, d := range brokerConfigDefs {
		if d.set != nil && d.def != "" {
			if err := d.set(&c, d.def); err != nil {
				panic(fmt.Sprintf("broker config %s: bad default %q: %v", d.name, d.def, err))
			}
		}
	}
	c.ObjectStore = "file://" + c.DataDir + "/objects"
	return c
}

// Validate checks every field; the error names the config at fault.
func (c *Config) Validate() error {
	var errs []error
	if c.NodeID < 0 {
		errs = append(errs, fmt.Errorf("node.id: must be >= 0, got %d", c.NodeID))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("data dir: must not be empty"))
	}
	if c.LogSegmentRecycleFiles > segment.MaxRecycleSegments {
		errs = append(errs, fmt.Errorf("log.segment.recycle.files: must be at most %d, got %d", segment.MaxRecycleSegments, c.LogSegmentRecycleFiles))
	}
	addrs := []struct{ name, v string }{{"listen", c.Listen}, {"raft listen", c.RaftListen}}
	if c.HTTPListen != "" {
		addrs = append(addrs, struct{ name, v string }{"http listen", c.HTTPListen})
	}
	for _, a := range addrs {
		if _, _, err := net.SplitHostPort(a.v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not host:port: %v", a.name, a.v, err))
		}
	}
	if c.Advertise != "" {
		if _, err := splitHostPort(c.Advertise); err != nil {
			errs = append(errs, fmt.Errorf("advertise: %v", err))
		}
	}
	seen := map[int32]bool{}
	for _, v := range c.Voters {
		if seen[v.ID] {
			errs = append(errs, fmt.Errorf("voters: node id %d listed twice", v.ID))
		}
		seen[v.ID] = true
		if _, _, err := net.SplitHostPort(v.Addr); err != nil {
			errs = append(errs, fmt.Errorf("voters: %d=%q is not host:port", v.ID, v.Addr))
		}
	}
	if _, err := ParseObjectStore(c.ObjectStore); err != nil {
		errs = append(errs, fmt.Errorf("object store: %v", err))
	}
	// Every Kafka-named config is re-validated through its own parser.
	for _, d := range brokerConfigDefs {
		if d.set == nil || d.get == nil {
			continue
		}
		v := d.get(c)
		var tmp Config
		if err := d.set(&tmp, v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %v", d.name, err))
		}
	}
	return errors.Join(errs...)
}

// Set sets a broker config by its Kafka name (as `--conf name=value`). Unknown names and bad values
// are errors naming the config.
func (c *Config) Set(name, value string) error {
	d, ok := brokerConfigByName[name]
	if !ok {
		return fmt.Errorf("unknown broker config %q", name)
	}
	if d.set == nil {
		return fmt.Errorf("broker config %q is read-only (set it with its own flag)", name)
	}
	if err := d.set(c, value); err != nil {
		return fmt.Errorf("broker config %s=%q: %v", name, value, err)
	}
	return nil
}

// Get returns a broker config's current value by its Kafka name.
func (c *Config) Get(name string) (string, bool) {
	d, ok := brokerConfigByName[name]
	if !ok {
		return "", false
	}
	return d.get(c), true
}

// BrokerConfigNames lists every broker config name Set accepts, sorted.
func BrokerConfigNames() []string {
	var names []string
	for _, d := range brokerConfigDefs {
		if d.set != nil {
			names = append(names, d.name)
		}
	}
	sort.Strings(names)
	return names
}

// BrokerConfigDoc returns the default and documentation of a broker config (for --help and README).
func BrokerConfigDoc(name string) (def, doc string, ok bool) {
	d, ok := brokerConfigByName[name]
	if !ok {
		return "", "", false
	}
	return d.def, d.doc, true
}

// configDef describes one broker config: its Kafka name, type, default (as Kafka prints it),
// documentation, and accessors into Config.
type configDef struct {
	name string
	typ  kmsg.ConfigType
	def  string
	doc  string
	get  func(*Config) string
	set  func(*Config, string) error // nil = read-only (set by a flag)
}

func longDef(name, def string, min int64, doc string, p func(*Config) *int64) configDef {
	return configDef{name: name, typ: kmsg.ConfigTypeLong, def: def, doc: doc,
		get: func(c *Config) string { return strconv.FormatInt(*p(c), 10) },
		set: func(c *Config, s string) error {
			v, err := parseLong(s, min, math.MaxInt64)
			if err == nil {
				*p(c) = v
			}
			return err
		}}
}

func intDef(name, def string, min int64, doc string, p func(*Config) *int32) configDef {
	return configDef{name: name, typ: kmsg.ConfigTypeInt, def: def, doc: doc,
		get: func(c *Config) string { return strconv.FormatInt(int64(*p(c)), 10) },
		set: func(c *Config, s string) error {
			v, err := parseLong(s, min, math.MaxInt32)
			if err == nil {
				*p(c) = int32(v)
			}
			return err
		}}
}

func shortDef(name, def string, min int64, doc string, p func(*Config) *int16) configDef {
	return configDef{name: name, typ: kmsg.ConfigTypeShort, def: def, doc: doc,
		get: func(c *Config) string { return strconv.FormatInt(int64(*p(c)), 10) },
		set: func(c *Config, s string) error {
			v, err := parseLong(s, min, math.MaxInt16)
			if err == nil {
				*p(c) = int16(v)
			}
			return err
		}}
}

func boolDef(name, def, doc string, p func(*Config) *bool) configDef {
	return configDef{name: name, typ: kmsg.ConfigTypeBoolean, def: def, doc: doc,
		get: func(c *Config) string { return strconv.FormatBool(*p(c)) },
		set: func(c *Config, s string) error {
			v, err := parseBool(s)
			if err == nil {
				*p(c) = v
			}
			return err
		}}
}

func enumDef(name, def string, typ kmsg.ConfigType, allowed []string, doc string, p func(*Config) *string) configDef {
	return configDef{name: name, typ: typ, def: def, doc: doc,
		get: func(c *Config) string { return *p(c) },
		set: func(c *Config, s string) error {
			v, err := parseEnum(s, allowed)
			if err == nil {
				*p(c) = v
			}
			return err
		}}
}

// listDef is a comma-separated list whose items come from allowed (at least one item).
func listDef(name, def string, allowed []string, doc string, p func(*Config) *string) configDef {
	return configDef{name: name, typ: kmsg.ConfigTypeList, def: def, doc: doc,
		get: func(c *Config) string { return *p(c) },
		set: func(c *Config, s string) error {
			var items []string
			for _, it := range strings.Split(s, ",") {
				v, err := parseEnum(it, allowed)
				if err != nil {
					return err
				}
				items = append(items, v)
			}
			*p(c) = strings.Join(items, ",")
			return nil
		}}
}

const (
	maxLongStr = "9223372036854775807"
	weekMs     = "604800000"

	rackAwareReplicaSelector = "org.apache.kafka.common.replica.RackAwareReplicaSelector"
	leaderReplicaSelector    = "org.apache.kafka.common.replica.LeaderSelector"
)

// brokerConfigDefs: every broker config Sediment understands, with Kafka's defaults.
var brokerConfigDefs = []configDef{
	{name: "node.id", typ: kmsg.ConfigTypeInt, doc: "The node id of this broker (set with --node-id).",
		get: func(c *Config) string { return strconv.Itoa(int(c.NodeID)) }},
	{name: "broker.id", typ: kmsg.ConfigTypeInt, doc: "Alias of node.id (set with --node-id).",
		get: func(c *Config) string { return strconv.Itoa(int(c.NodeID)) }},
	{name: "log.dirs", typ: kmsg.ConfigTypeString, doc: "The directory holding partition logs and metadata (set with --data-dir).",
		get: func(c *Config) string { return c.DataDir }},
	{name: "broker.rack", typ: kmsg.ConfigTypeString, doc: "Rack of this broker.",
		get: func(c *Config) string { return c.Rack }, set: func(c *Config, s string) error { c.Rack = s; return nil }},
	intDef("num.partitions", "1", 1, "The default number of partitions of auto-created topics and of CreateTopics with -1.",
		func(c *Config) *int32 { return &c.NumPartitions }),
	shortDef("default.replication.factor", "1", 1, "The default replication factor of auto-created topics and of CreateTopics with -1.",
		func(c *Config) *int16 { return &c.DefaultReplicationFactor }),
	boolDef("auto.create.topics.enable", "true", "Create a topic when Metadata asks for an unknown one (if the client allows it).",
		func(c *Config) *bool { return &c.AutoCreateTopicsEnable }),
	boolDef("delete.topic.enable", "true", "Allow DeleteTopics; when false it answers TOPIC_DELETION_DISABLED.",
		func(c *Config) *bool { return &c.DeleteTopicEnable }),
	intDef("socket.request.max.bytes", "104857600", 1, "The largest request the broker reads; a larger size prefix closes the connection before anything is allocated.",
		func(c *Config) *int32 { return &c.SocketRequestMaxBytes }),
	longDef("queued.max.request.bytes", "-1", -1, "The bytes of requests read but not yet handled, over all connections, before connections stop reading new requests (a request is admitted while anything is left, so one up to socket.request.max.bytes always gets through); -1 = unbounded.",
		func(c *Config) *int64 { return &c.QueuedMaxRequestBytes }),
	longDef("connections.max.idle.ms", "600000", 0, "Close connections idle this long (0 = never).",
		func(c *Config) *int64 { return &c.ConnectionsMaxIdleMs }),
	intDef("message.max.bytes", "1048588", 0, "The largest record batch the broker accepts (topic synonym max.message.bytes).",
		func(c *Config) *int32 { return &c.MessageMaxBytes }),
	intDef("fetch.max.bytes", "57671680", 1024, "The maximum bytes returned for one fetch request.",
		func(c *Config) *int32 { return &c.FetchMaxBytes }),
	intDef("min.insync.replicas", "1", 1, "Minimum in-sync replicas for acks=all produce (topic synonym min.insync.replicas).",
		func(c *Config) *int32 { return &c.MinInsyncReplicas }),
	longDef("replica.lag.time.max.ms", "30000", 0, "A follower not caught up for this long leaves the ISR.",
		func(c *Config) *int64 { return &c.ReplicaLagTimeMaxMs }),
	longDef("log.retention.ms", weekMs, -1, "Delete log segments older than this (-1 = no time limit). Topic synonym retention.ms.",
		func(c *Config) *int64 { return &c.LogRetentionMs }),
	longDef("log.retention.bytes", "-1", -1, "Delete oldest segments when a partition is larger than this (-1 = no size limit). Topic synonym retention.bytes.",
		func(c *Config) *int64 { return &c.LogRetentionBytes }),
	longDef("log.retention.check.interval.ms", "300000", 1, "How often retention is checked.",
		func(c *Config) *int64 { return &c.LogRetentionCheckMs }),
	intDef("log.segment.bytes", "1073741824", 14, "The maximum size of one log segment file. Topic synonym segment.bytes.",
		func(c *Config) *int32 { return &c.LogSegmentBytes }),
	longDef("log.roll.ms", weekMs, 1, "Roll a new segment after this long even if not full. Topic synonym segment.ms.",
		func(c *Config) *int64 { return &c.LogRollMs }),
	intDef("log.index.size.max.bytes", "10485760", 4, "The maximum size of an offset index. Topic synonym segment.index.bytes.",
		func(c *Config) *int32 { return &c.LogIndexSizeMaxBytes }),
	intDef("log.index.interval.bytes", "4096", 0, "Bytes between offset index entries. Topic synonym index.interval.bytes.",
		func(c *Config) *int32 { return &c.LogIndexIntervalBytes }),
	enumDef("log.cleanup.policy", "delete", kmsg.ConfigTypeList, []string{"delete"}, "Cleanup policy; only delete is implemented (no compaction). Topic synonym cleanup.policy.",
		func(c *Config) *string { return &c.LogCleanupPolicy }),
	enumDef("log.flush.policy", "always", kmsg.ConfigTypeString, []string{"always", "interval", "os"}, "Sediment extension: when appends are fsynced before being acknowledged: always (group-committed fsync per append), interval (every log.flush.interval.ms), os (never explicitly).",
		func(c *Config) *string { return &c.LogFlushPolicy }),
	longDef("log.flush.interval.ms", "1000", 1, "The fsync period for log.flush.policy=interval.",
		func(c *Config) *int64 { return &c.LogFlushIntervalMs }),
	intDef("log.segment.recycle.files", "2", 0, "Sediment extension: how many deleted segment files each partition keeps (as <bound>.recycle in its directory, at most 64) for new segments to overwrite instead of growing new files: an fdatasync after an overwrite needs no journal commit, so durable appends run faster in steady state, at the price of up to this many segments' worth of disk per partition beyond retention. 0 = off (deleted segments are unlinked). Read when a partition's log opens.",
		func(c *Config) *int32 { return &c.LogSegmentRecycleFiles }),
	longDef("log.segment.recycle.ms", "3600000", 1, "Sediment extension: how long a deleted segment file kept for reuse (log.segment.recycle.files) may wait for a new segment before it is removed, checked every log.retention.check.interval.ms. Only partitions that keep rolling gain from the files; this bounds what a partition that went quiet keeps on disk beyond retention. The default, an hour, keeps recycling for any partition that fills a segment within the hour.",
		func(c *Config) *int64 { return &c.LogSegmentRecycleMs }),
	enumDef("log.message.timestamp.type", "CreateTime", kmsg.ConfigTypeString, []string{"CreateTime", "LogAppendTime"}, "Whether record timestamps are the producer's (CreateTime) or the broker's append time. Topic synonym message.timestamp.type.",
		func(c *Config) *string { return &c.LogMessageTimestampType }),
	longDef("log.message.timestamp.before.max.ms", maxLongStr, 0, "Reject batches whose timestamp is older than this before the broker's clock (CreateTime only). Topic synonym message.timestamp.before.max.ms.",
		func(c *Config) *int64 { return &c.LogTimestampBeforeMaxMs }),
	longDef("log.message.timestamp.after.max.ms", "3600000", 0, "Reject batches whose timestamp is further than this ahead of the broker's clock (CreateTime only; Kafka 4.0's default). Topic synonym message.timestamp.after.max.ms.",
		func(c *Config) *int64 { return &c.LogTimestampAfterMaxMs }),
	longDef("log.local.retention.ms", "-2", -2, "Local (hot tier) retention when remote storage is enabled; -2 = same as log.retention.ms. Topic synonym local.retention.ms.",
		func(c *Config) *int64 { return &c.LogLocalRetentionMs }),
	longDef("log.local.retention.bytes", "-2", -2, "Local (hot tier) size retention when remote storage is enabled; -2 = same as log.retention.bytes. Topic synonym local.retention.bytes.",
		func(c *Config) *int64 { return &c.LogLocalRetentionBytes }),
	boolDef("remote.log.storage.system.enable", "true", "Tiered storage on this broker: the leader of each partition of a topic with remote.storage.enable uploads closed segments below the high watermark to the object store (--object-store), and local retention (local.retention.*) then deletes only uploaded segments. The topic config remote.storage.enable defaults to this value. sediment serve defaults it to false in a cluster of several brokers started without --object-store (the default store is a directory of each broker's own).",
		func(c *Config) *bool { return &c.RemoteLogStorageEnable }),
	longDef("remote.log.manager.task.interval.ms", "30000", 1, "How often each led tiered partition looks for segments to upload when nothing woke it (a roll or high-watermark move wakes it at once).",
		func(c *Config) *int64 { return &c.RemoteLogManagerTaskIntervalMs }),
	longDef("remote.log.manager.task.retry.backoff.ms", "500", 1, "First retry delay after a failed upload (doubles per failure, full jitter).",
		func(c *Config) *int64 { return &c.RemoteLogManagerTaskRetryBackoffMs }),
	longDef("remote.log.manager.task.retry.backoff.max.ms", "30000", 1, "Longest retry delay after failed uploads.",
		func(c *Config) *int64 { return &c.RemoteLogManagerTaskRetryBackoffMaxMs }),
	longDef("remote.log.reader.cache.bytes", "268435456", 0, "Sediment extension: memory for the chunk cache of reads from object storage (concurrent and repeated replays of the same objects share GETs; up to three more 16 MiB chunk buffers are kept for reuse); 0 = no cache (footers are always cached).",
		func(c *Config) *int64 { return &c.RemoteLogReaderCacheBytes }),
	enumDef("remote.log.segment.compression.type", "none", kmsg.ConfigTypeString, []string{"none", "lz4"}, "Sediment extension: lz4 stores uploaded segments whose batches were all sent uncompressed as independently decodable lz4 chunks (ranged reads still work); segments holding producer-compressed batches are always stored as they are. Default of the topic config of the same name; read before each upload, so a partition's objects may mix both kinds.",
		func(c *Config) *string { return &c.RemoteLogSegmentCompressionType }),
	longDef("remote.log.manager.fetch.max.bytes.per.second", maxLongStr, 1, "Bytes per second consumer fetches may read from object storage on this broker (KIP-956); a fetch over the quota waits up to 500 ms, else returns no data for that partition this round (a long-polling fetch reads it again as soon as the quota has a grant). The default means unlimited. Dynamic, as in Kafka: set on the BROKER resource \"\" or a broker id, it applies at once.",
		func(c *Config) *int64 { return &c.RemoteLogManagerFetchMaxBytesPerSec }),
	longDef("remote.log.manager.copy.max.bytes.per.second", maxLongStr, 1, "Bytes per second uploads to object storage may send from this broker, all partitions together (KIP-956). As in Kafka it is applied per segment: an upload starts once the quota is out of debt and then charges its object's size; segments waiting stay on local disk. The default means unlimited. Dynamic, as in Kafka: set on the BROKER resource \"\" or a broker id, it applies from the next upload on.",
		func(c *Config) *int64 { return &c.RemoteLogManagerCopyMaxBytesPerSec }),
	boolDef("remote.log.reader.adaptive.throttle.enable", "true", "Sediment extension: while Produce requests are being answered and the broker is short of CPU (goroutine scheduling latency p99 above remote.log.reader.adaptive.throttle.sched.latency.us), reads from object storage are slowed (AIMD on the remote fetch quota, every 50 ms, never above remote.log.manager.fetch.max.bytes.per.second) so that a replay cannot slow produce; with no producers, or CPU to spare, replays run at full speed.",
		func(c *Config) *bool { return &c.RemoteLogReaderAdaptiveThrottleEnable }),
	longDef("remote.log.reader.adaptive.throttle.min.bytes.per.second", "1048576", 1, "Sediment extension: the adaptive throttle never slows reads from object storage below this rate (bytes per second), so a replay always progresses. Once contention clears the limit grows by at least this much per second: after a back-off it doubles every second up to half the rate that met contention (so one blip costs a replay seconds), then grows by a tenth of that rate per second. Lower means less cost to producers on a CPU-starved broker and slower replays there (sediment bench on 2 cores with the object store beside the broker: produce ack p99 0.99x with 1 MiB/s, 2.0-2.3x with 4 MiB/s).",
		func(c *Config) *int64 { return &c.RemoteLogReaderAdaptiveThrottleMinBytesPerSec }),
	longDef("remote.log.reader.adaptive.throttle.sched.latency.us", "500", 1, "Sediment extension: goroutine scheduling latency p99 (microseconds, over 50 ms) above which the adaptive throttle slows reads from object storage while producers are active; below half of it the rate grows again.",
		func(c *Config) *int64 { return &c.RemoteLogReaderAdaptiveThrottleSchedLatencyUs }),
	intDef("group.initial.rebalance.delay.ms", "3000", 0, "How long a new classic group waits for more members before its first rebalance.",
		func(c *Config) *int32 { return &c.GroupInitialRebalanceDelayMs }),
	intDef("group.min.session.timeout.ms", "6000", 0, "The smallest session timeout a classic group member may ask for.",
		func(c *Config) *int32 { return &c.GroupMinSessionTimeoutMs }),
	intDef("group.max.session.timeout.ms", "1800000", 0, "The largest session timeout a classic group member may ask for.",
		func(c *Config) *int32 { return &c.GroupMaxSessionTimeoutMs }),
	intDef("group.max.size", "2147483647", 1, "The maximum number of members in one consumer group.",
		func(c *Config) *int32 { return &c.GroupMaxSize }),
	intDef("offsets.retention.minutes", "10080", 1, "Committed offsets of a group without members are deleted after this long.",
		func(c *Config) *int32 { return &c.OffsetsRetentionMinutes }),
	longDef("offsets.retention.check.interval.ms", "600000", 1, "How often expired committed offsets are looked for.",
		func(c *Config) *int64 { return &c.OffsetsRetentionCheckIntervalMs }),
	intDef("offset.metadata.max.bytes", "4096", 0, "The largest metadata string stored with a committed offset.",
		func(c *Config) *int32 { return &c.OffsetMetadataMaxBytes }),
	intDef("group.consumer.heartbeat.interval.ms", "5000", 1, "KIP-848 consumer groups: the heartbeat interval given to members.",
		func(c *Config) *int32 { return &c.GroupConsumerHeartbeatIntervalMs }),
	intDef("group.consumer.session.timeout.ms", "45000", 1, "KIP-848 consumer groups: members silent this long are removed.",
		func(c *Config) *int32 { return &c.GroupConsumerSessionTimeoutMs }),
	listDef("group.consumer.assignors", "uniform,range", []string{"uniform", "range"}, "KIP-848 server-side assignors (uniform, range); the first is the default.",
		func(c *Config) *string { return &c.GroupConsumerAssignors }),
	enumDef("compression.type", "producer", kmsg.ConfigTypeString, []string{"producer"}, "Batches are stored as the producer compressed them; other values are not implemented.",
		func(c *Config) *string { return &c.CompressionType }),
	{name: "replica.selector.class", typ: kmsg.ConfigTypeString, def: "",
		doc: "Replica selector for consumer fetches (KIP-392): org.apache.kafka.common.replica.RackAwareReplicaSelector points a client with client.rack at an in-sync replica in its rack; empty or org.apache.kafka.common.replica.LeaderSelector: always the leader.",
		get: func(c *Config) string { return c.ReplicaSelectorClass },
		set: func(c *Config, s string) error {
			switch s = strings.TrimSpace(s); s {
			case "", rackAwareReplicaSelector, leaderReplicaSelector:
				c.ReplicaSelectorClass = s
				return nil
			}
			return fmt.Errorf("%q is not a replica selector Sediment implements (%s or %s)", s, rackAwareReplicaSelector, leaderReplicaSelector)
		}},
}

var brokerConfigByName = func() map[string]*configDef {
	m := make(map[string]*configDef, len(brokerConfigDefs))
	for i := range brokerConfigDefs {
		m[brokerConfigDefs[i].name] = &brokerConfigDefs[i]
	}
	return m
}()

func parseLong(s string, min, max int64) (int64, error) {
	v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("not an integer: %q", s)
	}
	if v < min || v > max {
		return 0, fmt.Errorf("value %d out of range [%d, %d]", v, min, max)
	}
	return v, nil
}

func parseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("not a boolean (true or false): %q", s)
}

func parseEnum(s string, allowed []string) (string, error) {
	s = strings.TrimSpace(s)
	for _, a := range allowed {
		if strings.EqualFold(s, a) {
			return a, nil
		}
	}
	return "", fmt.Errorf("%q is not one of %s", s, strings.Join(allowed, ", "))
}

func splitHostPort(hp string) (struct {
	host string
	port int32
}, error) {
	var r struct {
		host string
		port int32
	}
	h, p, err := net.SplitHostPort(hp)
	if err != nil {
		return r, fmt.Errorf("%q is not host:port: %v", hp, err)
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return r, fmt.Errorf("%q: bad port %q", hp, p)
	}
	r.host, r.port = h, int32(n)
	return r, nil
}

// ObjectStoreURL is a parsed --object-store value.
type ObjectStoreURL struct {
	Kind      string // "file", "s3" or "mem"
	Dir       string // file
	Bucket    string // s3
	Prefix    string // s3: key prefix (the URL path)
	Endpoint  string // s3: endpoint URL; "" = AWS default
	Region    string
	PathStyle bool
}

// ParseObjectStore checks the syntax of file://DIR, s3://BUCKET[/PREFIX]?endpoint=URL&region=R&path-style=true
// (and tiering's tuning parameters multipart-threshold, part-size, max-attempts) and mem:// (tests),
// without side effects. Start then opens the store with tiering.OpenURL.
func ParseObjectStore(s string) (ObjectStoreURL, error) {
	var u ObjectStoreURL
	switch {
	case s == "":
		return u, errors.New("must not be empty (file://DIR or s3://BUCKET?...)")
	case strings.HasPrefix(s, "file://"):
		u.Kind, u.Dir = "file", strings.TrimPrefix(s, "file://")
		if u.Dir == "" {
			return u, fmt.Errorf("%q: file:// needs a directory", s)
		}
		return u, nil
	case s == "mem://":
		u.Kind = "mem"
		return u, nil
	case strings.HasPrefix(s, "s3://"):
		u.Kind = "s3"
		rest := strings.TrimPrefix(s, "s3://")
		q := ""
		if i := strings.IndexByte(rest, '?'); i >= 0 {
			rest, q = rest[:i], rest[i+1:]
		}
		u.Bucket, u.Prefix, _ = strings.Cut(rest, "/")
		if !validBucket(u.Bucket) {
			return u, fmt.Errorf("%q: bad bucket name %q", s, u.Bucket)
		}
		if q != "" {
			for _, kv := range strings.Split(q, "&") {
				k, v, _ := strings.Cut(kv, "=")
				switch k {
				case "endpoint":
					if !strings.HasPrefix(v, "http://") && !strings.HasPrefix(v, "https://") {
						return u, fmt.Errorf("%q: endpoint must be an http:// or https:// URL", s)
					}
					u.Endpoint = v
				case "region":
					u.Region = v
				case "path-style":
					b, err := parseBool(v)
					if err != nil {
						return u, fmt.Errorf("%q: path-style: %v", s, err)
					}
					u.PathStyle = b
				case "multipart-threshold", "part-size", "max-attempts":
					if n, err := strconv.ParseInt(v, 10, 64); err != nil || n <= 0 {
						return u, fmt.Errorf("%q: %s=%q is not a positive integer", s, k, v)
					}
				default:
					return u, fmt.Errorf("%q: unknown parameter %q (endpoint, region, path-style, multipart-threshold, part-size, max-attempts)", s, k)
				}
			}
		}
		return u, nil
	}
	return u, fmt.Errorf("%q: must start with file://, s3:// or mem://", s)
}

func validBucket(b string) bool {
	if len(b) < 3 || len(b) > 63 {
		return false
	}
	for _, r := range b {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}
