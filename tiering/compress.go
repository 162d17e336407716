package tiering

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"

	"github.com/pierrec/lz4/v4"
)

// compressMemBytes bounds the stored (compressed) bytes compressChunks keeps in memory; beyond it
// they go to a temporary file in os.TempDir() (TMPDIR), removed by SegmentObject.Close. Without the
// bound a 1 GiB segment of JSON-like records held ~0.32 GiB per concurrent upload. A variable for tests.
var compressMemBytes int64 = 32 << 20

// errSpill marks a failure to use the temporary file (TMPDIR unwritable or full): the archiver then
// uploads the segment verbatim rather than retrying a compression that cannot succeed.
var errSpill = errors.New("tiering: temporary file for a compressed segment")

// compressChunks replaces obj's data with lz4 chunks of the logical data.
func compressChunks(obj *SegmentObject, data io.ReaderAt, chunkSize int) (err error) {
	if chunkSize <= 0 {
		chunkSize = DefaultChunkSize
	}
	if chunkSize < minChunkSize || chunkSize > maxChunkSize {
		return fmt.Errorf("tiering: chunk size %d outside [%d, %d]", chunkSize, minChunkSize, maxChunkSize)
	}
	f := obj.Footer
	var (
		c      lz4.Compressor
		src    = make([]byte, chunkSize)
		dst    = make([]byte, lz4.CompressBlockBound(chunkSize))
		mem    = make([]byte, 0, min(f.DataLen/2, compressMemBytes))
		spill  *spillFile
		stored int64
	)
	defer func() {
		if err != nil && spill != nil {
			spill.Close()
		}
	}()
	for off := int64(0); off < f.DataLen; off += int64(chunkSize) {
		chunk := src[:min(int64(chunkSize), f.DataLen-off)]
		if _, err := data.ReadAt(chunk, off); err != nil && !(err == io.EOF && off+int64(len(chunk)) == f.DataLen) {
			return fmt.Errorf("tiering: reading segment at %d for compression: %w", off, err)
		}
		n, cerr := c.CompressBlock(chunk, dst)
		e := ChunkEntry{StoredPos: uint32(stored)}
		out := dst[:n]
		// Keep lz4 only where it saves at least 1/16: a chunk of mostly incompressible data is stored
		// raw, which reads without decoding.
		if cerr != nil || n == 0 || n > len(chunk)-len(chunk)/16 {
			e.Raw, out = true, chunk
		}
		e.StoredLen, e.CRC = uint32(len(out)), crc32.Checksum(out, castagnoli)
		if spill == nil && int64(len(mem)+len(out)) > compressMemBytes {
			if spill, err = newSpillFile(mem); err != nil {
				return err
			}
			mem = nil
		}
		if spill != nil {
			if _, err := spill.Write(out); err != nil {
				return fmt.Errorf("%w %s: %w", errSpill, spill.Name(), err)
			}
		} else {
			mem = append(mem, out...)
		}
		stored += int64(len(out))
		f.Chunks = append(f.Chunks, e)
	}
	f.Flags |= FlagLZ4Chunks
	f.ChunkSize = uint32(chunkSize)
	f.StoredLen = stored
	if spill != nil {
		obj.data = spill
	} else {
		obj.data = bytes.NewReader(mem)
	}
	return nil
}

// spillFile is a temporary file holding a compressed data section; Close removes it.
type spillFile struct{ *os.File }

func newSpillFile(head []byte) (*spillFile, error) {
	f, err := os.CreateTemp("", "sediment-lz4-*.tmp")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errSpill, err)
	}
	s := &spillFile{f}
	if _, err := f.Write(head); err != nil {
		s.Close()
		return nil, fmt.Errorf("%w %s: %w", errSpill, f.Name(), err)
	}
	return s, nil
}

func (s *spillFile) Close() error {
	err := s.File.Close()
	if rerr := os.Remove(s.Name()); err == nil {
		err = rerr
	}
	return err
}

// Close releases what the object holds beyond the caller's segment data: the temporary file of a
// compressed data section larger than compressMemBytes. The object must not be read afterwards.
// Idempotent enough for a deferred call after an error path (a second Close reports the file gone).
func (o *SegmentObject) Close() error {
	if s, ok := o.data.(*spillFile); ok {
		o.data = nil
		return s.Close()
	}
	return nil
}
