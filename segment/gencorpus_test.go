//go:build gencorpus

package segment

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// TestWriteFuzzCorpus writes the seed corpora as files (only when asked).
func TestWriteFuzzCorpus(t *testing.T) {
	lit := func(v any) string {
		switch v := v.(type) {
		case []byte:
			return "[]byte(" + strconv.Quote(string(v)) + ")"
		case bool:
			return fmt.Sprintf("bool(%v)", v)
		case int8:
			return fmt.Sprintf("int8(%d)", v)
		}
		panic("type")
	}
	put := func(name string, i int, vals ...any) {
		dir := filepath.Join("testdata", "fuzz", name)
		os.MkdirAll(dir, 0o755)
		s := "go test fuzz v1\n"
		for _, v := range vals {
			s += lit(v) + "\n"
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i, s := range batchSeeds() {
		put("FuzzSplitBatches", i, s)
		put("FuzzRecoveryScan", i, s, []byte{}, []byte{}, false)
	}
	good := seedLog()
	put("FuzzRecoveryScan", 20, good, []byte{0, 0, 0, 2, 0, 0, 0, 29}, []byte{0, 0, 0, 0, 0, 0, 3, 234, 0, 0, 0, 2}, true)
	put("FuzzRecoveryScan", 21, good, []byte{0, 0, 0, 9, 0, 0, 0, 1}, []byte{1, 2, 3}, true)
	torn := append(append([]byte(nil), good...), good[:30]...)
	put("FuzzRecoveryScan", 22, torn, []byte{}, []byte{}, false)
	plain := testBatch(5, 30, 1)
	for i, c := range []Codec{CodecGzip, CodecSnappy, CodecLZ4, CodecZstd} {
		put("FuzzDecompress", i, int8(c), compressWith(t, c, plain))
	}
	put("FuzzDecompress", 9, int8(CodecSnappy), xerial(plain, 50))
	put("FuzzClosedSegmentIndex", 0, []byte{}, []byte{}, true)
	put("FuzzClosedSegmentIndex", 1, []byte{0, 0, 0, 2, 0, 0, 0, 29}, []byte{0, 0, 0, 0, 0, 0, 3, 234, 0, 0, 0, 2}, true)
	put("FuzzClosedSegmentIndex", 2, []byte{0, 0, 0, 1, 0, 0, 0, 29, 0, 0, 0, 3, 0, 0, 0, 0x7f}, []byte{1, 2, 3}, false)
}
