// Package events is the control plane's in-process event bus: services
// publish what changed (an instance's state, an action's end, a host going
// up or down) and the dashboard's live hub fans it out to the browsers that
// may see it.
//
// Publishing never blocks: each subscriber has a bounded queue, and a
// subscriber whose queue is full loses the event and is marked, so that it
// can resynchronise from the source of truth instead of slowing everyone.
// Services depend on the Publisher interface only, so that the bus can be
// backed by PostgreSQL LISTEN/NOTIFY or NATS when several controllers share
// one database (DESIGN §11).
package events

import (
	"sync"
	"sync/atomic"
	"time"
)

// Kinds of events.
const (
	// KindInstance: an instance was created, changed state or was deleted,
	// or an action on it ended (Action and Result are set).
	KindInstance = "instance"
	// KindHost: a compute host went up or down, or was enabled or disabled.
	KindHost = "host"
	// KindNetwork: a network, subnet, port or router was created, changed
	// or deleted. ProjectID is "" when every project may see the change
	// (a shared or external network and its subnets).
	KindNetwork = "network"
)

// Results of an instance action (Event.Result).
const (
	ResultSuccess = "success"
	ResultError   = "error"
)

// Event is one change. It carries the state it announces so that
// subscribers can filter and summarise, but a subscriber that shows the
// resource reads it again with its viewer's own rights: an event is a
// notice, never an authorisation.
type Event struct {
	Kind string
	// ID is the instance's UUID, the host's ID or the network resource's
	// UUID.
	ID string
	// ProjectID owns the resource ("" for cloud-wide ones such as hosts).
	ProjectID string
	// Name is the resource's display name when the publisher knows it.
	Name string
	// VMState, TaskState and PowerState are an instance's states after the
	// change (Nova's names; TaskState "" is none).
	VMState, TaskState string
	PowerState         int
	// Deleted reports that the resource is gone.
	Deleted bool
	// Action and Result report the end of an action a user started
	// (Action "stop", Result ResultError); UserID is who started it and
	// Message is what went wrong, for ResultError.
	Action, Result string
	UserID         string
	Message        string
	// Up and Disabled are a host's state after the change.
	Up, Disabled bool
	// At is when the change happened.
	At time.Time
}

// Publisher is what services need of the bus.
type Publisher interface {
	// Publish hands e to the subscribers without waiting for them.
	Publish(e Event)
}

// Bus delivers published events to every subscriber. The zero value is
// not usable; call New.
type Bus struct {
	mu   sync.RWMutex
	subs map[*Subscription]struct{}
}

var _ Publisher = (*Bus)(nil)

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
// a full queue misses it and has Dropped set. A nil bus drops everything,
// so wiring may leave events off.
func (b *Bus) Publish(e Event) {
	if b == nil {
		return
	}
	if e.At.IsZero() {
		e.At = time.Now()
	}
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
