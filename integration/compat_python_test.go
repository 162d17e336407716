package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Debian's python3-* client packages install for the system interpreter, not whatever python3 is
// first on PATH (pyenv and the like); SEDIMENT_PYTHON3 overrides.
func systemPython() string {
	if p := os.Getenv("SEDIMENT_PYTHON3"); p != "" {
		return p
	}
	return "/usr/bin/python3"
}

// requirePythonModules fails (or skips with the opt-out) unless the system python imports mods.
func requirePythonModules(t *testing.T, optOut, install string, mods ...string) string {
	t.Helper()
	return requireTool(t, optOut, install, func() (string, error) {
		py := systemPython()
		out, err := exec.Command(py, "-c", "import "+strings.Join(mods, ", ")).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("%s cannot import %s: %v: %s", py, strings.Join(mods, ", "), err, strings.TrimSpace(string(out)))
		}
		return py, nil
	})
}

func pythonDriver(t *testing.T, py, script string, n *node, codecs ...string) *compatResult {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("clients", "python"))
	if err != nil {
		t.Fatal(err)
	}
	return runDriver(t, 150*time.Second, py, []string{"PYTHONPATH=" + dir, "PYTHONDONTWRITEBYTECODE=1"},
		filepath.Join(dir, script), "--bootstrap", n.kafka, "--codecs", strings.Join(codecs, ","),
		"--n", fmt.Sprint(compatN), "--rf", fmt.Sprint(compatRF), "--timeout", "30")
}

// pythonGroupDriver runs a driver's consumer-group scenario (see compat_group_util_test.go).
func pythonGroupDriver(t *testing.T, py, script string, n *node, group string) *groupResult {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("clients", "python"))
	if err != nil {
		t.Fatal(err)
	}
	var res groupResult
	runDriverJSON(t, 150*time.Second, py, []string{"PYTHONPATH=" + dir, "PYTHONDONTWRITEBYTECODE=1"}, &res,
		filepath.Join(dir, script), "--mode", "group", "--bootstrap", n.kafka, "--group", group, "--topic", groupTopic,
		"--first", fmt.Sprint(groupFirst), "--rest", fmt.Sprint(groupN-groupFirst), "--timeout", "30")
	return &res
}

// pythonTimeDriver runs a driver's timestamp-lookup scenario (see compat_time_util_test.go).
func pythonTimeDriver(t *testing.T, py, script string, n *node, base int64) {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("clients", "python"))
	if err != nil {
		t.Fatal(err)
	}
	var res timeResult
	runDriverJSON(t, 60*time.Second, py, []string{"PYTHONPATH=" + dir, "PYTHONDONTWRITEBYTECODE=1"}, &res,
		append([]string{filepath.Join(dir, script)}, timeArgs(n, base)...)...)
	checkTimes(t, base, res.byTimestamp(t), res.Errors)
}

// TestCompatKafkaPython: kafka-python from Debian — KafkaAdminClient, KafkaProducer with every codec
// (the codec libraries are separate Debian packages), KafkaConsumer with assign().
func TestCompatKafkaPython(t *testing.T) {
	py := requirePythonModules(t, "SEDIMENT_SKIP_KAFKA_PYTHON",
		"apt-get install python3-kafka python3-snappy python3-lz4 python3-zstandard",
		"kafka", "snappy", "lz4.frame", "zstandard")
	n := startNode(t, "", groupNodeArgs...)
	res := pythonDriver(t, py, "kafka_python_driver.py", n, allCodecs...)
	logVersion(t, "kafka-python", res.Version)
	checkCompat(t, n, res, allCodecs, "KafkaAdminClient.create_topics")

	seedGroupTopic(t, n)
	checkGroup(t, n, "compat-kafka-python", pythonGroupDriver(t, py, "kafka_python_driver.py", n, "compat-kafka-python"))

	clusterCell(t, func(t *testing.T, n *node) {
		res := pythonDriver(t, py, "kafka_python_driver.py", n, "none")
		checkCompat(t, n, res, []string{"none"}, "KafkaAdminClient.create_topics")
		checkSpread(t, n, compatTopic("none"))
		seedGroupTopic(t, n)
		checkGroup(t, n, "compat-kafka-python", pythonGroupDriver(t, py, "kafka_python_driver.py", n, "compat-kafka-python"))
	})

	replayCell(t, pythonReplayClient(t, "kafka-python", py, "kafka_python_driver.py"))

	pythonTimeDriver(t, py, "kafka_python_driver.py", n, seedTimeTopic(t, n))
}
