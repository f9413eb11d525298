package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nimbus-cloud/nimbus/agents/agent"
	"github.com/nimbus-cloud/nimbus/agents/agentapi"
	"github.com/nimbus-cloud/nimbus/agents/netplane"
	"github.com/nimbus-cloud/nimbus/backend/compute"
	"github.com/nimbus-cloud/nimbus/backend/hosts"
	"github.com/nimbus-cloud/nimbus/backend/network"
	"github.com/nimbus-cloud/nimbus/backend/network/dataplane"
	"github.com/nimbus-cloud/nimbus/backend/platform/events"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// The all-in-one's external network: devstack's public range on the host
// bridge br-ex, with the host as its gateway so that the host reaches
// floating IPs directly and nothing leaves the machine.
const (
	externalBridge   = "br-ex"
	externalHostCIDR = "172.24.4.1/24"
	publicCIDR       = "172.24.4.0/24"
	publicGateway    = "172.24.4.1"
	publicPoolStart  = "172.24.4.10"
	publicPoolEnd    = "172.24.4.254"
	// publicNetworkMarker, under the data directory, records that the
	// public network was created once, so that an operator who deletes it
	// does not get it back at the next start.
	publicNetworkMarker = "public-network-created"
)

// ensurePublicNetwork creates, on the first start of an all-in-one cloud,
// the shared external network "public" with its floating-IP subnet.
func ensurePublicNetwork(ctx context.Context, nets *network.Service, adminProject, dataDir string, log *slog.Logger) error {
	marker := filepath.Join(dataDir, publicNetworkMarker)
	if _, err := os.Stat(marker); err == nil {
		return nil
	}
	sctx := serviceContext(ctx)
	existing, _, err := nets.ListNetworks(sctx, network.ListOptions{Filters: map[string][]string{"router:external": {"true"}}})
	if err != nil {
		return fmt.Errorf("list external networks: %w", err)
	}
	if len(existing) == 0 {
		yes := true
		n, err := nets.CreateNetwork(sctx, network.NetworkCreate{ProjectID: adminProject, Name: "public", External: &yes,
			Shared: &yes, NetworkType: "flat", PhysicalNetwork: "public"})
		if err != nil {
			return fmt.Errorf("create the public network: %w", err)
		}
		no, gw := false, publicGateway
		if _, err := nets.CreateSubnet(sctx, network.SubnetCreate{NetworkID: n.ID, ProjectID: adminProject, Name: "public-subnet", CIDR: publicCIDR,
			GatewayIP: &gw, EnableDHCP: &no,
			AllocationPools: []network.AllocationPool{{Start: publicPoolStart, End: publicPoolEnd}}}); err != nil {
			return fmt.Errorf("create the public subnet: %w", err)
		}
		log.Info("created the external network public with floating IPs "+publicPoolStart+"-"+publicPoolEnd, "network_id", n.ID)
	}
	return writeFileAtomic(marker, []byte("public\n"), 0o600)
}

// newLocalPlane makes the data plane of this machine for the local agents
// and brings up the external bridge.
func newLocalPlane(ctx context.Context, stateDir string, log *slog.Logger) (*netplane.Plane, error) {
	p, err := netplane.New(netplane.Config{
		StateDir:       stateDir,
		ExternalBridge: externalBridge,
		ExternalCIDR:   externalHostCIDR,
		Logger:         log,
	})
	if err != nil {
		return nil, err
	}
	if err := p.EnsureExternal(ctx); err != nil {
		p.Close()
		return nil, fmt.Errorf("external bridge %s: %w", externalBridge, err)
	}
	return p, nil
}

// sharedPlane lets several local agents, which are separate hosts to the
// control plane but share one kernel, use one data plane. A network's
// bridge and DHCP server exist once on the machine, so the plane holds,
// per network, the spec each agent last applied: the one with the DHCP
// server wins, and the network goes only when its last agent drops it.
// Routers and port security are per object and pass through.
type sharedPlane struct {
	*netplane.Plane
	mu      sync.Mutex
	holders map[string]map[string]agentapi.NetworkSpec // network → agent → spec
}

func newSharedPlane(p *netplane.Plane) *sharedPlane {
	return &sharedPlane{Plane: p, holders: map[string]map[string]agentapi.NetworkSpec{}}
}

// For returns the plane as agent name sees it.
func (s *sharedPlane) For(name string) agent.NetworkPlane { return agentPlane{s: s, name: name} }

// effective is the spec to apply for a network held by hs.
func effective(hs map[string]agentapi.NetworkSpec) agentapi.NetworkSpec {
	names := make([]string, 0, len(hs))
	for n := range hs {
		names = append(names, n)
	}
	sort.Strings(names)
	best := hs[names[0]]
	for _, n := range names {
		if hs[n].DHCPPort != nil {
			return hs[n]
		}
	}
	return best
}

type agentPlane struct {
	s    *sharedPlane
	name string
}

func (a agentPlane) ApplyNetwork(ctx context.Context, spec agentapi.NetworkSpec) error {
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	hs := a.s.holders[spec.ID]
	if hs == nil {
		hs = map[string]agentapi.NetworkSpec{}
		a.s.holders[spec.ID] = hs
	}
	hs[a.name] = spec
	return a.s.Plane.ApplyNetwork(ctx, effective(hs))
}

