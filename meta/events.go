package meta

import "sync"

// EventKind says what changed.
type EventKind uint8

const (
	TopicCreated          EventKind = iota + 1 // Topic, TopicID set; Partition -1
	TopicDeleted                               // Topic, TopicID set; Partition -1
	PartitionChanged                           // leader, ISR, epochs or replicas of one partition (or a new partition)
	TopicConfigChanged                         // Topic, TopicID set; Partition -1
	BrokerChanged                              // BrokerID set: registered, fenced or unfenced
	RemoteManifestChanged                      // TopicID, Partition: remote segments added or removed
	ControllerChanged                          // BrokerID = new controller node id (-1 none)
	StateRestored                              // the whole state was replaced from a snapshot: re-read everything
	ClusterConfigChanged                       // cluster-wide dynamic broker defaults changed; Partition -1
)

func (k EventKind) String() string {
	switch k {
	case TopicCreated:
		return "TopicCreated"
	case TopicDeleted:
		return "TopicDeleted"
	case PartitionChanged:
		return "PartitionChanged"
	case TopicConfigChanged:
		return "TopicConfigChanged"
	case BrokerChanged:
		return "BrokerChanged"
	case RemoteManifestChanged:
		return "RemoteManifestChanged"
	case ControllerChanged:
		return "ControllerChanged"
	case StateRestored:
		return "StateRestored"
	case ClusterConfigChanged:
		return "ClusterConfigChanged"
	}
	return "EventKind(?)"
}

// Event tells a subscriber that something changed; the subscriber reads the new values from State().
// By the time an event is received, State() already reflects it.
type Event struct {
	Kind      EventKind
	Topic     string
	TopicID   TopicID
	Partition int32 // -1 = whole topic
	BrokerID  int32
}

// subscriber holds undelivered events, coalescing duplicates: a slow reader gets each distinct event
// once, never an unbounded backlog of repeats, and the apply path never blocks on it.
type subscriber struct {
	mu      sync.Mutex
	pending []Event
	queued  map[Event]bool
	wake    chan struct{} // cap 1
	out     chan Event
	done    chan struct{}
	once    sync.Once
}

func (s *subscriber) stop() { s.once.Do(func() { close(s.done) }) }

// maxPending bounds one subscriber's distinct undelivered events; past it they collapse to one
// StateRestored ("re-read everything"), which is always correct.
const maxPending = 65536

func (s *subscriber) push(evs []Event) {
	s.mu.Lock()
	for _, e := range evs {
		if s.queued[e] {
			continue
		}
		if len(s.pending) >= maxPending {
			clear(s.queued)
			s.pending = s.pending[:0]
			e = Event{Kind: StateRestored, Partition: -1}
		}
		s.queued[e] = true
		s.pending = append(s.pending, e)
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run delivers pending events to out until done is closed.
func (s *subscriber) run() {
	defer close(s.out)
	for {
		s.mu.Lock()
		var e Event
		have := len(s.pending) > 0
		if have {
			e = s.pending[0]
		}
		s.mu.Unlock()
		if !have {
			select {
			case <-s.wake:
				continue
			case <-s.done:
				return
			}
		}
		select {
		case s.out <- e:
			s.mu.Lock()
			s.pending = s.pending[1:]
			delete(s.queued, e)
			s.mu.Unlock()
		case <-s.done:
			return
		}
	}
}

type hub struct {
	mu   sync.Mutex
	subs map[*subscriber]struct{}
}

func (h *hub) subscribe() (<-chan Event, func()) {
	s := &subscriber{queued: map[Event]bool{}, wake: make(chan struct{}, 1), out: make(chan Event, 64), done: make(chan struct{})}
	h.mu.Lock()
	if h.subs == nil {
		h.subs = map[*subscriber]struct{}{}
	}
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	go s.run()
	return s.out, func() {
		h.mu.Lock()
		delete(h.subs, s)
		h.mu.Unlock()
		s.stop()
	}
}

func (h *hub) publish(evs []Event) {
	if len(evs) == 0 {
		return
	}
	h.mu.Lock()
	for s := range h.subs {
		s.push(evs)
	}
	h.mu.Unlock()
}

func (h *hub) closeAll() {
	h.mu.Lock()
	for s := range h.subs {
		s.stop()
		delete(h.subs, s)
	}
	h.mu.Unlock()
}
