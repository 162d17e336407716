package broker

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestCompatMDMatchesRegistry keeps COMPAT.md honest: every registered API has a row with exactly
// its served versions, and every row names a registered API.
func TestCompatMDMatchesRegistry(t *testing.T) {
	raw, err := os.ReadFile("COMPAT.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile(`(?m)^\|\s*(\d+)\s*\|\s*(\w+)\s*\|\s*(\d+)(?:–(\d+))?\s*\|`)
	rows := map[int16][2]int16{}
	for _, m := range row.FindAllStringSubmatch(string(raw), -1) {
		key, _ := strconv.Atoi(m[1])
		lo, _ := strconv.Atoi(m[3])
		hi := lo
		if m[4] != "" {
			hi, _ = strconv.Atoi(m[4])
		}
		if name := kmsg.NameForKey(int16(key)); !strings.EqualFold(name, m[2]) {
			t.Errorf("COMPAT.md row %d is named %s, kmsg calls it %s", key, m[2], name)
		}
		rows[int16(key)] = [2]int16{int16(lo), int16(hi)}
	}
	for _, h := range servedAPIs() {
		got, ok := rows[int16(h.key)]
		if !ok {
			t.Errorf("COMPAT.md has no row for %s (%d), served %d–%d", h.key.Name(), h.key, h.min, h.max)
			continue
		}
		if got != [2]int16{h.min, h.max} {
			t.Errorf("COMPAT.md says %s %d–%d, the registry serves %d–%d", h.key.Name(), got[0], got[1], h.min, h.max)
		}
		delete(rows, int16(h.key))
	}
	for k := range rows {
		t.Errorf("COMPAT.md lists %s (%d), which is not registered", kmsg.NameForKey(k), k)
	}
}
