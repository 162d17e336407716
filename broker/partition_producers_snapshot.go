package broker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/sediment-io/sediment/segment/vfs"
)

// Producer-state snapshot: the idempotent producer state as of a log offset, so that opening a
// partition scans only the batch headers after that offset instead of the whole log (Kafka keeps
// .snapshot files for the same reason). The log stays the source of truth: a snapshot that does
// not fit the log (missing, unreadable, or at an offset past the recovered log end, as after a
// crash that lost an unsynced tail) is ignored and the state is rebuilt by a full scan.
//
// Written on clean close and by the retention loop, under the partition's append lock, with
// vfs.WriteFileAtomic (temp file → fsync → rename → fsync dir). Anything that truncates the log below the snapshot's
// offset (follower truncation, later) must remove it first (removeProducerSnapshot).
//
// Format (big-endian), one file "producer-state.snapshot" in the partition directory:
//
//	magic "SDPS" | version u16 = 1 | offset i64 | count u32
//	count × { pid i64 | epoch i16 | lastUpdateMs i64 | n u8 | n × { firstSeq i32 | lastSeq i32 |
//	          firstOffset i64 | lastOffset i64 | timestamp i64 } }
//	crc32c u32 over everything before it
//
// A later version adds fields after the existing ones and bumps the version; a reader that finds
// a version it does not know ignores the snapshot (full scan), which is always safe.

const (
	producerSnapshotFile    = "producer-state.snapshot"
	producerSnapshotMagic   = "SDPS"
	producerSnapshotVersion = 1
)

var castagnoliTable = crc32.MakeTable(crc32.Castagnoli)

func encodeProducerSnapshot(m *producerStateManager, offset int64) []byte {
	b := append([]byte(producerSnapshotMagic), 0, producerSnapshotVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(offset))
	b = binary.BigEndian.AppendUint32(b, uint32(len(m.producers)))
	for pid, e := range m.producers {
		b = binary.BigEndian.AppendUint64(b, uint64(pid))
		b = binary.BigEndian.AppendUint16(b, uint16(e.epoch))
		b = binary.BigEndian.AppendUint64(b, uint64(e.lastUpdate.UnixMilli()))
		b = append(b, byte(len(e.batches)))
		for _, x := range e.batches {
			b = binary.BigEndian.AppendUint32(b, uint32(x.firstSeq))
			b = binary.BigEndian.AppendUint32(b, uint32(x.lastSeq))
			b = binary.BigEndian.AppendUint64(b, uint64(x.firstOffset))
			b = binary.BigEndian.AppendUint64(b, uint64(x.lastOffset))
			b = binary.BigEndian.AppendUint64(b, uint64(x.timestamp))
		}
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoliTable))
}

var errBadSnapshot = errors.New("producer snapshot: malformed")

func decodeProducerSnapshot(b []byte) (*producerStateManager, int64, error) {
	if len(b) < 4+2+8+4+4 || string(b[:4]) != producerSnapshotMagic {
		return nil, 0, errBadSnapshot
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoliTable) != sum {
		return nil, 0, fmt.Errorf("%w: crc mismatch", errBadSnapshot)
	}
	if v := binary.BigEndian.Uint16(body[4:]); v != producerSnapshotVersion {
		return nil, 0, fmt.Errorf("%w: version %d", errBadSnapshot, v)
	}
	offset := int64(binary.BigEndian.Uint64(body[6:]))
	count := binary.BigEndian.Uint32(body[14:])
	r := body[18:]
	m := newProducerStateManager()
	for i := uint32(0); i < count; i++ {
		if len(r) < 8+2+8+1 {
			return nil, 0, errBadSnapshot
		}
		pid := int64(binary.BigEndian.Uint64(r))
		e := &producerEntry{
			epoch:      int16(binary.BigEndian.Uint16(r[8:])),
			lastUpdate: time.UnixMilli(int64(binary.BigEndian.Uint64(r[10:]))),
		}
		n := int(r[18])
		r = r[19:]
		if n > producerBatchWindow || len(r) < n*32 {
			return nil, 0, errBadSnapshot
		}
		for j := 0; j < n; j++ {
			e.batches = append(e.batches, producerBatch{
				firstSeq:    int32(binary.BigEndian.Uint32(r)),
				lastSeq:     int32(binary.BigEndian.Uint32(r[4:])),
				firstOffset: int64(binary.BigEndian.Uint64(r[8:])),
				lastOffset:  int64(binary.BigEndian.Uint64(r[16:])),
				timestamp:   int64(binary.BigEndian.Uint64(r[24:])),
			})
			r = r[32:]
		}
		m.producers[pid] = e
	}
	if len(r) != 0 {
		return nil, 0, fmt.Errorf("%w: %d trailing bytes", errBadSnapshot, len(r))
	}
	return m, offset, nil
}

// writeProducerSnapshot persists the state as of the current log end (appendMu held), through the
// log's file system (so fault-injecting tests see it too).
func (p *Partition) writeProducerSnapshot() error {
	data := encodeProducerSnapshot(p.producers, p.log.EndOffset())
	return vfs.WriteFileAtomic(p.fs, filepath.Join(p.dir, producerSnapshotFile), data)
}

// loadProducerSnapshot returns the snapshot's state and offset if it fits the log, else nil.
func (p *Partition) loadProducerSnapshot() (*producerStateManager, int64) {
	b, err := vfs.ReadFile(p.fs, filepath.Join(p.dir, producerSnapshotFile))
	if err != nil {
		return nil, 0
	}
	m, off, err := decodeProducerSnapshot(b)
	if err != nil || off > p.log.EndOffset() || off < 0 {
		return nil, 0
	}
	return m, off
}

// removeProducerSnapshot must precede any truncation of the log below the snapshot offset.
func (p *Partition) removeProducerSnapshot() error {
	err := p.fs.Remove(filepath.Join(p.dir, producerSnapshotFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
