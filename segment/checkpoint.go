package segment

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"path/filepath"

	"github.com/sediment-io/sediment/segment/vfs"
)

// Checkpoint files (see doc.go for the byte diagram): small files replaced
// atomically (temp, fsync, rename, fsync dir), each framed by a magic, a version, a
// kind, a payload length and a CRC-32C so a torn or foreign file is detected.
const (
	ckMagic   = "SDCK"
	ckVersion = 1
	ckHeader  = 12 // magic 4, version 2, kind 2, payload length 4
	ckTrailer = 4  // crc32c

	kindLogStart      = 1
	kindRecoveryPoint = 2
	kindLeaderEpochs  = 3
	kindCleanShutdown = 4

	logStartFile      = "log-start-offset.checkpoint"
	recoveryPointFile = "recovery-point.checkpoint"
	leaderEpochFile   = "leader-epoch.checkpoint"
	cleanShutdownFile = "clean-shutdown.checkpoint"

	// lockFile is flocked while a Log has the directory open (see doc.go).
	lockFile = ".lock"
)

func encodeCheckpoint(kind uint16, payload []byte) []byte {
	b := make([]byte, ckHeader+len(payload)+ckTrailer)
	copy(b, ckMagic)
	binary.BigEndian.PutUint16(b[4:], ckVersion)
	binary.BigEndian.PutUint16(b[6:], kind)
	binary.BigEndian.PutUint32(b[8:], uint32(len(payload)))
	copy(b[ckHeader:], payload)
	binary.BigEndian.PutUint32(b[ckHeader+len(payload):], crc32.Checksum(b[:ckHeader+len(payload)], castagnoli))
	return b
}

// decodeCheckpoint checks framing and returns the payload. Versions above ours
// are refused: a newer writer may have changed the payload's meaning.
func decodeCheckpoint(name string, b []byte, kind uint16) ([]byte, error) {
	p, _, err := decodeCheckpointVersions(name, b, kind, ckVersion)
	return p, err
}

// decodeCheckpointVersions is decodeCheckpoint accepting versions 1..maxVersion;
// it returns the version read.
func decodeCheckpointVersions(name string, b []byte, kind, maxVersion uint16) ([]byte, uint16, error) {
	if len(b) < ckHeader+ckTrailer || string(b[:4]) != ckMagic {
		return nil, 0, fmt.Errorf("%w: %s: not a checkpoint file (%d bytes)", ErrCorrupt, name, len(b))
	}
	v := binary.BigEndian.Uint16(b[4:])
	if v < 1 || v > maxVersion {
		return nil, 0, fmt.Errorf("%w: %s: checkpoint version %d, this build reads 1 to %d", ErrCorrupt, name, v, maxVersion)
	}
	if k := binary.BigEndian.Uint16(b[6:]); k != kind {
		return nil, 0, fmt.Errorf("%w: %s: checkpoint kind %d, want %d", ErrCorrupt, name, k, kind)
	}
	n := int(binary.BigEndian.Uint32(b[8:]))
	if n != len(b)-ckHeader-ckTrailer {
		return nil, 0, fmt.Errorf("%w: %s: payload length %d does not match file size %d", ErrCorrupt, name, n, len(b))
	}
	if got, want := crc32.Checksum(b[:ckHeader+n], castagnoli), binary.BigEndian.Uint32(b[ckHeader+n:]); got != want {
		return nil, 0, fmt.Errorf("%w: %s: crc32c %08x, file says %08x", ErrCorrupt, name, got, want)
	}
	return b[ckHeader : ckHeader+n], v, nil
}

// The log-start checkpoint. Version 1 (payload: i64 log start) when the log
// start is at or above the first local segment; version 2 (payload: i64 log
// start, i64 local log start) when tiering left the log start below the first
// local segment. Writing version 2 only then keeps logs without tiering
// readable by builds that know only version 1, and makes such builds refuse
// (not misread) a log whose history is partly remote.
const logStartVersionTiered = 2

