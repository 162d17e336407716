package broker

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"sync"
	"testing"
)

// capturedLog collects a broker's slog output (JSON, Info and above, as `sediment serve` logs by
// default) so that tests can assert which notable-event lines were written.
type capturedLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *capturedLog) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Write(p)
}

// captureLogs points cfg's logger at a new capturedLog.
func captureLogs(cfg *Config) *capturedLog {
	c := &capturedLog{}
	cfg.Logger = slog.New(slog.NewJSONHandler(c, &slog.HandlerOptions{Level: slog.LevelInfo}))
	return c
}

// records returns every line written so far, decoded.
func (c *capturedLog) records(t testing.TB) []map[string]any {
	t.Helper()
	c.mu.Lock()
	data := append([]byte(nil), c.buf.Bytes()...)
	c.mu.Unlock()
	var out []map[string]any
	for _, line := range bytes.Split(data, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("log line is not JSON: %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// withMsg returns the lines whose message is msg and whose attributes include every key/value of
// attrs (values compared as their JSON form: strings, float64 numbers).
func (c *capturedLog) withMsg(t testing.TB, msg string, attrs map[string]any) []map[string]any {
	t.Helper()
	var out []map[string]any
next:
	for _, m := range c.records(t) {
		if m["msg"] != msg {
			continue
		}
		for k, v := range attrs {
			if m[k] != v {
				continue next
			}
		}
		out = append(out, m)
	}
	return out
}
