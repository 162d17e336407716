// Command lsbucket waits until a MinIO server is healthy and creates a bucket in it (idempotent).
// localstack/minio.sh runs it after starting MinIO; it is the same code StartMinIO uses in tests.
//
//	lsbucket -endpoint http://127.0.0.1:9000 -bucket sediment [-timeout 60s]
//
// Credentials come from MINIO_ROOT_USER / MINIO_ROOT_PASSWORD (defaults: the local stack's).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/sediment-io/sediment/localstack"
)

func main() {
	endpoint := flag.String("endpoint", "http://127.0.0.1:9000", "MinIO endpoint (loopback)")
	bucket := flag.String("bucket", localstack.DefaultBucket, "bucket to create")
	timeout := flag.Duration("timeout", 60*time.Second, "how long to wait for /minio/health/live")
	flag.Parse()
	user := envOr("MINIO_ROOT_USER", localstack.DefaultAccessKey)
	pass := envOr("MINIO_ROOT_PASSWORD", localstack.DefaultSecretKey)

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := localstack.WaitHealthy(ctx, *endpoint, nil); err != nil {
		fmt.Fprintln(os.Stderr, "lsbucket:", err)
		os.Exit(1)
	}
	if err := localstack.CreateBucket(ctx, *endpoint, user, pass, *bucket); err != nil {
		fmt.Fprintln(os.Stderr, "lsbucket:", err)
		os.Exit(1)
	}
	fmt.Printf("bucket %s ready at %s\n", *bucket, *endpoint)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
