// Package network is Nimbus's networking control plane, compatible with
// Neutron v2.0: networks (tenant VXLAN, provider flat and VLAN, external),
// subnets with IP address management, ports with MAC addresses, bindings,
// security groups and allowed address pairs, routers with gateways,
// interfaces and extra routes, floating IPs, security groups and rules,
// quotas and IP availability.
//
// Every exported method that acts for a caller reads the caller's
// credentials from the context (auth.FromContext) and checks its action
// through the policy engine with Neutron's rule names, so the REST API, the
// dashboard and the compute service enforce the same rules. A resource the
// caller may not see answers NotFound, exactly like a missing one. Errors
// are *fault.Error values carrying Neutron's fault type (NetworkInUse,
// IpAddressGenerationFailure, ...); each method's doc names the kinds it
// returns.
//
// Every change is one transaction (BEGIN IMMEDIATE): IP allocation, quota
// checks and uniqueness checks see a consistent database and never race,
// and a UNIQUE constraint backs each of them (one address per subnet, one
// MAC per network, one segment per network, one floating IP per fixed IP).
// IPAM is next-fit: a subnet remembers the address it handed out last and
// the search for a free one starts after it, so allocation costs a lookup
// or two however full the subnet is and a released address is not reused
// at once. A network with a DHCP-enabled subnet gets its DHCP port
// (device_owner network:dhcp) from the service, with a pool address on each
// such subnet (the first, such as .2, on a new subnet): that is where the
// data plane runs dnsmasq.
// After a change commits, the service tells the configured Notifier, which
// is how the data plane (bridges, namespaces, dnsmasq, iptables) learns of
// it; the data plane reads what it needs through NetworkPlan, PortPlan and
// RouterPlan.
package network

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"time"

	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
	"github.com/nimbus-cloud/nimbus/backend/platform/db"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/backend/platform/policy"
)

// Network types.
const (
	TypeFlat  = "flat"
	TypeVLAN  = "vlan"
	TypeVXLAN = "vxlan"
)

// Device owners the service itself creates or treats specially. A
// device_owner starting with "network:" marks a port owned by the
// networking service; "compute:<zone>" marks an instance's port.
const (
	OwnerDHCP            = "network:dhcp"
	OwnerRouterInterface = "network:router_interface"
	OwnerRouterGateway   = "network:router_gateway"
	OwnerFloatingIP      = "network:floatingip"
	ownerNetworkPrefix   = "network:"
	ownerComputePrefix   = "compute:"
)

// Resource statuses.
const (
	StatusActive = "ACTIVE"
	StatusDown   = "DOWN"
	StatusBuild  = "BUILD"
	StatusError  = "ERROR"
)

// VIF types a port binding reports. The data plane plugs every port into a
// Linux bridge (one per network), so a bound port is "bridge".
const (
	VIFTypeUnbound       = "unbound"
	VIFTypeBridge        = "bridge"
	VIFTypeBindingFailed = "binding_failed"
	VNICNormal           = "normal"
)

