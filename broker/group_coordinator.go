package broker

// groupCoordinator is this broker's consumer-group coordinator: the in-memory state of the groups it
// coordinates (classic and KIP-848), and the commit batcher that turns offset commits into Raft entries.
// See group_doc.go for the design.
type groupCoordinator struct {
	b *Broker
}

// newGroupCoordinator is called by Start once meta is ready and the replica manager runs.
func newGroupCoordinator(b *Broker) *groupCoordinator {
	return &groupCoordinator{b: b}
}

// close stops the coordinator's timers and the commit batcher; called by Close after connections drained,
// before meta closes.
func (gc *groupCoordinator) close() {}
