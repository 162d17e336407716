//go:build !invariants

package segment

// checkInvariants is a no-op unless built with -tags invariants.
func (l *Log) checkInvariants() {}
