package tiering

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"time"

	"github.com/pierrec/lz4/v4"

	"github.com/sediment-io/sediment/meta"
	"github.com/sediment-io/sediment/segment"
	"github.com/sediment-io/sediment/segment/vfs"
)

// LogView is what the archiver needs from a partition leader's local log. The broker adapts its
// partition (segment.Log + high watermark + leader epoch) to it.
type LogView interface {
	// Segments lists the local segments oldest first (segment.Log.Segments).
	Segments() []segment.SegmentInfo
	// UploadLimit is the offset below which data may be uploaded: the high watermark (the last stable
	// offset once transactions exist). Only segments wholly below it are uploaded.
	UploadLimit() int64
	// LeaderEpoch is the epoch of the leadership under which this node uploads (it goes in object keys).
	LeaderEpoch() int32
}

// SegmentPinner is implemented by a LogView whose segment files may be reused once dropped
// (segment.Log.PinSegment: recycling). The archiver pins a segment while it reads the file by its
// path, so that a segment dropped mid-upload (retention, DeleteRecords) keeps its bytes under the
// archiver instead of being overwritten by a new segment.
type SegmentPinner interface {
	PinSegment(base int64) (release func(), ok bool)
}

// Manifest is the partition's committed list of remote segments, kept in meta (Raft).
type Manifest interface {
	// RemoteSegments returns the committed entries ordered by base offset (meta.State.RemoteSegments).
	RemoteSegments() []meta.RemoteSegment
	// AddRemoteSegment commits one entry (meta.Node.AddRemoteSegment). On error the entry may or may
	// not have been committed (a lost reply); the archiver re-reads RemoteSegments to find out.
	AddRemoteSegment(ctx context.Context, seg meta.RemoteSegment) error
}

// ArchiverConfig tunes a PartitionArchiver. Zero values take the defaults noted.
type ArchiverConfig struct {
	IndexInterval int // footer index spacing; default DefaultIndexInterval
	// Compress stores segments whose batches were all sent uncompressed as lz4 chunks (see
	// BuildOptions), when a probe of the segment's start shows lz4 saves at least 1/16 (worthCompressing).
	Compress bool
	// CompressFunc, when set, replaces Compress: it is asked before each upload (a topic config that
	// can change while the archiver runs).
	CompressFunc func() bool
	RetryBase    time.Duration // Run's first retry delay after a failure; default 1s
	RetryMax     time.Duration // Run's longest retry delay; default 1 min
	// OrphanGrace: an object not in the manifest is deleted by CollectOrphans only once it is older
	// than this (an upload by another, deposed leader may still be about to commit it). Default 15 min.
	OrphanGrace time.Duration
	Logger      *slog.Logger
	// FS is the file system the log's segment files live on (segment.Config.FS); nil = the OS.
	FS vfs.FS
	// CopyQuota bounds the bytes uploads send (Kafka's remote.log.manager.copy.max.bytes.per.second,
	// one quota for every partition of a broker), as Kafka does, per segment: an upload starts once
	// the quota is out of debt and then charges the object's size, so the rate holds over time while
	// one object goes at the store's speed. Not per read: the S3 SDK reads a body twice over plain
	// HTTP (once to sign it, once to send it), so pacing reads would halve the rate and pace the
	// signing pass rather than the network. nil: unlimited.
	CopyQuota *FetchQuota
	// NewUploadID and Now are for deterministic tests; nil = NewUploadID and time.Now.
	NewUploadID func() string
	Now         func() time.Time
}

