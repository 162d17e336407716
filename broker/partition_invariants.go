package broker

import (
	"fmt"
	"testing"
)

// invariants turns on cheap self-checks of partition state in test binaries (and never in the
// release binary): a violated one panics at the point of damage instead of surfacing later as a
// wrong answer. Checked: the high watermark never passes the leader's durable log end offset nor
// the log end offset; appended offsets continue the log; the HW never goes back.
var invariants = testing.Testing()

func (p *Partition) checkHWInvariantLocked(newHW int64) {
	if !invariants {
		return
	}
	if old := p.hw.Load(); newHW < old {
		panic(fmt.Sprintf("invariant: %s high watermark going back from %d to %d", p, old, newHW))
	}
	if newHW > p.leo {
		panic(fmt.Sprintf("invariant: %s high watermark %d above the durable log end %d", p, newHW, p.leo))
	}
	if end := p.log.EndOffset(); newHW > end {
		panic(fmt.Sprintf("invariant: %s high watermark %d above the log end offset %d", p, newHW, end))
	}
}

func (p *Partition) checkAppendInvariant(prevEnd, first, last int64, records int32) {
	if !invariants {
		return
	}
	if first != prevEnd || last-first+1 != int64(records) {
		panic(fmt.Sprintf("invariant: %s append of %d records got offsets %d..%d, log end was %d", p, records, first, last, prevEnd))
	}
}
