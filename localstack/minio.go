package localstack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// The pinned MinIO server, installed by `go install MinIOModule@MinIOVersion`. minio.sh pins the same.
const (
	MinIOModule  = "github.com/minio/minio"
	MinIOVersion = "v0.0.0-20260212201848-7aac2a2c5b7c"
)

// Default credentials and bucket of the local stack. They only ever guard a loopback listener.
const (
	DefaultAccessKey = "sediment"
	DefaultSecretKey = "sediment-local-secret"
	DefaultBucket    = "sediment"
	DefaultRegion    = "us-east-1"
)

// RepoRoot finds the repository root (the directory holding go.mod) from this source file's
// location or, failing that, from the working directory upwards.
func RepoRoot() (string, error) {
	if _, file, _, ok := runtime.Caller(0); ok {
		dir := filepath.Dir(filepath.Dir(file))
		if _, err := os.Stat(filepath.Join(dir, "localstack", "minio.sh")); err == nil {
			return dir, nil
		}
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "localstack", "minio.sh")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("localstack: repository root (with localstack/minio.sh) not found")
		}
		dir = parent
	}
}

// MinIOBinary returns the MinIO server binary: $MINIO_BIN if set, else <repo>/.localstack/bin/minio,
// installing it there with localstack/minio.sh install when absent (a `go install` of the pinned
// version: minutes on a cold build cache, cached afterwards).
func MinIOBinary(ctx context.Context, logf func(string, ...any)) (string, error) {
	if b := os.Getenv("MINIO_BIN"); b != "" {
		if _, err := os.Stat(b); err != nil {
			return "", fmt.Errorf("MINIO_BIN=%s: %w", b, err)
		}
		return b, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(root, ".localstack", "bin", "minio")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	installMu.Lock()
	defer installMu.Unlock()
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if logf != nil {
		logf("MinIO not installed at %s: running localstack/minio.sh install (go install %s@%s; slow once)", bin, MinIOModule, MinIOVersion)
	}
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "localstack", "minio.sh"), "install")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("localstack/minio.sh install: %v\n%s\n(install it by hand with `make minio`, or point MINIO_BIN at a minio server binary)", err, out)
	}
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("minio.sh install succeeded but %s is missing: %w", bin, err)
	}
	return bin, nil
}

var installMu sync.Mutex

// Server is a running MinIO process.
type Server struct {
	Endpoint  string // http://127.0.0.1:PORT
	Addr      string // 127.0.0.1:PORT
	AccessKey string
	SecretKey string
	Bucket    string
	Region    string
	DataDir   string

	cmd    *exec.Cmd
	exited chan struct{}
	out    *lockedBuffer
}

// Options for Start. Zero values pick free loopback ports, a temporary data dir and the defaults above.
type Options struct {
	Binary      string // "" = MinIOBinary
	DataDir     string // required for Start; StartMinIO uses t.TempDir()
	Addr        string // "" = 127.0.0.1:<free port>
	ConsoleAddr string // "" = 127.0.0.1:<free port>
	AccessKey   string
	SecretKey   string
	Bucket      string
	Logf        func(string, ...any)
}

