package hosts

import (
	"context"
	"net/http"
	"net/url"

	"github.com/nimbus-cloud/nimbus/agents/agentapi"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// The network data plane of a host (agentapi's network paths). Every call
// is synchronous and idempotent: an Apply converges the host to the whole
// spec, a Delete of something the host does not hold succeeds. Kinds:
// Invalid (a spec or ID the host refuses), NotImplemented (an agent
// started without a network plane), Unavailable, Internal.

// netCall sends one network call for id; an empty id never leaves.
func (c *Client) netCall(ctx context.Context, method, base, id string, in any) error {
	if id == "" {
		return fault.Invalidf("A network, router or port call needs an ID.")
	}
	return c.do(ctx, method, base+"/"+url.PathEscape(id), nil, "", in, nil)
}

// ApplyNetwork converges the host's bridge, uplink and DHCP server of the
// network to spec.
func (c *Client) ApplyNetwork(ctx context.Context, spec agentapi.NetworkSpec) error {
	return c.netCall(ctx, http.MethodPut, agentapi.PathNetworks, spec.ID, spec)
}

// DeleteNetwork removes everything the host holds for network id.
func (c *Client) DeleteNetwork(ctx context.Context, id string) error {
	return c.netCall(ctx, http.MethodDelete, agentapi.PathNetworks, id, nil)
}

// ApplyRouter converges the host's namespace, legs and NAT rules of the
// router to spec.
func (c *Client) ApplyRouter(ctx context.Context, spec agentapi.RouterSpec) error {
	return c.netCall(ctx, http.MethodPut, agentapi.PathRouters, spec.ID, spec)
}

// DeleteRouter removes everything the host holds for router id.
func (c *Client) DeleteRouter(ctx context.Context, id string) error {
	return c.netCall(ctx, http.MethodDelete, agentapi.PathRouters, id, nil)
}

// ApplyPortSecurity converges the host's filtering of the port to spec.
func (c *Client) ApplyPortSecurity(ctx context.Context, spec agentapi.PortSecuritySpec) error {
	return c.netCall(ctx, http.MethodPut, agentapi.PathPortSecurity, spec.PortID, spec)
}

// DeletePortSecurity removes the host's filtering of port portID.
func (c *Client) DeletePortSecurity(ctx context.Context, portID string) error {
	return c.netCall(ctx, http.MethodDelete, agentapi.PathPortSecurity, portID, nil)
}

// PruneNetwork removes from the host every network, router and port
// security keep does not name.
func (c *Client) PruneNetwork(ctx context.Context, keep agentapi.NetworkKeep) error {
	return c.do(ctx, http.MethodPost, agentapi.PathNetworkPrune, nil, "", keep, nil)
}
