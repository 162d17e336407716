package tiering

import "context"

// prefault brings into the chunk cache (loading, or waiting for loads under way) the stored bytes
// that Read(ctx, offset, maxBytes, ·) will look at, and counts them as the read's hits or misses,
// so that the Read that follows (with an uncountedRead context) only copies and checks bytes
// already in memory. It computes the range exactly as Read does. Without a chunk cache, or for an
// offset Read will reject, it does nothing (Read reports the error). A first batch larger than
// maxBytes makes Read fetch the rest itself (minOneBatch), as does a chunk evicted in between.
func (r *RemoteReader) prefault(ctx context.Context, offset int64, maxBytes int) error {
	co, ok := r.store.(*cachedObject)
	f := r.Footer
	if !ok || offset < f.BaseOffset || offset > f.LastOffset {
		return nil
	}
	start := int64(f.Offsets[f.floorOffset(offset)].Position)
	end := min(f.DataLen, f.nextPosition(start)+int64(max(maxBytes, 0)))
	if end <= start {
		return nil
	}
	_, _, sFrom, sTo := f.storedRange(start, end)
	if sFrom >= co.size {
		return nil
	}
	_, err := co.c.read(ctx, co.Store, co.key, co.size, sFrom, min(sTo, co.size))
	return err
}
