package compute_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nimbus-cloud/nimbus/backend/compute"
	"github.com/nimbus-cloud/nimbus/backend/platform/events"
)

// nextFor reads sub until an event about id that ok accepts, failing after
// a few seconds; it returns the events about id it read on the way.
func nextFor(t *testing.T, sub *events.Subscription, id string, ok func(events.Event) bool) []events.Event {
	t.Helper()
	var seen []events.Event
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev := <-sub.C():
			if ev.ID != id {
				continue
			}
			seen = append(seen, ev)
			if ok(ev) {
				return seen
			}
		case <-deadline:
			t.Fatalf("no matching event for %s; saw %+v", id, seen)
		}
	}
}

// TestInstanceEvents: a build publishes each phase with the instance's
// project and states, its end names the user who launched it, an action
// publishes its task and its end, a delete ends in a deleted event, and a
// build that finds no host ends with an error for its user.
func TestInstanceEvents(t *testing.T) {
	bus := events.New()
	sub := bus.Subscribe(1024)
	e := newEnvWith(t, envOptions{sched: func(c *compute.Config) { c.Events = bus }})
	e.agent("node1", 8, 1024, 200)
	id := e.boot(e.alice, "feed", "1", map[string]any{"networks": "none"}, microversion("2.37")...)

	seen := nextFor(t, sub, id, func(ev events.Event) bool { return ev.Action != "" })
	first, last := seen[0], seen[len(seen)-1]
	if first.VMState != compute.VMBuilding || first.TaskState != compute.TaskScheduling {
		t.Fatalf("first event %+v, want building/scheduling", first)
	}
	var phases []string
	for _, ev := range seen {
		if ev.ProjectID != e.alice.ProjectID || ev.Kind != events.KindInstance || ev.Name != "feed" || ev.At.IsZero() {
			t.Fatalf("event %+v: wrong project, kind, name or time", ev)
		}
		phases = append(phases, ev.VMState+"/"+ev.TaskState)
	}
	if !strings.Contains(strings.Join(phases, " "), "building/scheduling building/networking building/spawning") {
		t.Fatalf("phases %v: want scheduling, networking, spawning", phases)
	}
	if last.VMState != compute.VMActive || last.TaskState != "" || last.Action != compute.ActionCreate ||
		last.Result != events.ResultSuccess || last.UserID != e.alice.ID {
		t.Fatalf("build's end %+v", last)
	}

	e.do("POST", "/servers/"+id+"/action", e.alice.Token, map[string]any{"os-stop": nil}).want(http.StatusAccepted)
	seen = nextFor(t, sub, id, func(ev events.Event) bool { return ev.Action != "" })
	if seen[0].TaskState != compute.TaskPoweringOff {
		t.Fatalf("stop's first event %+v", seen[0])
	}
	if end := seen[len(seen)-1]; end.VMState != compute.VMStopped || end.Action != compute.ActionStop ||
		end.Result != events.ResultSuccess || end.UserID != e.alice.ID {
		t.Fatalf("stop's end %+v", end)
	}

	e.do("DELETE", "/servers/"+id, e.alice.Token, nil).want(http.StatusNoContent)
	seen = nextFor(t, sub, id, func(ev events.Event) bool { return ev.Deleted })
	if seen[0].TaskState != compute.TaskDeleting {
		t.Fatalf("delete's first event %+v", seen[0])
	}

	// m1.small needs 2 GiB: no host has it.
	big := e.boot(e.bob, "big", "2", map[string]any{"networks": "none"}, microversion("2.37")...)
	seen = nextFor(t, sub, big, func(ev events.Event) bool { return ev.Action != "" })
	if end := seen[len(seen)-1]; end.VMState != compute.VMError || end.Result != events.ResultError ||
		end.UserID != e.bob.ID || end.ProjectID != e.bob.ProjectID || end.Message == "" {
		t.Fatalf("failed build's end %+v", end)
	}
}
