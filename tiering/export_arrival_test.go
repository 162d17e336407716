package tiering

// CachedChunk returns the buffer of key's chunk idx while the cache holds it whole (nil otherwise),
// for tests that change cached bytes in place.
func (r *RemoteLog) CachedChunk(key string, idx int64) []byte {
	c := r.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[chunkID{key, idx}]
	if e == nil || e.filled.Load() != e.size {
		return nil
	}
	return e.data
}
