package tiering

// All object-key naming lives in this file.
//
//	segments/<topic id, 32 hex>/<partition>/<base offset, 20 digits>-<leader epoch>-<upload id, 16 hex>.seg
//	cluster-id   (the owning cluster's id; see ClaimStore)
//
// The topic id leads so that load spreads over S3's key-range partitions and a topic's or a
// partition's objects are one List away (deletion, orphan collection). The base offset is zero-padded
// so keys sort by offset. The upload id is random per attempt: a retry, a second leader or a deposed
// leader never overwrites another attempt's object, which is what makes "PUT answered 500 but
// applied" harmless and lets the garbage collector tell committed objects (named in the manifest) from
// orphans (not named, older than a grace period).

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/sediment-io/sediment/meta"
)

// SegmentsRoot is the List prefix of every segment object (the controller's bucket sweep).
const SegmentsRoot = "segments/"

// ClusterClaimKey holds the id of the cluster that owns this store (bucket and prefix); see
// ClaimStore.
const ClusterClaimKey = "cluster-id"

// SegmentKey names one upload attempt of one segment.
type SegmentKey struct {
	Topic       meta.TopicID
	Partition   int32
	BaseOffset  int64
	LeaderEpoch int32
	UploadID    string // 16 lowercase hex digits
}

// NewUploadID returns a fresh random upload id.
func NewUploadID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// String is the object key.
func (k SegmentKey) String() string {
	return fmt.Sprintf("%s%020d-%d-%s.seg", PartitionPrefix(k.Topic, k.Partition), k.BaseOffset, k.LeaderEpoch, k.UploadID)
}

// TopicPrefix is the List prefix of all of a topic's objects.
func TopicPrefix(topic meta.TopicID) string {
	return SegmentsRoot + hex.EncodeToString(topic[:]) + "/"
}

// PartitionPrefix is the List prefix of one partition's objects.
func PartitionPrefix(topic meta.TopicID, partition int32) string {
	return TopicPrefix(topic) + strconv.Itoa(int(partition)) + "/"
}

// ParseSegmentKey parses a key made by SegmentKey.String; anything else is an error (a List may meet
// foreign objects under a shared prefix; they are never touched).
func ParseSegmentKey(key string) (SegmentKey, error) {
	bad := func(why string) (SegmentKey, error) {
		return SegmentKey{}, fmt.Errorf("tiering: %q is not a segment key: %s", key, why)
	}
	rest, ok := strings.CutPrefix(key, SegmentsRoot)
	if !ok {
		return bad("no " + SegmentsRoot + " prefix")
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 {
		return bad("want topic/partition/name")
	}
	var k SegmentKey
	if id, err := hex.DecodeString(parts[0]); err != nil || len(id) != 16 || parts[0] != strings.ToLower(parts[0]) {
		return bad("topic id")
	} else {
		copy(k.Topic[:], id)
	}
	p, err := strconv.ParseInt(parts[1], 10, 32)
	if err != nil || p < 0 || strconv.FormatInt(p, 10) != parts[1] {
		return bad("partition")
	}
	k.Partition = int32(p)
	name, ok := strings.CutSuffix(parts[2], ".seg")
	if !ok {
		return bad("no .seg suffix")
	}
	f := strings.Split(name, "-")
	if len(f) != 3 || len(f[0]) != 20 {
		return bad("want <20-digit offset>-<epoch>-<upload id>")
	}
	if k.BaseOffset, err = strconv.ParseInt(f[0], 10, 64); err != nil || k.BaseOffset < 0 {
		return bad("base offset")
	}
	e, err := strconv.ParseInt(f[1], 10, 32)
	if err != nil || e < 0 || strconv.FormatInt(e, 10) != f[1] {
		return bad("leader epoch")
	}
	k.LeaderEpoch = int32(e)
	if id, err := hex.DecodeString(f[2]); err != nil || len(id) != 8 || f[2] != strings.ToLower(f[2]) {
		return bad("upload id")
	}
	k.UploadID = f[2]
	if k.String() != key {
		return bad("not in canonical form")
	}
	return k, nil
}
