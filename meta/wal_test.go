package meta

import (
	"testing"

	"github.com/hashicorp/raft"
)

// Raft clears a log suffix when a new leader's log conflicts with a follower's (after a leader is
// killed, the usual case). The store must reopen after that: raft-wal v0.4.0 marked the tail
// segment sealed without writing its index block, so a node restarted after a suffix truncation
// panicked with "sealed segment has no index block" (hashicorp/raft-wal#31; v0.4.1 in third_party).
func TestLogStoreReopensAfterSuffixTruncation(t *testing.T) {
	cfg := fastConfig(1, t.TempDir())
	st, err := openStores(cfg, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	var logs []*raft.Log
	for i := uint64(1); i <= 10; i++ {
		logs = append(logs, &raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: []byte{byte(i)}})
	}
	if err := st.wal.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	if err := st.wal.DeleteRange(9, 10); err != nil { // clearing log suffix: from=9 to=10
		t.Fatal(err)
	}
	if err := st.wal.StoreLogs([]*raft.Log{{Index: 9, Term: 2, Type: raft.LogCommand, Data: []byte("new")}}); err != nil {
		t.Fatal(err)
	}
	if err := st.close(); err != nil {
		t.Fatal(err)
	}
	st, err = openStores(cfg, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	for i := uint64(1); i <= 9; i++ {
		var l raft.Log
		if err := st.wal.GetLog(i, &l); err != nil {
			t.Fatalf("entry %d after reopening: %v", i, err)
		}
		if i == 9 && (l.Term != 2 || string(l.Data) != "new") {
			t.Fatalf("entry 9 after reopening: term %d data %q", l.Term, l.Data)
		}
	}
	if last, _ := st.wal.LastIndex(); last != 9 {
		t.Fatalf("last index %d, want 9", last)
	}
}
