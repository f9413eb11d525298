package compute_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/nimbus-cloud/nimbus/backend/compute"
	"github.com/nimbus-cloud/nimbus/backend/platform/events"
)

// TestChangeFeed: every change of an instance (created, active, deleted)
// reaches the bus with its project, and another project's events carry
// their own project.
func TestChangeFeed(t *testing.T) {
	bus := events.New()
	sub := bus.Subscribe(256)
	e := newEnvWith(t, envOptions{sched: func(c *compute.Config) {
		c.Events = bus
		c.ChangeFeedInterval = 20 * time.Millisecond
	}})
	e.agent("node1", 8, 16384, 200)
	id := e.boot(e.alice, "feed", "1", map[string]any{"networks": "none"}, microversion("2.37")...)
	e.waitStatus(e.alice, id, "ACTIVE")
	other := e.boot(e.bob, "other", "1", map[string]any{"networks": "none"}, microversion("2.37")...)
	e.waitStatus(e.bob, other, "ACTIVE")
	e.do("DELETE", "/servers/"+id, e.alice.Token, nil).want(http.StatusNoContent)
	e.waitGone(e.alice, id)

	var mine, deleted, bobs int
	deadline := time.After(5 * time.Second)
	for deleted == 0 || bobs == 0 {
		select {
		case ev := <-sub.C():
			switch {
			case ev.Kind != events.KindInstance:
				t.Fatalf("kind %q", ev.Kind)
			case ev.ID == id && ev.ProjectID != e.alice.ProjectID, ev.ID == other && ev.ProjectID != e.bob.ProjectID:
				t.Fatalf("event with the wrong project: %+v", ev)
			case ev.ID == id && ev.Deleted:
				deleted++
			case ev.ID == id:
				mine++
			case ev.ID == other:
				bobs++
			}
		case <-deadline:
			t.Fatalf("events: %d for the instance, %d deleted, %d for bob's", mine, deleted, bobs)
		}
	}
	if mine == 0 {
		t.Fatal("no event before the deletion")
	}
}
