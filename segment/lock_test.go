package segment

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sediment-io/sediment/segment/vfs"
)

func checkLockedErr(t *testing.T, err error, dir string) {
	t.Helper()
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open of %s: %v, want ErrLocked", dir, err)
	}
	if !strings.Contains(err.Error(), dir) {
		t.Fatalf("error %q does not name the directory %s", err, dir)
	}
}

func TestSecondOpenOfDirectoryFails(t *testing.T) {
	for _, name := range []string{"os", "mem"} {
		t.Run(name, func(t *testing.T) {
			cfg := DefaultConfig()
			dir := filepath.Join(t.TempDir(), "p-0")
			var mem *vfs.MemFS
			if name == "mem" {
				mem = vfs.NewMemFS()
				cfg.FS, dir = mem, "/p-0"
			}
			l := mustOpen(t, dir, cfg)
			mustAppend(t, l, testBatch(2, 5, 1), 0)
			_, err := Open(dir, cfg)
			checkLockedErr(t, err, dir)
			// The refused Open changed nothing.
			if got := l.EndOffset(); got != 2 {
				t.Fatalf("EndOffset %d after the refused Open", got)
			}
			mustAppend(t, l, testBatch(1, 5, 1), 0)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l = mustOpen(t, dir, cfg) // released by Close
			if got := l.EndOffset(); got != 3 {
				t.Fatalf("EndOffset %d after reopen, want 3", got)
			}
			if mem != nil {
				mem.Crash() // the process died: its lock goes with it
				l = mustOpen(t, dir, cfg)
			}
			if err := l.Delete(); err != nil {
				t.Fatal(err)
			}
			l = mustOpen(t, dir, cfg) // released by Delete
			if got := l.EndOffset(); got != 0 {
				t.Fatalf("EndOffset %d after Delete and reopen", got)
			}
			l.Close()
		})
	}
}

// TestLockHelperProcess is not a test: TestDirectoryLockedByAnotherProcess runs
// the test binary with SEDIMENT_LOCK_HELPER_DIR set; it opens the log there,
// says "open" and holds it until its stdin closes (or it is killed).
func TestLockHelperProcess(t *testing.T) {
	dir := os.Getenv("SEDIMENT_LOCK_HELPER_DIR")
	if dir == "" {
		return
	}
	l, err := Open(dir, DefaultConfig())
	if err != nil {
		os.Stdout.WriteString("error " + err.Error() + "\n")
		os.Exit(1)
	}
	os.Stdout.WriteString("open\n")
	bufio.NewReader(os.Stdin).ReadString('\n')
	l.Close()
	os.Exit(0)
}

func TestDirectoryLockedByAnotherProcess(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "p-0")
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHelperProcess$")
	cmd.Env = append(os.Environ(), "SEDIMENT_LOCK_HELPER_DIR="+dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if line != "open\n" {
		t.Fatalf("helper: %q, %v", line, err)
	}
	_, err = Open(dir, DefaultConfig())
	checkLockedErr(t, err, dir)
	// A holder that dies without Close (kill -9) releases the lock: the kernel drops it.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	l := mustOpen(t, dir, DefaultConfig())
	l.Close()
}
