package broker

import "sync"

// TEMPORARY until broker-core adds `groups *groupCoordinator` to Broker (requested in
// notes/requests.md): the coordinator is created on first use. Removed once the field exists.
var (
	tmpGroupCoordsMu sync.Mutex
	tmpGroupCoords   = map[*Broker]*groupCoordinator{}
)

func (b *Broker) groupCoord() *groupCoordinator {
	tmpGroupCoordsMu.Lock()
	defer tmpGroupCoordsMu.Unlock()
	gc := tmpGroupCoords[b]
	if gc == nil {
		gc = newGroupCoordinator(b)
		tmpGroupCoords[b] = gc
		go func() { // without the Close hook: stop the coordinator's timers and forget it at shutdown
			<-b.ctx.Done()
			tmpGroupCoordsMu.Lock()
			delete(tmpGroupCoords, b)
			tmpGroupCoordsMu.Unlock()
			gc.close()
		}()
	}
	return gc
}
