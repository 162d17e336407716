package localstack

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// TestStartMinIO runs a real MinIO through the helper the integration tests use: it must come up
// healthy with the bucket, store and return an object byte for byte, and stop cleanly (port closed).
func TestStartMinIO(t *testing.T) {
	s := StartMinIO(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := s.Client()
	if err != nil {
		t.Fatal(err)
	}
	ok, err := cl.BucketExists(ctx, s.Bucket)
	if err != nil || !ok {
		t.Fatalf("bucket %q exists=%v err=%v", s.Bucket, ok, err)
	}
	payload := bytes.Repeat([]byte("sediment-segment-"), 4096)
	if _, err := cl.PutObject(ctx, s.Bucket, "t/0/00000000000000000000.log", bytes.NewReader(payload), int64(len(payload)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	obj, err := cl.GetObject(ctx, s.Bucket, "t/0/00000000000000000000.log", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(obj)
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("read back %d bytes (err %v), want %d identical", len(got), err, len(payload))
	}
	// CreateBucket is idempotent: minio.sh start may be rerun against a running server.
	if err := CreateBucket(ctx, s.Endpoint, s.AccessKey, s.SecretKey, s.Bucket); err != nil {
		t.Fatalf("second CreateBucket: %v", err)
	}
	if !strings.HasPrefix(s.ObjectStoreURL("p"), "s3://"+s.Bucket+"/p?endpoint=http://127.0.0.1:") {
		t.Fatalf("ObjectStoreURL = %s", s.ObjectStoreURL("p"))
	}

	if err := s.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if c, err := net.DialTimeout("tcp", s.Addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("%s still accepts connections after Stop", s.Addr)
	}
}

// TestMinIOScript drives localstack/minio.sh start/status/stop on a private state dir and port,
// as a developer (or `make minio`) would.
func TestMinIOScript(t *testing.T) {
	if os.Getenv("SEDIMENT_SKIP_MINIO") == "1" {
		t.Skip("SEDIMENT_SKIP_MINIO=1")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	bin, err := MinIOBinary(ctx, t.Logf) // installs through the script when absent
	if err != nil {
		t.Fatal(err)
	}
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := freeAddr()
	caddr, _ := freeAddr()
	_, port, _ := net.SplitHostPort(addr)
	_, cport, _ := net.SplitHostPort(caddr)
	state := t.TempDir()
	// The script builds its bucket helper into the state dir: share the repo's go build cache.
	env := append(os.Environ(), "MINIO_BIN="+bin, "SEDIMENT_LOCALSTACK="+state,
		"MINIO_PORT="+port, "MINIO_CONSOLE_PORT="+cport, "MINIO_BUCKET=scripted")
	run := func(args ...string) (string, int) {
		cmd := exec.CommandContext(ctx, "bash", append([]string{filepath.Join(root, "localstack", "minio.sh")}, args...)...)
		cmd.Env = env
		out, _ := cmd.CombinedOutput()
		return string(out), cmd.ProcessState.ExitCode()
	}
	t.Cleanup(func() { run("stop") })

	if out, code := run("status"); code != 3 {
		t.Fatalf("status before start: exit %d, want 3\n%s", code, out)
	}
	if out, code := run("start"); code != 0 || !strings.Contains(out, "bucket scripted ready") {
		t.Fatalf("start: exit %d\n%s", code, out)
	}
	if out, code := run("status"); code != 0 || !strings.Contains(out, "healthy") {
		t.Fatalf("status: exit %d\n%s", code, out)
	}
	cl, err := NewClient("http://"+addr, DefaultAccessKey, DefaultSecretKey)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := cl.BucketExists(ctx, "scripted"); err != nil || !ok {
		t.Fatalf("bucket after start: %v %v", ok, err)
	}
	if out, code := run("stop"); code != 0 || !strings.Contains(out, "stopped") {
		t.Fatalf("stop: exit %d\n%s", code, out)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("%s still accepts connections after stop", addr)
	}
	if _, err := os.Stat(filepath.Join(state, "minio", "data")); err != nil {
		t.Fatalf("data dir under the state dir: %v", err)
	}
}
