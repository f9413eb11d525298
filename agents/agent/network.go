package agent

import (
	"context"
	"net/http"

	"github.com/nimbus-cloud/nimbus/agents/agentapi"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/backend/platform/rest"
)

// NetworkPlane is the host's network data plane (agents/netplane.Plane
// satisfies it). Every Apply converges the whole desired state and every
// Delete of something absent succeeds (the agent also answers success for a
// Delete that reports NotFound), so the control plane may repeat any call. Errors are *fault.Error: Invalid for a spec the plane refuses,
// anything else is Internal. Implementations must be safe for concurrent use.
type NetworkPlane interface {
	ApplyNetwork(ctx context.Context, spec agentapi.NetworkSpec) error
	DeleteNetwork(ctx context.Context, id string) error
	ApplyRouter(ctx context.Context, spec agentapi.RouterSpec) error
	DeleteRouter(ctx context.Context, id string) error
	ApplyPortSecurity(ctx context.Context, spec agentapi.PortSecuritySpec) error
	DeletePortSecurity(ctx context.Context, portID string) error
}

// MetadataPlane is a NetworkPlane that runs metadata proxies (as
// agents/netplane does, in router namespaces). Once the agent has its
// credential it hands the plane a fetcher that asks the controller, over
// the signed agent API, for the metadata of the guest behind an address.
type MetadataPlane interface {
	ServeMetadata(f agentapi.MetadataFetcher)
}

// PrunablePlane is a NetworkPlane that can remove what the control plane
// no longer has (agents/netplane does).
type PrunablePlane interface {
	Prune(ctx context.Context, keep agentapi.NetworkKeep) error
}

// metadataFetcher asks the controller for metadata on the agent's behalf.
type metadataFetcher struct{ ctl *controller }

func (m metadataFetcher) FetchMetadata(ctx context.Context, req agentapi.MetadataRequest) (*agentapi.MetadataResponse, error) {
	var out agentapi.MetadataResponse
	if err := m.ctl.call(ctx, http.MethodPost, agentapi.PathMetadata, "", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// maxNetBody bounds a network call's body: a network's DHCP hosts or a
// port's expanded remote-group rules can outgrow maxSmallBody. rest.Decode
// refuses more than this anyway.
const maxNetBody = rest.MaxBodyBytes

// networkRoutes registers the network data-plane routes on m.
func (a *agent) networkRoutes(m *http.ServeMux) {
	for _, p := range []struct {
		path        string
		apply, drop http.HandlerFunc
	}{
		{agentapi.PathNetworks, a.handleApplyNetwork, a.handleDeleteNetwork},
		{agentapi.PathRouters, a.handleApplyRouter, a.handleDeleteRouter},
		{agentapi.PathPortSecurity, a.handleApplyPortSecurity, a.handleDeletePortSecurity},
	} {
		m.Handle("PUT "+p.path+"/{id}", a.signed(maxNetBody, a.withPlane(p.apply)))
		m.Handle("DELETE "+p.path+"/{id}", a.signed(maxSmallBody, a.withPlane(p.drop)))
	}
	m.Handle("POST "+agentapi.PathNetworkPrune, a.signed(maxNetBody, http.HandlerFunc(a.handlePrune)))
}

func (a *agent) handlePrune(w http.ResponseWriter, r *http.Request) {
	pp, ok := a.cfg.Network.(PrunablePlane)
	if !ok {
		a.fail(w, r, fault.New(fault.NotImplemented, "This agent's network data plane cannot prune."))
		return
	}
	var keep agentapi.NetworkKeep
	if err := rest.Decode(r, &keep, false); err != nil {
		a.fail(w, r, err)
		return
	}
	for _, ids := range [][]string{keep.Networks, keep.Routers, keep.Ports} {
		for _, id := range ids {
			if !validUUID(id) {
				a.fail(w, r, fault.Invalidf("%q is not a network, router or port ID.", id))
				return
			}
		}
	}
	a.applied(w, r, "prune", pp.Prune(r.Context(), keep))
}

// withPlane answers NotImplemented when the agent has no network plane and
// checks the path's ID (network, router and port IDs are UUIDs, like
// instances': they reach device names, namespaces and chain names).
func (a *agent) withPlane(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if a.cfg.Network == nil {
			a.fail(w, r, fault.New(fault.NotImplemented,
				"This agent manages no network data plane (it was started without one)."))
			return
		}
		if id := r.PathValue("id"); !validUUID(id) {
			a.fail(w, r, fault.Invalidf("%q is not a network, router or port ID.", id))
			return
		}
		h(w, r)
	}
}

// decodeFor decodes the body into spec and reconciles its ID with the
// path's: an empty one takes the path's, another one is refused.
func decodeFor[T any](r *http.Request, spec *T, id *string, kind string) error {
	if err := rest.Decode(r, spec, false); err != nil {
		return err
	}
	if *id == "" {
		*id = r.PathValue("id")
	}
	if *id != r.PathValue("id") {
		return fault.Invalidf("The %s spec names another %s than the path.", kind, kind)
	}
	return nil
}

// applied answers an apply or delete: 204 on success (a delete of
// something absent included), the plane's fault otherwise.
func (a *agent) applied(w http.ResponseWriter, r *http.Request, what string, err error) {
	if err != nil && !(r.Method == http.MethodDelete && fault.Is(err, fault.NotFound)) {
		a.fail(w, r, err)
		return
	}
	a.log.Debug("network state applied", "method", r.Method, "what", what, "id", r.PathValue("id"),
		"request_id", r.Header.Get(agentapi.HeaderRequestID))
	w.WriteHeader(http.StatusNoContent)
}

func (a *agent) handleApplyNetwork(w http.ResponseWriter, r *http.Request) {
	var spec agentapi.NetworkSpec
	if err := decodeFor(r, &spec, &spec.ID, "network"); err != nil {
		a.fail(w, r, err)
		return
	}
	a.applied(w, r, "network", a.cfg.Network.ApplyNetwork(r.Context(), spec))
}

func (a *agent) handleDeleteNetwork(w http.ResponseWriter, r *http.Request) {
	a.applied(w, r, "network", a.cfg.Network.DeleteNetwork(r.Context(), r.PathValue("id")))
}

func (a *agent) handleApplyRouter(w http.ResponseWriter, r *http.Request) {
	var spec agentapi.RouterSpec
	if err := decodeFor(r, &spec, &spec.ID, "router"); err != nil {
		a.fail(w, r, err)
		return
	}
	a.applied(w, r, "router", a.cfg.Network.ApplyRouter(r.Context(), spec))
}

func (a *agent) handleDeleteRouter(w http.ResponseWriter, r *http.Request) {
	a.applied(w, r, "router", a.cfg.Network.DeleteRouter(r.Context(), r.PathValue("id")))
}

func (a *agent) handleApplyPortSecurity(w http.ResponseWriter, r *http.Request) {
	var spec agentapi.PortSecuritySpec
	if err := decodeFor(r, &spec, &spec.PortID, "port"); err != nil {
		a.fail(w, r, err)
		return
	}
	a.applied(w, r, "port", a.cfg.Network.ApplyPortSecurity(r.Context(), spec))
}

func (a *agent) handleDeletePortSecurity(w http.ResponseWriter, r *http.Request) {
	a.applied(w, r, "port", a.cfg.Network.DeletePortSecurity(r.Context(), r.PathValue("id")))
}
