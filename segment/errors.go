package segment

import "errors"

var (
	// ErrOffsetOutOfRange: a read or truncation offset outside [StartOffset, EndOffset].
	ErrOffsetOutOfRange = errors.New("segment: offset out of range")
	// ErrCorrupt: bytes that are not a valid RecordBatch v2 or a valid segment file.
	// Wrapped errors name the file and byte position.
	ErrCorrupt = errors.New("segment: corrupt data")
	// ErrClosed: the log was closed.
	ErrClosed = errors.New("segment: log closed")
	// ErrDecompressLimit: decompressed output would exceed the caller's limit.
	ErrDecompressLimit = errors.New("segment: decompressed size exceeds limit")
	// ErrInvalidOffset: AppendReplicated got batches whose offsets do not continue
	// the log (the first base offset is not EndOffset, or offsets do not increase).
	ErrInvalidOffset = errors.New("segment: batch offsets do not continue the log")
	// ErrTruncated: WaitDurable's data was removed by a truncation while waiting.
	ErrTruncated = errors.New("segment: log truncated below the awaited offset")
	// ErrNotLocal: a read at or above StartOffset but below LocalStartOffset: the
	// data lives only in object storage (tiering), not on local disk. Distinct
	// from ErrOffsetOutOfRange so a broker can serve it from the bucket.
	ErrNotLocal = errors.New("segment: offset below the local log start (data only in object storage)")
	// ErrLocked: Open found the log directory in use by another Log (in this or
	// another process): its lock file is held. The error names the directory.
	ErrLocked = errors.New("segment: log directory in use")
	// ErrBatchTooLarge: a batch larger than segment.bytes.
	ErrBatchTooLarge = errors.New("segment: batch larger than segment.bytes")
)