func (a agentPlane) DeleteNetwork(ctx context.Context, id string) error {
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	hs := a.s.holders[id]
	delete(hs, a.name)
	if len(hs) > 0 {
		return a.s.Plane.ApplyNetwork(ctx, effective(hs))
	}
	delete(a.s.holders, id)
	return a.s.Plane.DeleteNetwork(ctx, id)
}

func (a agentPlane) ApplyRouter(ctx context.Context, spec agentapi.RouterSpec) error {
	return a.s.Plane.ApplyRouter(ctx, spec)
}

func (a agentPlane) DeleteRouter(ctx context.Context, id string) error {
	return a.s.Plane.DeleteRouter(ctx, id)
}

func (a agentPlane) ApplyPortSecurity(ctx context.Context, spec agentapi.PortSecuritySpec) error {
	return a.s.Plane.ApplyPortSecurity(ctx, spec)
}

func (a agentPlane) DeletePortSecurity(ctx context.Context, id string) error {
	return a.s.Plane.DeletePortSecurity(ctx, id)
}

// Prune removes what the control plane no longer has. Every agent sends
// the same lists (everything that exists), so either may prune the one
// kernel they share.
func (a agentPlane) Prune(ctx context.Context, keep agentapi.NetworkKeep) error {
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	for id := range a.s.holders {
		if !slices.Contains(keep.Networks, id) {
			delete(a.s.holders, id)
		}
	}
	return a.s.Plane.Prune(ctx, keep)
}

// ServeMetadata hands the machine's one plane a fetcher; any local agent's
// will do, they all ask the same controller.
func (a agentPlane) ServeMetadata(f agentapi.MetadataFetcher) { a.s.Plane.ServeMetadata(f) }

// metadataSource answers the agents' metadata proxies: the router (or
// network) a request came through and the guest's address name one port,
// whose instance compute answers for. Subnets attached to one router never
// overlap, so the pair is unambiguous even when projects reuse ranges.
type metadataSource struct {
	nets *network.Service
	comp *compute.Service
}

func (m metadataSource) Metadata(ctx context.Context, _ hosts.Host, req agentapi.MetadataRequest) (*agentapi.MetadataResponse, error) {
	sctx := serviceContext(ctx)
	ip, err := netip.ParseAddr(req.RemoteIP)
	if err != nil {
		return nil, fault.Invalidf("%q is not an IP address.", req.RemoteIP)
	}
	var networkIDs []string
	if req.RouterID != "" {
		plan, err := m.nets.RouterPlan(sctx, req.RouterID)
		if err != nil {
			return nil, err
		}
		for _, leg := range plan.Interfaces {
			for _, sn := range leg.Subnets {
				if pfx, err := netip.ParsePrefix(sn.CIDR); err == nil && pfx.Contains(ip) {
					networkIDs = append(networkIDs, leg.Port.NetworkID)
				}
			}
		}
	} else {
		networkIDs = []string{req.NetworkID}
	}
	if len(networkIDs) == 0 {
		return nil, fault.NotFoundf("No instance is at this address.")
	}
	ports, _, err := m.nets.ListPorts(sctx, network.ListOptions{Filters: map[string][]string{
		"network_id": networkIDs, "fixed_ips": {"ip_address=" + ip.String()}}})
	if err != nil {
		return nil, err
	}
	for _, p := range ports {
		if !p.OfInstance() {
			continue
		}
		floating := ""
		if fips, _, err := m.nets.ListFloatingIPs(sctx, network.ListOptions{Filters: map[string][]string{"port_id": {p.ID}}}); err == nil && len(fips) > 0 {
			floating = fips[0].FloatingIPAddress
		}
		ans, err := m.comp.Metadata(ctx, compute.MetadataRequest{InstanceID: p.DeviceID, ProjectID: p.ProjectID,
			FixedIP: ip.String(), FloatingIP: floating, Path: req.Path})
		if err != nil {
			return nil, err
		}
		return &agentapi.MetadataResponse{ContentType: ans.ContentType, Body: ans.Body}, nil
	}
	return nil, fault.NotFoundf("No instance is at this address.")
}

// networkAgents reports, for /v2.0/agents, what each host's node agent
// does as Neutron would name it: every host runs the Linux bridge agent;
// the network host also the DHCP, L3 and metadata agents.
type agentRole struct{ typ, binary, topic string }

type networkAgents struct {
	reg *hosts.Registry
	dp  *dataplane.Syncer
}

