package segment

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sediment-io/sediment/segment/vfs"
)

var rewrite = flag.Bool("rewrite", false, "rewrite testdata/script expectations")

// TestScripts runs testdata/script/*.txt: each "> command" line is followed by
// its expected output. `go test -run TestScripts -rewrite` regenerates the
// outputs (review the diff). Commands:
//
//	open [segment.bytes=N] [index.interval.bytes=N] [segment.ms=D] [flush=always|interval|os]
//	append [count=C] [records=N] [size=S] [ts=T] [epoch=E]   C batches of N records
//	read OFFSET [max=N] [hw=N] [min]      batches returned, as base..last
//	roll | close | crash [tear=N] | truncate OFFSET | start OFFSET | assign EPOCH OFFSET
//	segments | epochs | offsets | ts T | epoch-end EPOCH
func TestScripts(t *testing.T) {
	files, _ := filepath.Glob("testdata/script/*.txt")
	if len(files) == 0 {
		t.Fatal("no scripts")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) { runScript(t, file) })
	}
}

type scriptState struct {
	t    *testing.T
	fsys *vfs.MemFS
	cfg  Config
	l    *Log
}

func runScript(t *testing.T, file string) {
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	st := &scriptState{t: t, fsys: vfs.NewMemFS()}
	var out strings.Builder
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	var cmd string
	var want []string
	flush := func() {
		if cmd == "" {
			return
		}
		got := st.run(cmd)
		out.WriteString("> " + cmd + "\n" + got + "\n")
		if w := strings.Join(want, "\n"); !*rewrite && strings.TrimSpace(w) != strings.TrimSpace(got) {
			t.Errorf("%s: > %s\n got:\n%s\nwant:\n%s", file, cmd, got, w)
		}
		cmd, want = "", nil
	}
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "> "):
			flush()
			cmd = strings.TrimPrefix(line, "> ")
		case cmd == "":
			out.WriteString(line + "\n") // comments and blank lines between commands
		case line != "":
			want = append(want, line)
		}
	}
	flush()
	if *rewrite {
		if err := os.WriteFile(file, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if st.l != nil {
		st.l.Close()
	}
}

func (st *scriptState) run(cmd string) string {
	f := strings.Fields(cmd)
	args := map[string]string{}
	var pos []string
	for _, a := range f[1:] {
		if k, v, ok := strings.Cut(a, "="); ok {
			args[k] = v
		} else {
			pos = append(pos, a)
		}
	}
	num := func(k string, def int64) int64 {
		if v, ok := args[k]; ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				st.t.Fatalf("%s: bad %s", cmd, k)
			}
			return n
		}
		return def
	}
	arg := func(i int) int64 {
		if i >= len(pos) {
			st.t.Fatalf("%s: missing argument", cmd)
		}
		n, err := strconv.ParseInt(pos[i], 10, 64)
		if err != nil {
			st.t.Fatalf("%s: bad argument", cmd)
		}
		return n
	}
	errStr := func(err error) string { return "error: " + strings.ReplaceAll(err.Error(), "/p/", "") }
	switch f[0] {
	case "open":
		st.cfg = testConfig(st.fsys)
		st.cfg.Now = func() time.Time { return fixedNow }
		st.cfg.SegmentBytes = num("segment.bytes", st.cfg.SegmentBytes)
		st.cfg.IndexIntervalBytes = int(num("index.interval.bytes", int64(st.cfg.IndexIntervalBytes)))
		if v, ok := args["segment.ms"]; ok {
			d, _ := time.ParseDuration(v)
			st.cfg.SegmentMs = d
		}
		if v, ok := args["flush"]; ok {
			st.cfg.FlushPolicy, _ = ParseFlushPolicy(v)
		}
		l, err := Open("/p", st.cfg)
		if err != nil {
			return errStr(err)
		}
		st.l = l
		return fmt.Sprintf("start=%d end=%d", l.StartOffset(), l.EndOffset())
	case "append":
		var lines []string
		for i := int64(0); i < num("count", 1); i++ {
			b := testBatch(int(num("records", 1)), int(num("size", 10)), num("ts", 0)+i*10)
			r, err := st.l.Append(b, int32(num("epoch", 0)))
			if err != nil {
				lines = append(lines, errStr(err))
				break
			}
			lines = append(lines, fmt.Sprintf("%d..%d", r.FirstOffset, r.LastOffset))
		}
		return strings.Join(lines, " ")
	case "read":
		r, err := st.l.Read(arg(0), ReadOptions{MaxBytes: int(num("max", 1<<20)), MaxOffset: num("hw", 0), MinOneBatch: len(pos) > 1 && pos[1] == "min"})
		if err != nil {
			return errStr(err)
		}
		hs, err := SplitBatches(r.Data)
		if err != nil {
			return errStr(err)
		}
		var parts []string
		for _, h := range hs {
			parts = append(parts, fmt.Sprintf("%d..%d", h.BaseOffset(), h.LastOffset()))
		}
		return fmt.Sprintf("[%s] next=%d bytes=%d", strings.Join(parts, " "), r.NextOffset, len(r.Data))
	case "roll":
		return okOr(st.l.Roll(), errStr)
	case "truncate":
		return okOr(st.l.TruncateTo(arg(0)), errStr) + fmt.Sprintf(" end=%d", st.l.EndOffset())
	case "start":
		return okOr(st.l.SetStartOffset(arg(0)), errStr) + fmt.Sprintf(" start=%d", st.l.StartOffset())
	case "assign":
		return okOr(st.l.AssignEpoch(int32(arg(0)), arg(1)), errStr)
	case "close":
		err := st.l.Close()
		st.l = nil
		return okOr(err, errStr)
	case "crash":
		st.fsys.CrashKeep(vfs.TearLast(int(num("tear", 1<<30))))
		st.l = nil
		return "ok"
	case "segments":
		var lines []string
		for _, s := range st.l.Segments() {
			state := "active"
			if s.Closed {
				state = "closed"
			}
			lines = append(lines, fmt.Sprintf("%s [%d,%d) %dB maxts=%d %s", filepath.Base(s.Path), s.BaseOffset, s.NextOffset, s.Size, s.MaxTimestamp, state))
		}
		return strings.Join(lines, "\n")
	case "epochs":
		return fmt.Sprint(st.l.Epochs())
	case "epoch-end":
		e, off, ok := st.l.EndOffsetForEpoch(int32(arg(0)))
		return fmt.Sprintf("epoch=%d end=%d ok=%v", e, off, ok)
	case "offsets":
		mo, mts := st.l.MaxTimestamp()
		return fmt.Sprintf("start=%d end=%d maxts=%d@%d", st.l.StartOffset(), st.l.EndOffset(), mts, mo)
	case "ts":
		off, ts, ok, err := st.l.OffsetForTimestamp(arg(0))
		if err != nil {
			return errStr(err)
		}
		return fmt.Sprintf("offset=%d ts=%d ok=%v", off, ts, ok)
	}
	st.t.Fatalf("unknown command %q", cmd)
	return ""
}

func okOr(err error, f func(error) string) string {
	if err != nil {
		return f(err)
	}
	return "ok"
}
