package network_test

import (
	"context"
	"testing"
	"time"

	"github.com/nimbus-cloud/nimbus/backend/network"
)

type agentList []network.Agent

func (l agentList) NetworkAgents(context.Context) ([]network.Agent, error) { return l, nil }

func TestAPIAgents(t *testing.T) {
	beat := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	e := newAPIEnv(t, func(c *network.Config) {
		c.Agents = agentList{
			{ID: "a1", AgentType: "Linux bridge agent", Binary: "neutron-linuxbridge-agent", Host: "node2", Alive: false, AdminStateUp: true},
			{ID: "a2", AgentType: "L3 agent", Binary: "neutron-l3-agent", Host: "node1", Alive: true, AdminStateUp: true,
				HeartbeatAt: beat, AvailabilityZone: "nova"},
			{ID: "a3", AgentType: "Linux bridge agent", Binary: "neutron-linuxbridge-agent", Host: "node1", Alive: true, AdminStateUp: true},
		}
	})
	_, member := e.user("alice", "member")

	tests := []struct {
		query string
		want  []string
	}{
		{"", []string{"a2", "a3", "a1"}}, // by host, then type
		{"?agent_type=Linux+bridge+agent", []string{"a3", "a1"}},
		{"?alive=true", []string{"a2", "a3"}},
		{"?alive=false", []string{"a1"}},
		{"?host=node1&binary=neutron-l3-agent", []string{"a2"}},
		{"?host=nowhere", nil},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			list := e.do("GET", "/v2.0/agents"+tt.query, e.admin, nil).want(200).body["agents"].([]any)
			var got []string
			for _, a := range list {
				got = append(got, a.(map[string]any)["id"].(string))
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			}
		})
	}
	a := e.do("GET", "/v2.0/agents/a2", e.admin, nil).want(200).body["agent"].(map[string]any)
	if a["agent_type"] != "L3 agent" || a["alive"] != true || a["heartbeat_timestamp"] != "2026-11-23 10:00:00" ||
		a["availability_zone"] != "nova" || a["host"] != "node1" {
		t.Fatalf("agent %v", a)
	}
	e.do("GET", "/v2.0/agents/nope", e.admin, nil).wantFault(404, "AgentNotFound")
	e.do("GET", "/v2.0/agents", member, nil).wantFault(403, "PolicyNotAuthorized")
}
