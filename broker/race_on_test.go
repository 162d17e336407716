//go:build race

package broker

// raceEnabled: built with -race, whose instrumentation allocates on its own and whose sync.Pool
// drops items at random, so allocation counts are not what the code does.
const raceEnabled = true
