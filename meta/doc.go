// Package meta is Sediment's metadata layer: one hashicorp/raft group whose replicated state machine
// holds the cluster id, brokers, topics and partitions (replicas, leader, epochs, ISR), the remote
// segment manifests, committed consumer-group offsets and producer-id blocks; and the controller that
// runs on the Raft leader. hashicorp/raft stays inside this package (Config.Transport aside).
//
// Storage: github.com/hashicorp/raft-wal is the Raft log and stable store, raft.FileSnapshotStore keeps
// snapshots. raft-boltdb/v2 was the alternative; it does not build against the current go-metrics
// module, and raft-wal is the store HashiCorp built for this job (append-only segment files, one fsync
// per batch, no B-tree write amplification). raft-wal v0.4.0's Close does not close its bolt metadata
// file, so Open passes its own metadb.BoltMetaDB and closes it too.
//
// (The full design notes — goroutines, lock order, command encoding and versioning, controller rules —
// follow in the next commits.)
package meta
