package network

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/backend/platform/policy"
	"github.com/nimbus-cloud/nimbus/backend/platform/rest"
)

// Agent is one of Neutron's agents as /v2.0/agents shows it. Nimbus has no
// separate agent processes: each host's node agent runs the Linux bridge
// data plane, and the network host's also runs DHCP, routers and the
// metadata proxies, so each host reports one agent per role it plays.
type Agent struct {
	ID               string
	AgentType        string
	Binary           string
	Topic            string
	Host             string
	AvailabilityZone string
	Alive            bool
	AdminStateUp     bool
	CreatedAt        time.Time
	StartedAt        time.Time
	HeartbeatAt      time.Time
	Description      string
	Configurations   map[string]any
}

// AgentSource reports the hosts' agents (the hosts registry, through an
// adapter that knows which host is the network host).
type AgentSource interface {
	NetworkAgents(ctx context.Context) ([]Agent, error)
}

// ListAgents lists the agents, filtered by agent_type, binary, host and
// alive. Faults: Unauthorized, Forbidden (admins only, as in Neutron).
func (s *Service) ListAgents(ctx context.Context, filters map[string][]string) ([]Agent, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.enforce(c, "get_agent", policy.Target{}); err != nil {
		return nil, err
	}
	if s.cfg.Agents == nil {
		return []Agent{}, nil
	}
	all, err := s.cfg.Agents.NetworkAgents(ctx)
	if err != nil {
		return nil, err
	}
	out := []Agent{}
	for _, a := range all {
		if match(filters, "agent_type", a.AgentType) && match(filters, "binary", a.Binary) &&
			match(filters, "host", a.Host) && match(filters, "id", a.ID) &&
			match(filters, "alive", boolString(a.Alive)) && match(filters, "admin_state_up", boolString(a.AdminStateUp)) {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b Agent) int {
		return strings.Compare(a.Host+"/"+a.AgentType, b.Host+"/"+b.AgentType)
	})
	return out, nil
}

// GetAgent returns agent id. Faults: Unauthorized, Forbidden, NotFound.
func (s *Service) GetAgent(ctx context.Context, id string) (*Agent, error) {
	list, err := s.ListAgents(ctx, map[string][]string{"id": {id}})
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, fault.NotFoundf("Agent %s could not be found.", id).WithType("AgentNotFound")
	}
	return &list[0], nil
}

func match(filters map[string][]string, key, v string) bool {
	want, ok := filters[key]
	return !ok || slices.ContainsFunc(want, func(w string) bool { return strings.EqualFold(w, v) })
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func (a *apiHandler) agentRoutes(r chi.Router) {
	r.Get("/v2.0/agents", a.listAgents)
	r.Get("/v2.0/agents/{id}", a.getAgent)
}

func agentView(ag *Agent) map[string]any {
	conf := ag.Configurations
	if conf == nil {
		conf = map[string]any{}
	}
	return map[string]any{
		"id": ag.ID, "agent_type": ag.AgentType, "binary": ag.Binary, "topic": ag.Topic, "host": ag.Host,
		"availability_zone": nullable(ag.AvailabilityZone), "alive": ag.Alive, "admin_state_up": ag.AdminStateUp,
		"created_at": neutronTime(ag.CreatedAt), "started_at": neutronTime(ag.StartedAt),
		"heartbeat_timestamp": neutronTime(ag.HeartbeatAt), "description": nullable(ag.Description),
		"configurations": conf, "resources_synced": nil, "ha_state": nil,
	}
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// neutronTime is the agents API's timestamp format.
func neutronTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}

func (a *apiHandler) listAgents(w http.ResponseWriter, r *http.Request) {
	list, err := a.s.ListAgents(r.Context(), r.URL.Query())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]any, len(list))
	for i := range list {
		out[i] = agentView(&list[i])
	}
	rest.JSON(w, http.StatusOK, map[string]any{"agents": out})
}

func (a *apiHandler) getAgent(w http.ResponseWriter, r *http.Request) {
	ag, err := a.s.GetAgent(r.Context(), pathID(r, "id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, map[string]any{"agent": agentView(ag)})
}
