package broker

import "sync"

// TEMPORARY until broker-core adds `groups *groupCoordinator` to Broker (requested in
// notes/requests.md): the coordinator is created on first use. Removed once the field exists.
var tmpGroupCoords sync.Map // *Broker → *groupCoordinator

func (b *Broker) groupCoord() *groupCoordinator {
	if v, ok := tmpGroupCoords.Load(b); ok {
		return v.(*groupCoordinator)
	}
	v, _ := tmpGroupCoords.LoadOrStore(b, newGroupCoordinator(b))
	return v.(*groupCoordinator)
}
