package meta

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// binaryBody is implemented by the command bodies on the hot path (heartbeats, offset commits), which
// use a compact binary body instead of JSON: they are most of the log by count, and JSON decoding was
// a fifth of the apply cost at high commit rates.
//
// Integers are varints (zig-zag for signed), strings a uvarint length and the bytes; a list is a
// uvarint count then its items. Decoding checks every length against the bytes left, never panics,
// and rejects trailing bytes.
type binaryBody interface {
	appendBinary(b []byte) []byte
	decodeBinary(b []byte) error
}

var errShort = errors.New("truncated")

type rd struct {
	b   []byte
	err error
}

func (r *rd) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errShort
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *rd) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errShort
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *rd) int32() int32 {
	v := r.varint()
	if v < -1<<31 || v > 1<<31-1 {
		r.fail(fmt.Errorf("int32 out of range: %d", v))
		return 0
	}
	return int32(v)
}

func (r *rd) str() string {
	n := r.uvarint()
	if r.err != nil {
		return ""
	}
	if n > uint64(len(r.b)) {
		r.err = errShort
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// count reads a list length, bounded by the bytes left (each item takes at least min bytes).
func (r *rd) count(min int) int {
	n := r.uvarint()
	if r.err == nil && n > uint64(len(r.b)/min) {
		r.err = errShort
		return 0
	}
	return int(n)
}

func (r *rd) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *rd) done() error {
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%d trailing bytes", len(r.b))
	}
	return r.err
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func (c *cmdHeartbeat) appendBinary(b []byte) []byte {
	b = binary.AppendVarint(b, int64(c.ID))
	return binary.AppendVarint(b, c.Epoch)
}

func (c *cmdHeartbeat) decodeBinary(b []byte) error {
	r := rd{b: b}
	c.ID = r.int32()
	c.Epoch = r.varint()
	return r.done()
}

func (c *cmdCommitOffsets) appendBinary(b []byte) []byte {
	return appendGroupOffsets(b, c.Group, c.Offsets)
}

func appendGroupOffsets(b []byte, group string, offsets []OffsetCommit) []byte {
	b = appendStr(b, group)
	b = binary.AppendUvarint(b, uint64(len(offsets)))
	for _, o := range offsets {
		b = appendStr(b, o.Topic)
		b = binary.AppendVarint(b, int64(o.Partition))
		b = binary.AppendVarint(b, o.Offset)
		b = binary.AppendVarint(b, int64(o.LeaderEpoch))
		b = appendStr(b, o.Metadata)
		b = binary.AppendVarint(b, o.CommitTime)
	}
	return b
}

func (c *cmdCommitOffsets) decodeBinary(b []byte) error {
	r := rd{b: b}
	c.Group, c.Offsets = r.groupOffsets()
	return r.done()
}

func (c *cmdCommitOffsetsBatch) appendBinary(b []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(c.Groups)))
	for _, g := range c.Groups {
		b = appendGroupOffsets(b, g.Group, g.Offsets)
	}
	return b
}

func (c *cmdCommitOffsetsBatch) decodeBinary(b []byte) error {
	r := rd{b: b}
	n := r.count(2)
	if n > 0 {
		c.Groups = make([]GroupOffsets, n)
	}
	for i := 0; i < n && r.err == nil; i++ {
		c.Groups[i].Group, c.Groups[i].Offsets = r.groupOffsets()
	}
	return r.done()
}

func (r *rd) groupOffsets() (string, []OffsetCommit) {
	group := r.str()
	n := r.count(6)
	var offsets []OffsetCommit
	if n > 0 {
		offsets = make([]OffsetCommit, n)
	}
	for i := 0; i < n && r.err == nil; i++ {
		o := &offsets[i]
		o.Topic = r.str()
		o.Partition = r.int32()
		o.Offset = r.varint()
		o.LeaderEpoch = r.int32()
		o.Metadata = r.str()
		o.CommitTime = r.varint()
	}
	return group, offsets
}