func (n networkAgents) NetworkAgents(ctx context.Context) ([]network.Agent, error) {
	list, err := n.reg.List(ctx)
	if err != nil {
		return nil, err
	}
	nh, _ := n.dp.NetworkHostID(ctx)
	now, down := time.Now(), n.reg.DownAfter()
	var out []network.Agent
	for _, h := range list {
		roles := []agentRole{{"Linux bridge agent", "neutron-linuxbridge-agent", "N/A"}}
		if h.ID == nh {
			roles = append(roles, agentRole{"DHCP agent", "neutron-dhcp-agent", "dhcp_agent"},
				agentRole{"L3 agent", "neutron-l3-agent", "l3_agent"},
				agentRole{"Metadata agent", "neutron-metadata-agent", "N/A"})
		}
		for _, r := range roles {
			out = append(out, network.Agent{
				// Stable per host and role, so the ID survives restarts.
				ID:        uuid.NewSHA1(uuid.NameSpaceOID, []byte(h.ID+"/"+r.binary)).String(),
				AgentType: r.typ, Binary: r.binary, Topic: r.topic, Host: h.Hostname,
				AvailabilityZone: "nova", Alive: h.Up(now, down), AdminStateUp: !h.Disabled,
				CreatedAt: h.CreatedAt, StartedAt: h.CreatedAt, HeartbeatAt: h.LastHeartbeat,
				Configurations: map[string]any{"bridge_mappings": map[string]any{"public": externalBridge}},
			})
		}
	}
	return out, nil
}

// networkEvents passes every network change on to the data plane and
// announces it on the bus for the live dashboard: each network, subnet,
// router and drawn port as a network event (the topology redraws), and an
// instance whose addresses changed as an instance event (its row shows the
// new ones): a port of an instance created, changed or deleted, or a
// floating IP moved onto or off one. The floating IP's previous port is
// remembered, since a disassociated floating IP no longer names it.
type networkEvents struct {
	network.Notifier
	nets *network.Service
	bus  events.Publisher
	mu   sync.Mutex
	fips map[string]string // floating IP → port it was last seen on
}

func newNetworkEvents(next network.Notifier, bus events.Publisher) *networkEvents {
	return &networkEvents{Notifier: next, bus: bus, fips: map[string]string{}}
}

// attach gives a the network service and learns where the floating IPs
// are now, so that one associated before this start is announced on its
// instance when it moves off.
func (a *networkEvents) attach(ctx context.Context, nets *network.Service) error {
	a.nets = nets
	fips, _, err := nets.ListFloatingIPs(serviceContext(ctx), network.ListOptions{})
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, f := range fips {
		if f.PortID != "" {
			a.fips[f.ID] = f.PortID
		}
	}
	return nil
}

func (a *networkEvents) NetworkChanged(ctx context.Context, op network.Op, n *network.Network) {
	a.Notifier.NetworkChanged(ctx, op, n)
	project := n.ProjectID
	// An update may have taken sharing away and a deletion removes it from
	// every project that saw it: tell everyone, each tab reads again with
	// its own rights.
	if op != network.OpCreate || n.Shared || n.External {
		project = ""
	}
	a.changed(n.ID, project, op)
}

func (a *networkEvents) SubnetChanged(ctx context.Context, op network.Op, sn *network.Subnet) {
	a.Notifier.SubnetChanged(ctx, op, sn)
	project := ""
	if a.nets != nil {
		if n, err := a.nets.GetNetwork(serviceContext(ctx), sn.NetworkID); err == nil && !n.Shared && !n.External {
			project = sn.ProjectID
		}
	}
	a.changed(sn.ID, project, op)
}

func (a *networkEvents) RouterChanged(ctx context.Context, op network.Op, r *network.Router) {
	a.Notifier.RouterChanged(ctx, op, r)
	a.changed(r.ID, r.ProjectID, op)
}

func (a *networkEvents) PortChanged(ctx context.Context, op network.Op, p *network.Port) {
	a.Notifier.PortChanged(ctx, op, p)
	// The topology draws router interfaces and instances' ports; a port
	// with no owner may just have been detached from one. The service's
	// other ports (DHCP, floating IP, a gateway that comes with its
	// router's change) are not drawn.
	if p.DeviceOwner == network.OwnerRouterInterface || !strings.HasPrefix(p.DeviceOwner, "network:") {
		a.changed(p.ID, p.ProjectID, op)
	}
	a.instanceOf(p)
}

func (a *networkEvents) FloatingIPChanged(ctx context.Context, op network.Op, f *network.FloatingIP) {
	a.Notifier.FloatingIPChanged(ctx, op, f)
	a.mu.Lock()
	before := a.fips[f.ID]
	if op == network.OpDelete || f.PortID == "" {
		delete(a.fips, f.ID)
	} else {
		a.fips[f.ID] = f.PortID
	}
	a.mu.Unlock()
	for _, port := range []string{before, f.PortID} {
		if port == "" || a.nets == nil {
			continue
		}
		if p, err := a.nets.GetPort(serviceContext(ctx), port); err == nil {
			a.instanceOf(p)
		}
	}
}

func (a *networkEvents) changed(id, project string, op network.Op) {
	a.bus.Publish(events.Event{Kind: events.KindNetwork, ID: id, ProjectID: project, Deleted: op == network.OpDelete, At: time.Now()})
}

// instanceOf announces the instance p belongs to, if any.
func (a *networkEvents) instanceOf(p *network.Port) {
	if p.OfInstance() {
		a.bus.Publish(events.Event{Kind: events.KindInstance, ID: p.DeviceID, ProjectID: p.ProjectID, At: time.Now()})
	}
}