// Network is a layer-2 segment.
type Network struct {
	ID          string
	ProjectID   string
	Name        string
	Description string
	// AdminStateUp false asks the data plane to stop forwarding.
	AdminStateUp bool
	Status       string
	Shared       bool
	External     bool // router:external
	// NetworkType is flat, vlan or vxlan; PhysicalNetwork names the host
	// interface mapping for flat and vlan; SegmentationID is the VLAN ID or
	// VXLAN VNI (nil for flat).
	NetworkType         string
	PhysicalNetwork     string
	SegmentationID      *int
	MTU                 int
	PortSecurityEnabled bool
	// Subnets are the IDs of the network's subnets, oldest first.
	Subnets        []string
	RevisionNumber int
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// AllocationPool is an inclusive range of addresses IPAM hands out.
type AllocationPool struct {
	Start string
	End   string
}

// HostRoute is a route DHCP hands to instances on a subnet.
type HostRoute struct {
	Destination string // CIDR
	NextHop     string
}

// Subnet is an IP range on a network. Addresses are canonical text
// (netip's String form); GatewayIP "" means none.
type Subnet struct {
	ID              string
	NetworkID       string
	ProjectID       string
	Name            string
	Description     string
	IPVersion       int
	CIDR            string
	GatewayIP       string
	AllocationPools []AllocationPool
	DNSNameservers  []string
	HostRoutes      []HostRoute
	EnableDHCP      bool
	IPv6RAMode      string // "", slaac, dhcpv6-stateful or dhcpv6-stateless
	IPv6AddressMode string
	RevisionNumber  int
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// FixedIP is an address of a port on one of its network's subnets.
type FixedIP struct {
	SubnetID  string
	IPAddress string
}

// AddressPair is an extra address (or CIDR) and MAC a port may send from,
// beyond its own, when port security is on.
type AddressPair struct {
	IPAddress  string
	MACAddress string
}

// Port is a virtual interface on a network.
type Port struct {
	ID                  string
	NetworkID           string
	ProjectID           string
	Name                string
	Description         string
	MACAddress          string
	AdminStateUp        bool
	Status              string
	DeviceID            string
	DeviceOwner         string
	FixedIPs            []FixedIP
	SecurityGroups      []string
	AllowedAddressPairs []AddressPair
	PortSecurityEnabled bool
	// Binding: the host the port is plugged in on, what kind of NIC it is,
	// and how the data plane plugs it (VIFType, derived).
	BindingHostID   string
	BindingVNICType string
	BindingProfile  map[string]any
	BindingVIFType  string
	RevisionNumber  int
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// OfInstance reports whether p is an instance's port: owned by compute
// ("compute:<zone>") and attached to a device.
func (p *Port) OfInstance() bool {
	return strings.HasPrefix(p.DeviceOwner, ownerComputePrefix) && p.DeviceID != ""
}

// Route is a static route on a router (Neutron's extraroute).
type Route struct {
	Destination string
	NextHop     string
}

// GatewayInfo is a router's leg on an external network.
type GatewayInfo struct {
	NetworkID        string
	EnableSNAT       bool
	ExternalFixedIPs []FixedIP
}

// Router connects subnets to each other and, through its gateway, to an
// external network.
type Router struct {
	ID           string
	ProjectID    string
	Name         string
	Description  string
	AdminStateUp bool
	Status       string
	// Gateway is nil when the router has no external gateway.
	Gateway        *GatewayInfo
	Routes         []Route
	RevisionNumber int
	CreatedAt      time.Time
	UpdatedAt      time.Time

	gwPortID string
}

// RouterInterface is the answer to adding or removing a router interface.
type RouterInterface struct {
	RouterID  string
	ProjectID string
	PortID    string
	SubnetID  string
	SubnetIDs []string
	NetworkID string
}

// FloatingIP is an external address mapped (DNAT and SNAT) to a port's
// fixed IP through a router.
type FloatingIP struct {
	ID                string
	ProjectID         string
	FloatingNetworkID string
	FloatingIPAddress string
	// PortID, FixedIPAddress and RouterID are "" while not associated.
	PortID         string
	FixedIPAddress string
	RouterID       string
	Status         string
	Description    string
	RevisionNumber int
	CreatedAt      time.Time
	UpdatedAt      time.Time

	floatingPortID string
}

// SecurityGroup is a named set of firewall rules applied to ports.
type SecurityGroup struct {
	ID             string
	ProjectID      string
	Name           string
	Description    string
	Stateful       bool
	Rules          []SecurityGroupRule
	RevisionNumber int
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// SecurityGroupRule allows traffic in one direction. Protocol "" is any;
// PortRangeMin/Max are nil when unset (for ICMP they are type and code);
// at most one of RemoteIPPrefix and RemoteGroupID is set.
type SecurityGroupRule struct {
	ID              string
	SecurityGroupID string
	ProjectID       string
	Direction       string // ingress or egress
	Ethertype       string // IPv4 or IPv6
	Protocol        string
	PortRangeMin    *int
	PortRangeMax    *int
	RemoteIPPrefix  string
	RemoteGroupID   string
	Description     string
	RevisionNumber  int
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// ListOptions selects and orders a listing the way Neutron's query string
// does. Filters maps an attribute, by its API name ("network_id",
// "router:external", "binding:host_id", "fixed_ips", ...), to the values
// any of which it may equal. SortKeys/SortDirs order the result (by id when
// empty); Limit (0 = all) and Marker (the ID of the previous page's last
// item) page it.
type ListOptions struct {
	Filters  map[string][]string
	SortKeys []string
	SortDirs []string
	Limit    int
	Marker   string
}

// Op says what happened to a resource a Notifier hears about.
type Op string

// The operations.
const (
	OpCreate Op = "create"
	OpUpdate Op = "update"
	OpDelete Op = "delete"
)

// Notifier is told, after each committed change, which resource changed and
// how; for OpDelete it gets the resource as it was. Its methods are called
// synchronously, outside any transaction, and must not block for long; a
// data-plane driver typically queues the ID and reconciles from NetworkPlan,
// PortPlan and RouterPlan. A port change may also change the members of the
// remote groups of rules naming the port's security groups.
type Notifier interface {
	NetworkChanged(ctx context.Context, op Op, n *Network)
	SubnetChanged(ctx context.Context, op Op, s *Subnet)
	PortChanged(ctx context.Context, op Op, p *Port)
	RouterChanged(ctx context.Context, op Op, r *Router)
	FloatingIPChanged(ctx context.Context, op Op, f *FloatingIP)
	SecurityGroupChanged(ctx context.Context, op Op, g *SecurityGroup)
}

// Config configures the network service. Zero values take the defaults.
type Config struct {
	// Policy is the engine with PolicyRules registered; when nil the service
	// builds one from PolicyRules.
	Policy *policy.Engine
	// Notifier hears of every committed change; nil means nobody listens.
	Notifier Notifier
	// Tokens validates X-Auth-Token for the REST API (the identity service).
	Tokens auth.Validator
	// IdentityURL is the identity API's public URL for the WWW-Authenticate
	// header of a 401; derived from the request when empty.
	IdentityURL string
	// Now is the clock, time.Now when nil.
	Now func() time.Time
	// TenantNetworkType is the type of networks created without provider
	// attributes: vxlan when empty.
	TenantNetworkType string
	// VNIRange is the inclusive range tenant VXLAN VNIs are allocated from:
	// 1 to 16777215 when zero.
	VNIRange [2]int
	// VLANRanges are, per physical network, the inclusive ranges VLAN IDs
	// are allocated from when a VLAN network is created without one.
	VLANRanges map[string][2]int
	// DefaultQuotas override Neutron's defaults per resource (network,
	// subnet, port, router, floatingip, security_group,
	// security_group_rule); -1 is unlimited.
	DefaultQuotas map[string]int
	// MaxRoutes bounds a router's extra routes: 30 when zero.
	MaxRoutes int
	// Agents reports the hosts' agents for /v2.0/agents; nil lists none.
	Agents AgentSource
}

// Service is the network service. It is safe for concurrent use.
type Service struct {
	db  *db.DB
	st  *store
	cfg Config
	pol *policy.Engine
}

// Neutron's default quotas, as its [QUOTAS] options ship.
var defaultQuotas = map[string]int{
	"network":             100,
	"subnet":              100,
	"port":                500,
	"router":              10,
	"floatingip":          50,
	"security_group":      10,
	"security_group_rule": 100,
}

// QuotaResources are the resources quotas apply to, in display order.
var QuotaResources = []string{"network", "subnet", "port", "router", "floatingip", "security_group", "security_group_rule"}

// New returns the network service over d, whose migrations must have been
// applied.
func New(ctx context.Context, d *db.DB, cfg Config) (*Service, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Policy == nil {
		cfg.Policy = policy.New(PolicyRules())
	}
	if cfg.TenantNetworkType == "" {
		cfg.TenantNetworkType = TypeVXLAN
	}
	switch cfg.TenantNetworkType {
	case TypeVXLAN, TypeVLAN:
	default:
		return nil, fault.Invalidf("network: tenant network type %q is not vxlan or vlan", cfg.TenantNetworkType)
	}
	if cfg.VNIRange == [2]int{} {
		cfg.VNIRange = [2]int{1, maxVNI}
	}
	if cfg.VNIRange[0] < 1 || cfg.VNIRange[1] > maxVNI || cfg.VNIRange[0] > cfg.VNIRange[1] {
		return nil, fault.Invalidf("network: VNI range %v is not within 1-%d", cfg.VNIRange, maxVNI)
	}
	for phys, r := range cfg.VLANRanges {
		if err := checkPhysnet(phys); err != nil {
			return nil, err
		}
		if r[0] < 1 || r[1] > maxVLAN || r[0] > r[1] {
			return nil, fault.Invalidf("network: VLAN range %v of %s is not within 1-%d", r, phys, maxVLAN)
		}
	}
	quotas := make(map[string]int, len(defaultQuotas))
	for k, v := range defaultQuotas {
		quotas[k] = v
	}
	for k, v := range cfg.DefaultQuotas {
		if _, ok := quotas[k]; !ok {
			return nil, fault.Invalidf("network: unknown quota resource %q", k)
		}
		quotas[k] = v
	}
	cfg.DefaultQuotas = quotas
	if cfg.MaxRoutes <= 0 {
		cfg.MaxRoutes = 30
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return &Service{db: d, st: &store{db: d}, cfg: cfg, pol: cfg.Policy}, nil
}

// now is the service clock, in UTC.
func (s *Service) now() time.Time { return s.cfg.Now().UTC() }

// isAdmin reports whether c sees and manages every project's resources.
func (s *Service) isAdmin(c *auth.Credentials) bool {
	return s.pol.Allowed("context_is_admin", c, nil)
}

// scope is what a listing may return to a caller: everything for an
// admin, otherwise what its project owns or may use.
type scope struct {
	admin   bool
	project string
}

// scopeOf is c's scope over resources only their project sees (routers,
// floating IPs, security groups).
func (s *Service) scopeOf(c *auth.Credentials) scope {
	return scope{admin: s.isAdmin(c), project: c.ProjectID}
}

// l2ScopeOf is c's scope over networks, subnets and ports, which the
// service role (the compute service plugging instances of any project)
// also sees in full.
func (s *Service) l2ScopeOf(c *auth.Credentials) scope {
	return scope{admin: s.seesAll(c), project: c.ProjectID}
}

// seesAll reports whether c sees every project's networks, subnets and
// ports: admins and the service role (Neutron's advsvc).
func (s *Service) seesAll(c *auth.Credentials) bool {
	return s.isAdmin(c) || s.pol.Allowed("context_is_advsvc", c, nil)
}

// enforce checks action against t for c, answering Neutron's policy fault.
func (s *Service) enforce(c *auth.Credentials, action string, t policy.Target) error {
	if s.pol.Allowed(action, c, t) {
		return nil
	}
	return fault.Forbiddenf("(rule:%s) is disallowed by policy.", action).WithType("PolicyNotAuthorized")
}

// allowed is enforce as a boolean, for attribute-level rules.
func (s *Service) allowed(c *auth.Credentials, action string, t policy.Target) bool {
	return s.pol.Allowed(action, c, t)
}

// notify returns a function that tells the notifier, for use after commit.
type event func(ctx context.Context, n Notifier)

func (s *Service) fire(ctx context.Context, evs []event) {
	if s.cfg.Notifier == nil {
		return
	}
	for _, e := range evs {
		e(ctx, s.cfg.Notifier)
	}
}

// newID returns a random UUID4 in its canonical dashed form, as Neutron's
// resource IDs are.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// resolveProject returns the project a new resource belongs to: the
// requested one, or the caller's.
func resolveProject(c *auth.Credentials, requested string) (string, error) {
	if requested != "" {
		return requested, nil
	}
	if c.ProjectID == "" {
		return "", fault.Invalidf("Invalid input for operation: a project_id is required when the token is not scoped to a project.")
	}
	return c.ProjectID, nil
}

// listOwned pages a kind of project-owned object: the caller's own (every
// project's for an admin) matching o, loaded, and each re-checked against
// its get rule, so a policy override narrows lists as it narrows shows.
func listOwned[T any](s *Service, x *q, c *auth.Credentials, spec *listSpec, o ListOptions,
	load func(*q, []string) ([]T, error), project func(*T) string, getAction string) ([]T, bool, error) {
	vis, args := ownedVisibility(s.scopeOf(c))
	ids, more, err := x.listIDs(spec, vis, args, o)
	if err != nil {
		return nil, false, err
	}
	items, err := load(x, ids)
	if err != nil {
		return nil, false, err
	}
	out := items[:0]
	for i := range items {
		if s.canSeeOwned(c, project(&items[i]), getAction) {
			out = append(out, items[i])
		}
	}
	return out, more, nil
}
