package broker

import (
	"context"

	"github.com/sediment-io/sediment/tiering"
)

// tierManager is the broker's side of tiered storage (issue 7): the object store named by
// Config.ObjectStore (metered on /metrics) and the remote-log reader shared by every partition.
// One per broker, created before the replica manager so that partitions can reach it, closed
// after it.
//
// The per-partition work (archivers for led partitions, local retention gated on upload, remote
// retention, reads below the local log start) hangs off this type as it is built.
type tierManager struct {
	b      *Broker
	store  *tiering.MeteredStore
	remote *tiering.RemoteLog

	ctx    context.Context // cancelled by close: archiver loops and remote reads stop
	cancel context.CancelFunc
}

// remoteFooterCache bounds how many segment-object footers (offset and time indexes) the broker
// keeps in memory for reads from the bucket.
const remoteFooterCache = 1024

func newTierManager(b *Broker, store tiering.Store) *tierManager {
	tm := &tierManager{b: b, store: tiering.NewMeteredStore(store)}
	tm.remote = tiering.NewRemoteLog(tm.store, remoteFooterCache)
	tm.ctx, tm.cancel = context.WithCancel(context.Background())
	b.metrics.addCollector(tm.store.WriteMetrics)
	return tm
}

// close stops tiering work and closes the object store.
func (tm *tierManager) close() error {
	tm.cancel()
	return tm.store.Close()
}