func (c *ArchiverConfig) setDefaults() {
	if c.IndexInterval <= 0 {
		c.IndexInterval = DefaultIndexInterval
	}
	if c.RetryBase <= 0 {
		c.RetryBase = time.Second
	}
	if c.RetryMax <= 0 {
		c.RetryMax = time.Minute
	}
	if c.OrphanGrace <= 0 {
		c.OrphanGrace = 15 * time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.FS == nil {
		c.FS = vfs.OS
	}
	if c.NewUploadID == nil {
		c.NewUploadID = NewUploadID
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// PartitionArchiver uploads one partition's closed segments, in offset order: upload the object under
// a fresh key, then commit the manifest entry; only a committed entry makes the local copy deletable
// (that is the broker's retention, which must not delete a segment past Uploaded()). Objects of
// failed attempts are orphans; CollectOrphans removes them.
//
// Not safe for concurrent use: one goroutine (Run, or a caller of RunOnce/CollectOrphans) per partition.
type PartitionArchiver struct {
	store     Store
	topic     meta.TopicID
	partition int32
	log       LogView
	manifest  Manifest
	cfg       ArchiverConfig
	wake      chan struct{}
	stats     archiverCounters
}

// NewPartitionArchiver builds an archiver for one partition led by this node.
func NewPartitionArchiver(store Store, topic meta.TopicID, partition int32, log LogView, manifest Manifest, cfg ArchiverConfig) *PartitionArchiver {
	cfg.setDefaults()
	return &PartitionArchiver{store: store, topic: topic, partition: partition, log: log, manifest: manifest, cfg: cfg, wake: make(chan struct{}, 1)}
}

// Uploaded returns the offset below which every record is in the committed manifest (the manifest's
// last offset + 1), or -1 when nothing is. Local retention may delete segments wholly below it.
func (a *PartitionArchiver) Uploaded() int64 {
	segs := a.manifest.RemoteSegments()
	if len(segs) == 0 {
		return -1
	}
	return segs[len(segs)-1].LastOffset + 1
}

// Notify wakes Run (a segment rolled, the high watermark moved). Never blocks.
func (a *PartitionArchiver) Notify() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// Run uploads until ctx ends: a pass whenever Notify is called (and every poll interval as a safety
// net), retrying failures with jittered exponential backoff.
func (a *PartitionArchiver) Run(ctx context.Context, poll time.Duration) {
	delay := time.Duration(0)
	for {
		_, err := a.RunOnce(ctx)
		wait := poll
		if err != nil && ctx.Err() == nil {
			delay = min(max(delay*2, a.cfg.RetryBase), a.cfg.RetryMax)
			wait = time.Duration(rand.Int64N(int64(delay)) + 1)
			a.cfg.Logger.Warn("tiering: upload failed; will retry", "topic", a.topic, "partition", a.partition, "in", wait, "err", err)
		} else {
			delay = 0
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-a.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// RunOnce uploads every closed segment wholly below the upload limit and not yet in the manifest, in
// order, stopping at the first failure (so the manifest never gets a gap). It returns how many
// segments it committed.
func (a *PartitionArchiver) RunOnce(ctx context.Context) (int, error) {
	done := 0
	for {
		if err := ctx.Err(); err != nil {
			return done, err
		}
		next := a.Uploaded()
		limit := a.log.UploadLimit()
		var cand *segment.SegmentInfo
		for _, s := range a.log.Segments() {
			if s.Closed && s.NextOffset <= limit && s.NextOffset > next && s.NextOffset > s.BaseOffset {
				cand = &s
				break
			}
		}
		if cand == nil {
			return done, nil
		}
		if err := a.upload(ctx, *cand, next); err != nil {
			a.stats.failures.Add(1)
			return done, err
		}
		done++
	}
}

func (a *PartitionArchiver) upload(ctx context.Context, si segment.SegmentInfo, from int64) error {
	// Wait for the copy quota first: not holding the segment pinned or its object built meanwhile.
	granted, err := awaitGrant(ctx, a.cfg.CopyQuota)
	if err != nil {
		return fmt.Errorf("tiering: upload %s: waiting for the copy quota: %w", si.Path, err)
	}
	uploaded := false
	defer func() {
		if !uploaded {
			a.cfg.CopyQuota.Settle(granted, 0) // nothing stored: the grant goes back
		}
	}()
	if p, ok := a.log.(SegmentPinner); ok {
		release, ok := p.PinSegment(si.BaseOffset)
		if !ok {
			return fmt.Errorf("tiering: upload %s: segment %d is no longer in the log", si.Path, si.BaseOffset)
		}
		defer release() // after the object is built and stored: Put reads the file again
	}
	f, err := a.cfg.FS.OpenFile(si.Path, os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("tiering: upload %s: %w", si.Path, err)
	}
	defer f.Close()
	// After a leadership change the manifest may already hold the start of this segment (the previous
	// leader rolled at other offsets). Batches are replicated byte for byte, so upload from the first
	// batch after the manifest's end.
	var start int64
	if from > si.BaseOffset {
		if start, err = positionOf(f, si.Size, from); err != nil {
			return fmt.Errorf("tiering: upload %s: %w", si.Path, err)
		}
	}
	data := io.NewSectionReader(f, start, si.Size-start)
	compress := a.cfg.Compress
	if a.cfg.CompressFunc != nil {
		compress = a.cfg.CompressFunc()
	}
	if compress {
		if compress, err = worthCompressing(data, si.Size-start); err != nil {
			return fmt.Errorf("tiering: upload %s: %w", si.Path, err)
		}
	}
	obj, err := BuildSegmentObjectWith(data, si.Size-start, BuildOptions{IndexInterval: a.cfg.IndexInterval, Compress: compress})
	if errors.Is(err, errSpill) {
		a.cfg.Logger.Warn("tiering: uploading a segment uncompressed: no room for its compressed copy", "path", si.Path, "err", err)
		obj, err = BuildSegmentObjectWith(data, si.Size-start, BuildOptions{IndexInterval: a.cfg.IndexInterval})
	}
	if err != nil {
		return fmt.Errorf("tiering: upload %s: %w", si.Path, err)
	}
	defer obj.Close() // a compressed data section's temporary file, if any
	ft := obj.Footer
	if ft.LastOffset != si.NextOffset-1 {
		return fmt.Errorf("tiering: upload %s: segment ends at offset %d, the log says %d", si.Path, ft.LastOffset, si.NextOffset-1)
	}
	key := SegmentKey{Topic: a.topic, Partition: a.partition, BaseOffset: ft.BaseOffset, LeaderEpoch: a.log.LeaderEpoch(), UploadID: a.cfg.NewUploadID()}.String()
	if err := a.store.Put(ctx, key, obj, obj.Size()); err != nil {
		return fmt.Errorf("tiering: upload %s as %s: %w", si.Path, key, err)
	}
	uploaded = true
	a.cfg.CopyQuota.Settle(granted, int(obj.Size())) // the rest of the object is debt, repaid before the next upload starts
	entry := meta.RemoteSegment{
		BaseOffset: ft.BaseOffset, LastOffset: ft.LastOffset,
		FirstTimestamp: ft.FirstTimestamp, MaxTimestamp: ft.MaxTimestamp,
		Size: obj.Size(), ObjectKey: key, LeaderEpoch: a.log.LeaderEpoch(),
	}
	if err := a.manifest.AddRemoteSegment(ctx, entry); err != nil {
		// A lost reply may hide a successful commit: look before calling it a failure.
		if slices.ContainsFunc(a.manifest.RemoteSegments(), func(s meta.RemoteSegment) bool { return s.ObjectKey == key }) {
			a.stats.segments.Add(1)
			a.stats.bytes.Add(obj.Size())
			a.stats.logical.Add(ft.DataLen)
			return nil
		}
		return fmt.Errorf("tiering: commit %s (offsets %d..%d): %w (object left for the orphan collector)", key, ft.BaseOffset, ft.LastOffset, err)
	}
	a.stats.segments.Add(1)
	a.stats.bytes.Add(obj.Size())
	a.stats.logical.Add(ft.DataLen)
	a.cfg.Logger.Info("tiering: segment uploaded", "key", key, "offsets", fmt.Sprintf("%d..%d", ft.BaseOffset, ft.LastOffset), "bytes", obj.Size())
	return nil
}

// compressProbeBytes is how much of a segment worthCompressing tries with lz4.
const compressProbeBytes = 256 << 10

// worthCompressing reports whether lz4 shrinks the first compressProbeBytes of a segment by at
// least 1/16 (the rule compressChunks applies to each chunk). Segments that fail it (payloads the
// producer sent uncompressed but that are already encrypted or compressed by the application) go up
// verbatim: building lz4 chunks of them costs CPU (BenchmarkTierCompression/random: upload at ~0.6x)
// and holds the whole segment in memory, for nothing. Costs one read and lz4 pass over at most 256 KiB.
func worthCompressing(data io.ReaderAt, size int64) (bool, error) {
	buf := make([]byte, min(size, compressProbeBytes))
	if n, err := data.ReadAt(buf, 0); n < len(buf) {
		return false, fmt.Errorf("reading the segment's first %d bytes: %w", len(buf), err)
	}
	var c lz4.Compressor
	dst := make([]byte, lz4.CompressBlockBound(DefaultChunkSize))
	out := 0
	for off := 0; off < len(buf); off += DefaultChunkSize {
		chunk := buf[off:min(off+DefaultChunkSize, len(buf))]
		n, err := c.CompressBlock(chunk, dst)
		if err != nil || n == 0 || n > len(chunk) {
			n = len(chunk) // incompressible: a raw chunk
		}
		out += n
	}
	return out <= len(buf)-len(buf)/16, nil
}

// positionOf returns the byte position of the first batch whose base offset is ≥ offset, walking the
// batch headers (12 bytes each) of a segment file.
func positionOf(f io.ReaderAt, size, offset int64) (int64, error) {
	var hdr [12]byte
	for pos := int64(0); pos < size; {
		if _, err := f.ReadAt(hdr[:], pos); err != nil {
			return 0, fmt.Errorf("%w: batch header at byte %d: %v", segment.ErrCorrupt, pos, err)
		}
		if int64(binary.BigEndian.Uint64(hdr[:])) >= offset {
			return pos, nil
		}
		n := int64(binary.BigEndian.Uint32(hdr[8:])) + 12
		if n < segment.HeaderSize {
			return 0, fmt.Errorf("%w: batch at byte %d has length %d", segment.ErrCorrupt, pos, n)
		}
		pos += n
	}
	return 0, fmt.Errorf("%w: no batch at or after offset %d", segment.ErrCorrupt, offset)
}

// CollectOrphans deletes this partition's objects that the manifest does not name and that are older
// than OrphanGrace: leftovers of failed uploads or commits, and objects whose manifest entries were
// removed (retention) but whose deletion failed. Keys that do not parse as segment keys are left
// alone. It returns the deleted keys.
func (a *PartitionArchiver) CollectOrphans(ctx context.Context) ([]string, error) {
	olderThan := a.cfg.Now().Add(-a.cfg.OrphanGrace)
	del, err := collectOrphans(ctx, a.store, PartitionPrefix(a.topic, a.partition), a.manifest, olderThan)
	a.stats.orphans.Add(int64(len(del)))
	return del, err
}

// ManifestSyncer is an optional capability of a Manifest: CatchUp returns once RemoteSegments
// reflects every commit made anywhere in the cluster before CatchUp was called
// (meta.Node.CatchUp: a no-op entry's round trip through the quorum), or fails if that cannot be
// known (this node cut off from the quorum).
type ManifestSyncer interface {
	CatchUp(ctx context.Context) error
}

// collectOrphans lists prefix, then reads the manifest, then deletes the listed objects it does
// not name that are older than olderThan. The order matters: every object listed was uploaded
// before the manifest is read, and its commit, if any, follows its upload within the grace
// period. And the manifest must be the cluster's, not a stale local copy: a leader cut off from
// the metadata quorum still runs this, and its copy lacks the commits of the leader elected in
// its place, whose objects it would delete. So a manifest that can sync (ManifestSyncer) must
// sync first; if it cannot, nothing is deleted.
func collectOrphans(ctx context.Context, s Store, prefix string, manifest Manifest, olderThan time.Time) ([]string, error) {
	objs, err := s.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	if ms, ok := manifest.(ManifestSyncer); ok {
		if err := ms.CatchUp(ctx); err != nil {
			return nil, fmt.Errorf("tiering: orphan collection under %s: the manifest may be stale, deleting nothing: %w", prefix, err)
		}
	}
	live := manifest.RemoteSegments()
	keep := make(map[string]bool, len(live))
	for _, l := range live {
		keep[l.ObjectKey] = true
	}
	var deleted []string
	var errs []error
	for _, o := range objs {
		if keep[o.Key] || !o.ModTime.Before(olderThan) {
			continue
		}
		if _, err := ParseSegmentKey(o.Key); err != nil {
			continue
		}
		if err := s.Delete(ctx, o.Key); err != nil {
			errs = append(errs, err)
			continue
		}
		deleted = append(deleted, o.Key)
	}
	return deleted, errors.Join(errs...)
}

// awaitGrant waits until q (the copy quota; nil: unlimited) grants at least one byte, that is,
// until it is out of debt, and returns the grant; ctx ending first is an error.
func awaitGrant(ctx context.Context, q *FetchQuota) (int, error) {
	if q == nil {
		return 0, nil
	}
	for {
		g, wait := q.Take(1)
		if g > 0 {
			return g, nil
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return 0, ctx.Err()
		}
	}
}