// Start runs a MinIO server on loopback, waits until /minio/health/live answers 200 and creates the
// bucket. The caller must Stop it.
func Start(ctx context.Context, o Options) (*Server, error) {
	if o.DataDir == "" {
		return nil, errors.New("localstack: Options.DataDir is required")
	}
	if o.AccessKey == "" {
		o.AccessKey = DefaultAccessKey
	}
	if o.SecretKey == "" {
		o.SecretKey = DefaultSecretKey
	}
	if o.Bucket == "" {
		o.Bucket = DefaultBucket
	}
	bin := o.Binary
	if bin == "" {
		var err error
		if bin, err = MinIOBinary(ctx, o.Logf); err != nil {
			return nil, err
		}
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // a free port can be taken before MinIO binds it
		s, err := start(ctx, bin, o)
		if err == nil {
			return s, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

func start(ctx context.Context, bin string, o Options) (*Server, error) {
	addr, caddr := o.Addr, o.ConsoleAddr
	var err error
	if addr == "" {
		if addr, err = freeAddr(); err != nil {
			return nil, err
		}
	}
	if caddr == "" {
		if caddr, err = freeAddr(); err != nil {
			return nil, err
		}
	}
	s := &Server{
		Endpoint: "http://" + addr, Addr: addr,
		AccessKey: o.AccessKey, SecretKey: o.SecretKey, Bucket: o.Bucket, Region: DefaultRegion,
		DataDir: o.DataDir, exited: make(chan struct{}), out: &lockedBuffer{},
	}
	s.cmd = exec.Command(bin, "server", "--quiet", "--address", addr, "--console-address", caddr, o.DataDir)
	s.cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+o.AccessKey,
		"MINIO_ROOT_PASSWORD="+o.SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_CI_CD=1",
	)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	dieWithParent(s.cmd)
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	go func() { s.cmd.Wait(); close(s.exited) }()

	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := WaitHealthy(wctx, s.Endpoint, s.exited); err != nil {
		s.Stop()
		return nil, fmt.Errorf("%w\n--- minio output ---\n%s", err, s.out.String())
	}
	if err := CreateBucket(wctx, s.Endpoint, s.AccessKey, s.SecretKey, s.Bucket); err != nil {
		s.Stop()
		return nil, fmt.Errorf("%w\n--- minio output ---\n%s", err, s.out.String())
	}
	return s, nil
}

// Pid is the server process's id (the tiering bench reads its CPU time from /proc).
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Output is what the server printed so far (for failure logs).
func (s *Server) Output() string { return s.out.String() }

// Stop sends SIGTERM, waits up to 20 s for a clean exit, then kills. It returns the process's
// exit error, if any, from the clean path.
func (s *Server) Stop() error {
	select {
	case <-s.exited:
		return nil
	default:
	}
	s.cmd.Process.Signal(sigterm)
	select {
	case <-s.exited:
		if st := s.cmd.ProcessState; st != nil && !st.Success() {
			return fmt.Errorf("minio exited: %v", st)
		}
		return nil
	case <-time.After(20 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
		return errors.New("minio did not exit within 20s of SIGTERM; killed")
	}
}

// Client returns a minio-go client for the server.
func (s *Server) Client() (*minio.Client, error) {
	return NewClient(s.Endpoint, s.AccessKey, s.SecretKey)
}

// ObjectStoreURL is the --object-store value for `sediment serve` pointing at this server's bucket
// (credentials go in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, see Env).
func (s *Server) ObjectStoreURL(prefix string) string {
	u := "s3://" + s.Bucket
	if prefix != "" {
		u += "/" + strings.Trim(prefix, "/")
	}
	return u + "?endpoint=" + s.Endpoint + "&region=" + s.Region + "&path-style=true"
}

// Env is the standard AWS environment that S3 clients (sediment's aws-sdk-go-v2 chain) read.
func (s *Server) Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + s.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + s.SecretKey,
		"AWS_REGION=" + s.Region,
	}
}

// StartMinIO starts a private MinIO for one test (data in t.TempDir(), free loopback ports) and stops
// it at cleanup. Without a MinIO binary it installs the pinned one (see MinIOBinary); set
// SEDIMENT_SKIP_MINIO=1 to skip knowingly instead.
func StartMinIO(t testing.TB) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	if os.Getenv("SEDIMENT_SKIP_MINIO") == "1" {
		t.Skip("SEDIMENT_SKIP_MINIO=1: skipping a test that needs a real MinIO")
	}
	s, err := Start(ctx, Options{DataDir: t.TempDir(), Logf: t.Logf})
	if err != nil {
		t.Fatalf("starting MinIO: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stopping MinIO: %v", err)
		}
		if t.Failed() {
			t.Logf("--- minio output (%s) ---\n%s", s.Addr, s.Output())
		}
	})
	return s
}

// NewClient is a minio-go client for a loopback endpoint ("http://host:port").
func NewClient(endpoint, accessKey, secretKey string) (*minio.Client, error) {
	host := strings.TrimPrefix(strings.TrimPrefix(endpoint, "http://"), "https://")
	return minio.New(host, &minio.Options{
		Creds:  credentials.NewStaticV4(accessKey, secretKey, ""),
		Secure: strings.HasPrefix(endpoint, "https://"),
		Region: DefaultRegion,
	})
}

// WaitHealthy polls endpoint/minio/health/live until it answers 200, ctx ends, or exited closes
// (the process died; nil means "not watching a process").
func WaitHealthy(ctx context.Context, endpoint string, exited <-chan struct{}) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	var last error
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/minio/health/live", nil)
		resp, err := hc.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Errorf("health: HTTP %d", resp.StatusCode)
		} else {
			last = err
		}
		select {
		case <-exited:
			return fmt.Errorf("minio exited before becoming healthy (last: %v)", last)
		case <-ctx.Done():
			return fmt.Errorf("minio at %s not healthy: %v (last: %v)", endpoint, ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// CreateBucket creates bucket unless it exists (idempotent, so `minio.sh start` can be rerun).
func CreateBucket(ctx context.Context, endpoint, accessKey, secretKey, bucket string) error {
	cl, err := NewClient(endpoint, accessKey, secretKey)
	if err != nil {
		return err
	}
	if err := cl.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: DefaultRegion}); err != nil {
		exists, e2 := cl.BucketExists(ctx, bucket)
		if e2 == nil && exists {
			return nil
		}
		return fmt.Errorf("creating bucket %q at %s: %w", bucket, endpoint, err)
	}
	return nil
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 1<<20 { // keep the head; MinIO is quiet unless something is wrong
		return len(p), nil
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
