package tiering_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/minio/minio-go/v7"

	"github.com/sediment-io/sediment/localstack"
	"github.com/sediment-io/sediment/tiering"
)

// One MinIO per test binary, started on first use and stopped in TestMain.
var (
	minioOnce sync.Once
	minioSrv  *localstack.Server
	minioErr  error
	minioDir  string
	prefixSeq atomic.Int64
)

func TestMain(m *testing.M) {
	code := m.Run()
	if minioSrv != nil {
		minioSrv.Stop()
	}
	if minioDir != "" {
		os.RemoveAll(minioDir)
	}
	os.Exit(code)
}

const minioInstall = `no MinIO server binary found. Install one:
    make minio            (or: bash localstack/minio.sh install — go-installs the pinned MinIO into .localstack/bin)
or point MINIO_BIN at a minio server binary, or put 'minio' on PATH.
To skip the MinIO tests knowingly: SEDIMENT_SKIP_MINIO=1`

// findMinIO looks for a server binary without installing anything (a test must not spend minutes
// compiling MinIO behind the developer's back; it fails and says how to install).
func findMinIO() (string, error) {
	if b := os.Getenv("MINIO_BIN"); b != "" {
		if _, err := os.Stat(b); err != nil {
			return "", fmt.Errorf("MINIO_BIN=%s: %w\n%s", b, err, minioInstall)
		}
		return b, nil
	}
	if root, err := localstack.RepoRoot(); err == nil {
		b := filepath.Join(root, ".localstack", "bin", "minio")
		if _, err := os.Stat(b); err == nil {
			return b, nil
		}
	}
	if b, err := exec.LookPath("minio"); err == nil {
		return b, nil
	}
	return "", fmt.Errorf("%s", minioInstall)
}

// needMinIO returns the shared MinIO server, failing the test with install instructions when there
// is none (skipping only under SEDIMENT_SKIP_MINIO=1).
func needMinIO(t testing.TB) *localstack.Server {
	t.Helper()
	if os.Getenv("SEDIMENT_SKIP_MINIO") == "1" {
		t.Skip("SEDIMENT_SKIP_MINIO=1: skipping a test that needs a real MinIO")
	}
	minioOnce.Do(func() {
		bin, err := findMinIO()
		if err != nil {
			minioErr = err
			return
		}
		if minioDir, err = os.MkdirTemp("", "tiering-minio-"); err != nil {
			minioErr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		minioSrv, minioErr = localstack.Start(ctx, localstack.Options{Binary: bin, DataDir: minioDir})
	})
	if minioErr != nil {
		t.Fatalf("MinIO: %v", minioErr)
	}
	return minioSrv
}

// uniquePrefix gives each test its own key space in the shared bucket.
func uniquePrefix(t testing.TB) string {
	return fmt.Sprintf("test-%d-%d", time.Now().UnixNano(), prefixSeq.Add(1))
}

// newS3 builds our S3 store against endpoint (MinIO or a fault proxy in front of it).
func newS3(t testing.TB, srv *localstack.Server, endpoint, prefix string, mod ...func(*tiering.S3Config)) *tiering.S3Store {
	t.Helper()
	cfg := tiering.S3Config{
		Bucket: srv.Bucket, Prefix: prefix, Region: srv.Region, Endpoint: endpoint, PathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, ""),
		BaseBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond,
	}
	for _, m := range mod {
		m(&cfg)
	}
	s, err := tiering.NewS3Store(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// inspect is an independent client (minio-go) for checking the bucket behind our back.
func inspect(t testing.TB, srv *localstack.Server) *minio.Client {
	t.Helper()
	cl, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	return cl
}
