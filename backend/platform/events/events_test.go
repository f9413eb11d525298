package events_test

import (
	"sync"
	"testing"
	"time"

	"github.com/nimbus-cloud/nimbus/backend/platform/events"
)

func TestBusDeliversToEverySubscriber(t *testing.T) {
	b := events.New()
	s1, s2 := b.Subscribe(4), b.Subscribe(4)
	b.Publish(events.Event{Kind: events.KindInstance, ID: "i1", ProjectID: "p1"})
	for _, s := range []*events.Subscription{s1, s2} {
		if e := <-s.C(); e.ID != "i1" || e.ProjectID != "p1" || e.Kind != events.KindInstance {
			t.Fatalf("got %+v", e)
		}
		if s.Dropped() {
			t.Fatal("dropped with room in the queue")
		}
	}
	s1.Close()
	s1.Close() // twice is harmless
	if b.Subscribers() != 1 {
		t.Fatalf("subscribers %d", b.Subscribers())
	}
	if _, open := <-s1.C(); open {
		t.Fatal("closed subscription's channel still open")
	}
	b.Publish(events.Event{ID: "i2"})
	if e := <-s2.C(); e.ID != "i2" {
		t.Fatalf("after close: %+v", e)
	}
}

func TestBusFullQueueDropsAndMarks(t *testing.T) {
	b := events.New()
	slow, fast := b.Subscribe(2), b.Subscribe(16)
	for i := 0; i < 10; i++ {
		b.Publish(events.Event{ID: string(rune('a' + i))}) // never blocks on slow
	}
	if len(slow.C()) != 2 || !slow.Dropped() {
		t.Fatalf("slow: %d queued, dropped mark missing", len(slow.C()))
	}
	if slow.Dropped() {
		t.Fatal("Dropped did not clear the mark")
	}
	if len(fast.C()) != 10 || fast.Dropped() {
		t.Fatalf("fast: %d queued", len(fast.C()))
	}
}

func TestBusStampsAndNilBus(t *testing.T) {
	var none *events.Bus
	none.Publish(events.Event{ID: "x"}) // wiring without events: a no-op
	b := events.New()
	s := b.Subscribe(1)
	before := time.Now()
	b.Publish(events.Event{ID: "x"})
	if e := <-s.C(); e.At.Before(before) {
		t.Fatalf("At %v not stamped", e.At)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	b.Publish(events.Event{ID: "y", At: at})
	if e := <-s.C(); !e.At.Equal(at) {
		t.Fatalf("At %v overwritten", e.At)
	}
}

// Subscribing, publishing and closing at once must neither race nor send
// on a closed channel (run with -race).
func TestBusConcurrentCloseAndPublish(t *testing.T) {
	b := events.New()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
					b.Publish(events.Event{ID: "x"})
				}
			}
		}()
	}
	for range 200 {
		s := b.Subscribe(2)
		<-s.C()
		s.Close()
	}
	close(stop)
	wg.Wait()
	if n := b.Subscribers(); n != 0 {
		t.Fatalf("%d subscribers left", n)
	}
}

func BenchmarkPublish100Subscribers(b *testing.B) {
	bus := events.New()
	subs := make([]*events.Subscription, 100)
	for i := range subs {
		subs[i] = bus.Subscribe(1)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		bus.Publish(events.Event{Kind: events.KindInstance, ID: "x"})
		for _, s := range subs {
			<-s.C()
		}
	}
}
