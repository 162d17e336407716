// Package tiering moves closed log segments to object storage and reads them back.
//
// This file grows with the package; today it owns:
//
//   - The object-store seam (Store, objstore.go): Put, ranged Get, Head, List by prefix, Delete, and
//     the optional ConditionalPutter capability. Each method documents its failure semantics; every
//     backend passes the same conformance suite (tiering/objstoretest).
//   - Backends: MemStore (mem://, tests), FileStore (file://DIR, the embedded default; temp → fsync →
//     rename → fsync dir) and S3Store (s3://BUCKET/PREFIX?endpoint=&region=&path-style=, aws-sdk-go-v2,
//     the only file importing it). OpenURL builds one from a URL.
//
// Goroutines: none of its own, except S3Store's multipart upload, which runs at most PartConcurrency
// part uploads for the duration of one Put call.
//
// Locks: MemStore has one mutex around its map; S3Store one around its request counters. No lock is
// held across I/O or a call into another package.
package tiering
