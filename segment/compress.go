package segment

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// xerialMagic opens the snappy framing that Java clients (snappy-java's
// SnappyOutputStream) produce: magic, version, compatible version, then blocks
// of [int32 length][raw snappy].
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

// Decompress inflates the records section of a compressed batch (the bytes after
// the 61-byte header) with codec. Output beyond limit bytes stops decoding with
// ErrDecompressLimit, so a small bomb cannot allocate much. Snappy accepts both
// xerial-framed (Java clients) and raw block (librdkafka, franz-go, Sarama) input.
func Decompress(codec Codec, src []byte, limit int) ([]byte, error) {
	if limit < 0 {
		return nil, fmt.Errorf("segment: negative decompression limit %d", limit)
	}
	switch codec {
	case CodecNone:
		if len(src) > limit {
			return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrDecompressLimit, len(src), limit)
		}
		return src, nil
	case CodecGzip:
		r, err := gzip.NewReader(bytes.NewReader(src))
		if err != nil {
			return nil, fmt.Errorf("%w: gzip: %v", ErrCorrupt, err)
		}
		defer r.Close()
		return readLimited(r, limit, "gzip", len(src))
	case CodecSnappy:
		return snappyDecode(src, limit)
	case CodecLZ4:
		return readLimited(lz4.NewReader(bytes.NewReader(src)), limit, "lz4", len(src))
	case CodecZstd:
		// The window bound keeps a hostile frame header from reserving memory far
		// beyond what the limit allows.
		d, err := zstd.NewReader(bytes.NewReader(src), zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxMemory(uint64(limit)+1), zstd.WithDecoderMaxWindow(max(uint64(limit)+1, zstd.MinWindowSize)))
		if err != nil {
			return nil, fmt.Errorf("%w: zstd: %v", ErrCorrupt, err)
		}
		defer d.Close()
		return readLimited(d, limit, "zstd", len(src))
	}
	return nil, fmt.Errorf("%w: unknown compression codec %d", ErrCorrupt, int8(codec))
}

// readLimited reads r to the end, failing with ErrDecompressLimit past limit.
func readLimited(r io.Reader, limit int, name string, srcLen int) ([]byte, error) {
	buf := bytes.NewBuffer(make([]byte, 0, min(limit, 4*srcLen+512)))
	n, err := io.Copy(buf, io.LimitReader(r, int64(limit)+1))
	if err != nil {
		if errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded) {
			return nil, fmt.Errorf("%w: %s output exceeds %d bytes", ErrDecompressLimit, name, limit)
		}
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, name, err)
	}
	if n > int64(limit) {
		return nil, fmt.Errorf("%w: %s output exceeds %d bytes", ErrDecompressLimit, name, limit)
	}
	return buf.Bytes(), nil
}

func snappyDecode(src []byte, limit int) ([]byte, error) {
	if !bytes.HasPrefix(src, xerialMagic) {
		return snappyBlock(nil, src, limit)
	}
	if len(src) < 16 {
		return nil, fmt.Errorf("%w: snappy: xerial header of %d bytes", ErrCorrupt, len(src))
	}
	var out []byte
	for p := 16; p < len(src); {
		if len(src)-p < 4 {
			return nil, fmt.Errorf("%w: snappy: xerial block length at byte %d truncated", ErrCorrupt, p)
		}
		n := int(binary.BigEndian.Uint32(src[p:]))
		p += 4
		if n < 0 || n > len(src)-p {
			return nil, fmt.Errorf("%w: snappy: xerial block at byte %d claims %d bytes, %d remain", ErrCorrupt, p-4, n, len(src)-p)
		}
		var err error
		if out, err = snappyBlock(out, src[p:p+n], limit); err != nil {
			return nil, err
		}
		p += n
	}
	return out, nil
}

// snappyBlock appends the decoding of one raw snappy block to dst, checking the
// declared length against the limit before allocating.
func snappyBlock(dst, block []byte, limit int) ([]byte, error) {
	n, err := s2.DecodedLen(block)
	if err != nil {
		return nil, fmt.Errorf("%w: snappy: %v", ErrCorrupt, err)
	}
	if n > limit-len(dst) {
		return nil, fmt.Errorf("%w: snappy output exceeds %d bytes", ErrDecompressLimit, limit)
	}
	out, err := s2.Decode(make([]byte, n), block)
	if err != nil {
		return nil, fmt.Errorf("%w: snappy: %v", ErrCorrupt, err)
	}
	return append(dst, out...), nil
}
