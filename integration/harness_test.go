// Package integration drives the sediment binary exactly as a user would: a real process on free
// loopback ports, real clients (franz-go kgo/kadm, kcat), signals.
package integration

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sediment-io/sediment/internal/testport"
)

// sedimentBin is the binary built once in TestMain.
var sedimentBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sediment-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sedimentBin = filepath.Join(dir, "sediment")
	build := exec.Command("go", "build", "-o", sedimentBin, "github.com/sediment-io/sediment/cmd/sediment")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building sediment:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	stopSharedMinIO()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freePort is a loopback port no other freePort call in this process returned, below the kernel's
// ephemeral range (testport): no client connection can take it before the broker binds it.
// Another test process could still bind it first; start() retries once.
func freePort(t testing.TB) int {
	t.Helper()
	return testport.Port(t)
}

// syncBuffer collects a process's output for assertions and failure logs.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// node is one running sediment process.
type node struct {
	t        testing.TB
	cmd      *exec.Cmd
	dataDir  string
	kafka    string // host:port
	http     string
	raft     string
	out      *syncBuffer
	exited   chan struct{}
	exitErr  error
	extraArg []string
	env      []string // added to the inherited environment (e.g. an object store's AWS credentials)
}

// startNode runs `sediment serve` on free ports with a fresh data dir (or dataDir if given) and
// waits until /readyz answers 200.
func startNode(t testing.TB, dataDir string, extra ...string) *node {
	t.Helper()
	return startNodeEnv(t, dataDir, nil, extra...)
}

// startNodeEnv is startNode with env added to the process's inherited environment.
func startNodeEnv(t testing.TB, dataDir string, env []string, extra ...string) *node {
	t.Helper()
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	n := &node{t: t, dataDir: dataDir, extraArg: extra, env: env}
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		if err = n.start(); err == nil {
			return n
		}
	}
	t.Fatalf("sediment did not become ready: %v\n--- output ---\n%s", err, n.out.String())
	return nil
}

func (n *node) start() error {
	n.kafka = fmt.Sprintf("127.0.0.1:%d", freePort(n.t))
	n.raft = fmt.Sprintf("127.0.0.1:%d", freePort(n.t))
	n.http = fmt.Sprintf("127.0.0.1:%d", freePort(n.t))
	args := append([]string{"serve",
		"--data-dir", n.dataDir,
		"--listen", n.kafka,
		"--raft-listen", n.raft,
		"--http-listen", n.http,
		"--log-level", "debug",
	}, n.extraArg...)
	n.out = &syncBuffer{}
	n.cmd = exec.Command(sedimentBin, args...)
	if n.env != nil {
		n.cmd.Env = append(os.Environ(), n.env...)
	}
	n.cmd.Stdout, n.cmd.Stderr = n.out, n.out
	dieWithTest(n.cmd)
	if err := n.cmd.Start(); err != nil {
		return err
	}
	n.exited = make(chan struct{})
	go func() { n.exitErr = n.cmd.Wait(); close(n.exited) }()
	n.t.Cleanup(func() {
		select {
		case <-n.exited:
		default:
			n.cmd.Process.Kill()
			<-n.exited
		}
		if n.t.Failed() {
			n.t.Logf("--- sediment output (%s) ---\n%s", n.kafka, n.out.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-n.exited:
			return fmt.Errorf("exited early: %v", n.exitErr)
		default:
		}
		resp, err := http.Get("http://" + n.http + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	n.cmd.Process.Kill()
	<-n.exited
	return fmt.Errorf("not ready within 60s")
}

// stop sends sig and waits for the process to exit; it returns the exit code.
func (n *node) stop(sig syscall.Signal) int {
	n.t.Helper()
	n.cmd.Process.Signal(sig)
	select {
	case <-n.exited:
	case <-time.After(60 * time.Second):
		n.cmd.Process.Kill()
		<-n.exited
		n.t.Fatalf("sediment did not exit within 60s of %v", sig)
	}
	return n.cmd.ProcessState.ExitCode()
}

func (n *node) client(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(n.kafka)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func (n *node) admin(t testing.TB) *kadm.Client { return kadm.NewClient(n.client(t)) }

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// runSediment runs the binary to completion (for flag errors, --help) and returns output and exit code.
func runSediment(t testing.TB, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(sedimentBin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = t.TempDir() // a mistaken start must not litter the package dir with ./data
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("sediment %v did not exit; output:\n%s", args, out.String())
	}
	return out.String(), cmd.ProcessState.ExitCode()
}
