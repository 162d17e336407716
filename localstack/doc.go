// Package localstack runs the pieces of a local Sediment stack that tests and developers need,
// without Docker: a real MinIO server on loopback with a bucket.
//
// The same logic is reachable three ways, so local testing and CI use one code path:
//   - localstack/minio.sh start|stop|status|install (a developer's shell, `make minio`);
//   - localstack/cmd/lsbucket, which minio.sh runs to wait for health and create the bucket;
//   - StartMinIO(t) in tests, which starts a private MinIO for one test on free loopback ports
//     and stops it at cleanup.
//
// The MinIO server binary is pinned (MinIOModule, MinIOVersion) and installed with `go install`
// into <repo>/.localstack/bin on first use (minio.sh install), then cached. MINIO_BIN overrides it.
//
// Goroutines: StartMinIO owns one goroutine per server that waits for the process to exit.
// No shared state: each Server is used by one test.
package localstack