func writeStartCheckpoint(fsys vfs.FS, dir string, start, localStart int64) error {
	if localStart <= start {
		return writeOffsetCheckpoint(fsys, dir, logStartFile, kindLogStart, start)
	}
	var p [16]byte
	binary.BigEndian.PutUint64(p[:], uint64(start))
	binary.BigEndian.PutUint64(p[8:], uint64(localStart))
	b := encodeCheckpoint(kindLogStart, p[:])
	binary.BigEndian.PutUint16(b[4:], logStartVersionTiered)
	binary.BigEndian.PutUint32(b[len(b)-ckTrailer:], crc32.Checksum(b[:len(b)-ckTrailer], castagnoli))
	return vfs.WriteFileAtomic(fsys, filepath.Join(dir, logStartFile), b)
}

// readStartCheckpoint returns the log start and the local log start (equal for
// a version-1 file); ok=false when the file does not exist.
func readStartCheckpoint(fsys vfs.FS, dir string) (start, localStart int64, ok bool, err error) {
	path := filepath.Join(dir, logStartFile)
	b, err := vfs.ReadFile(fsys, path)
	if err != nil {
		if isNotExist(err) {
			return 0, 0, false, nil
		}
		return 0, 0, false, err
	}
	p, v, err := decodeCheckpointVersions(path, b, kindLogStart, logStartVersionTiered)
	if err != nil {
		return 0, 0, false, err
	}
	want := 8
	if v == logStartVersionTiered {
		want = 16
	}
	if len(p) != want {
		return 0, 0, false, fmt.Errorf("%w: %s: version %d payload of %d bytes, want %d", ErrCorrupt, path, v, len(p), want)
	}
	start = int64(binary.BigEndian.Uint64(p))
	localStart = start
	if v == logStartVersionTiered {
		localStart = int64(binary.BigEndian.Uint64(p[8:]))
	}
	if start < 0 || localStart < start {
		return 0, 0, false, fmt.Errorf("%w: %s: log start %d, local log start %d", ErrCorrupt, path, start, localStart)
	}
	return start, localStart, true, nil
}

func writeOffsetCheckpoint(fsys vfs.FS, dir, name string, kind uint16, off int64) error {
	var p [8]byte
	binary.BigEndian.PutUint64(p[:], uint64(off))
	return vfs.WriteFileAtomic(fsys, filepath.Join(dir, name), encodeCheckpoint(kind, p[:]))
}

// readOffsetCheckpoint returns ok=false when the file does not exist.
func readOffsetCheckpoint(fsys vfs.FS, dir, name string, kind uint16) (int64, bool, error) {
	path := filepath.Join(dir, name)
	b, err := vfs.ReadFile(fsys, path)
	if err != nil {
		if isNotExist(err) {
			return 0, false, nil
		}
		return 0, false, err
	}
	p, err := decodeCheckpoint(path, b, kind)
	if err != nil {
		return 0, false, err
	}
	if len(p) != 8 {
		return 0, false, fmt.Errorf("%w: %s: payload of %d bytes, want 8", ErrCorrupt, path, len(p))
	}
	return int64(binary.BigEndian.Uint64(p)), true, nil
}

type epochEntry struct {
	epoch int32
	start int64
}

func encodeEpochs(es []epochEntry) []byte {
	p := make([]byte, 12*len(es))
	for i, e := range es {
		binary.BigEndian.PutUint32(p[i*12:], uint32(e.epoch))
		binary.BigEndian.PutUint64(p[i*12+4:], uint64(e.start))
	}
	return encodeCheckpoint(kindLeaderEpochs, p)
}

func decodeEpochs(name string, b []byte) ([]epochEntry, error) {
	p, err := decodeCheckpoint(name, b, kindLeaderEpochs)
	if err != nil {
		return nil, err
	}
	if len(p)%12 != 0 {
		return nil, fmt.Errorf("%w: %s: payload of %d bytes is not whole entries", ErrCorrupt, name, len(p))
	}
	es := make([]epochEntry, len(p)/12)
	for i := range es {
		es[i] = epochEntry{epoch: int32(binary.BigEndian.Uint32(p[i*12:])), start: int64(binary.BigEndian.Uint64(p[i*12+4:]))}
		if es[i].epoch < 0 || es[i].start < 0 || (i > 0 && (es[i].epoch <= es[i-1].epoch || es[i].start < es[i-1].start)) {
			return nil, fmt.Errorf("%w: %s: entry %d (epoch %d, offset %d) not increasing", ErrCorrupt, name, i, es[i].epoch, es[i].start)
		}
	}
	return es, nil
}
