package hosts_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/nimbus-cloud/nimbus/agents/agentapi"
	"github.com/nimbus-cloud/nimbus/backend/hosts"
	"github.com/nimbus-cloud/nimbus/backend/platform/events"
)

// TestLivenessEvents: a host that joins is announced up, one that falls
// silent is announced down, its next heartbeat announces it up at once,
// and an operator's disable is announced; nothing is repeated.
func TestLivenessEvents(t *testing.T) {
	bus := events.New()
	sub := bus.Subscribe(64)
	e := newEnvWith(t, func(c *hosts.Config) {
		c.Events = bus
		c.HeartbeatInterval = 50 * time.Millisecond
	})
	next := func(what string) events.Event {
		t.Helper()
		select {
		case ev := <-sub.C():
			if ev.Kind != events.KindHost || ev.Name != "node1" {
				t.Fatalf("%s: %+v", what, ev)
			}
			return ev
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no event", what)
		}
		return events.Event{}
	}
	_, cred := e.join(t, e.token(t), "node1", "http://10.0.0.1:1")
	if ev := next("join"); !ev.Up || ev.ID != cred.AgentID {
		t.Fatalf("join: %+v", ev)
	}
	e.clock.Advance(time.Hour)
	if ev := next("silence"); ev.Up {
		t.Fatalf("silence: %+v", ev)
	}
	hb := agentapi.Heartbeat{AgentID: cred.AgentID, Inventory: agentapi.Inventory{VCPUs: 4, MemoryMB: 8192, DiskGB: 100,
		HypervisorType: "QEMU", VirtType: "qemu"}}
	if r := e.signed(t, "POST", agentapi.PathHeartbeat, cred.AgentID, cred.Secret, mustJSON(hb)); r.StatusCode != http.StatusOK {
		t.Fatalf("heartbeat status %d", r.StatusCode)
	}
	if ev := next("heartbeat"); !ev.Up {
		t.Fatalf("heartbeat: %+v", ev)
	}
	if err := e.reg.SetDisabled(context.Background(), cred.AgentID, true, "maintenance"); err != nil {
		t.Fatal(err)
	}
	if ev := next("disable"); !ev.Up || !ev.Disabled {
		t.Fatalf("disable: %+v", ev)
	}
	// A second heartbeat changes nothing: no event.
	if r := e.signed(t, "POST", agentapi.PathHeartbeat, cred.AgentID, cred.Secret, mustJSON(hb)); r.StatusCode != http.StatusOK {
		t.Fatalf("heartbeat status %d", r.StatusCode)
	}
	select {
	case ev := <-sub.C():
		t.Fatalf("repeated: %+v", ev)
	case <-time.After(300 * time.Millisecond):
	}
}
