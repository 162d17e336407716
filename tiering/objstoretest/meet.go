package objstoretest

import (
	"context"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/sediment-io/sediment/tiering"
)

// MeetStore tells GETs that overlap from GETs one after another, without depending on timing:
// every Get waits until GETs of a second group are in flight (or Wait passes) and the store
// records the most groups in flight at once. Overlapping GETs meet at once; GETs one after another
// each wait out Wait and never count more than one group. Group names a GET's group (nil: every
// GET is a group of its own), so that a test can count, say, partitions read at once rather than
// GETs (a partition's own read-ahead overlaps its reads).
type MeetStore struct {
	tiering.Store
	Wait  time.Duration
	Group func(key string) string

	mu       sync.Mutex
	met      *sync.Cond
	inFlight map[string]int // GETs in flight per group
	seq      int            // names the groups of a nil Group
	most     int
}

// Get waits for a GET of another group (or Wait), then reads from the wrapped store.
func (s *MeetStore) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	s.mu.Lock()
	if s.met == nil {
		s.met = sync.NewCond(&s.mu)
		s.inFlight = map[string]int{}
	}
	var group string
	if s.Group != nil {
		group = s.Group(key)
	} else {
		s.seq++
		group = strconv.Itoa(s.seq)
	}
	s.inFlight[group]++
	s.most = max(s.most, len(s.inFlight))
	s.met.Broadcast()
	timer := time.AfterFunc(s.Wait, func() { s.mu.Lock(); s.met.Broadcast(); s.mu.Unlock() })
	for deadline := time.Now().Add(s.Wait); len(s.inFlight) < 2 && time.Now().Before(deadline); {
		s.met.Wait()
	}
	timer.Stop()
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if s.inFlight[group]--; s.inFlight[group] == 0 {
			delete(s.inFlight, group)
		}
		s.mu.Unlock()
	}()
	return s.Store.Get(ctx, key, off, n)
}

// MostInFlight is the most groups that had GETs in flight at once.
func (s *MeetStore) MostInFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.most
}
