// Package testport hands tests (and `sediment bench`) loopback TCP ports to give servers that must
// know their addresses before they start (Raft voter lists, `sediment serve --listen` in a child
// process, a broker restarted on the same Raft address).
//
// The usual trick — listen on port 0, read the port, close — returns a port from the kernel's
// ephemeral range, which every outgoing connection on the machine draws from too. Under `go test
// ./...` other packages' clients open thousands of connections meanwhile, and one of them can take
// the port before the server binds it; the kernel may also hand the same port to two such calls
// in a row. Both broke the 3-broker compatibility cell in CI ("bind: address already in use":
// one node's Raft port was another's Kafka port). So Free picks ports below the ephemeral range
// (no outgoing connection ever gets one), checks each by binding it, and never returns the same
// port twice in one process.
package testport
