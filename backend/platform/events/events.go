// Package events is the control plane's in-process event bus: services
// publish what changed (an instance's state, a host going up or down) and
// the dashboard's live hub fans it out to the browsers that may see it.
//
// Publishing never blocks: each subscriber has a bounded queue, and a
// subscriber whose queue is full loses the event and is marked, so that it
// can resynchronise from the source of truth instead of slowing everyone.
package events

import (
	"sync"
	"sync/atomic"
)

// Kinds of events.
const (
	// KindInstance: an instance was created, changed state or was deleted.
	KindInstance = "instance"
	// KindHost: a compute host went up or down.
	KindHost = "host"
)

// Event is one change. It names what changed, not its new content: a
// subscriber reads the current state with its own rights.
type Event struct {
	Kind string
	ID   string
	// ProjectID owns the resource ("" for cloud-wide ones such as hosts).
	ProjectID string
	// Deleted reports that the resource is gone.
	Deleted bool
}

// Bus delivers published events to every subscriber. The zero value is
// not usable; call New.
type Bus struct {
	mu   sync.RWMutex
	subs map[*Subscription]struct{}
}

// New returns an empty bus.
func New() *Bus { return &Bus{subs: map[*Subscription]struct{}{}} }

// Subscription receives events on C until Close.
type Subscription struct {
	bus     *Bus
	c       chan Event
	dropped atomic.Bool
	once    sync.Once
}

// Subscribe returns a subscription whose queue holds up to size events
// (at least 1).
func (b *Bus) Subscribe(size int) *Subscription {
	s := &Subscription{bus: b, c: make(chan Event, max(size, 1))}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	return s
}

// Publish queues e for every subscriber without waiting: a subscriber with
// a full queue misses it and has Dropped set.
func (b *Bus) Publish(e Event) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for s := range b.subs {
		select {
		case s.c <- e:
		default:
			s.dropped.Store(true)
		}
	}
}

// Subscribers is how many subscriptions are open.
func (b *Bus) Subscribers() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.subs)
}

// C is the subscription's queue. It is closed by Close.
func (s *Subscription) C() <-chan Event { return s.c }

// Dropped reports whether events were lost since the last call, and
// clears the mark.
func (s *Subscription) Dropped() bool { return s.dropped.Swap(false) }

// Close ends the subscription; it is safe to call more than once.
func (s *Subscription) Close() {
	s.once.Do(func() {
		s.bus.mu.Lock()
		delete(s.bus.subs, s)
		s.bus.mu.Unlock()
		close(s.c)
	})
}
