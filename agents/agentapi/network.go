package agentapi

import "context"

// Network data-plane paths, served by each agent for the control plane.
// Every call is a PUT of the whole desired state (idempotent) or a DELETE.
const (
	// PathNetworks: PUT /agent/v1/networks/{id} with a NetworkSpec,
	// DELETE /agent/v1/networks/{id}.
	PathNetworks = "/agent/v1/networks"
	// PathRouters: PUT /agent/v1/routers/{id} with a RouterSpec,
	// DELETE /agent/v1/routers/{id}.
	PathRouters = "/agent/v1/routers"
	// PathPortSecurity: PUT /agent/v1/ports/{id} with a PortSecuritySpec,
	// DELETE /agent/v1/ports/{id}.
	PathPortSecurity = "/agent/v1/ports"
)

// Network types of NetworkSpec.Type.
const (
	NetworkTypeVXLAN = "vxlan"
	NetworkTypeFlat  = "flat"
	NetworkTypeVLAN  = "vlan"
	NetworkTypeLocal = "local"
)

// NetworkSpec is the desired state of one tenant network on this host: its
// Linux bridge, its overlay or physical uplink and its DHCP server.
type NetworkSpec struct {
	ID string `json:"id"`
	// Bridge is "brq" + the first 11 characters of ID.
	Bridge string `json:"bridge"`
	MTU    int    `json:"mtu,omitempty"`
	// Type is one of the NetworkType constants.
	Type string `json:"type"`
	// SegmentationID is the VNI (vxlan) or VLAN ID (vlan).
	SegmentationID int `json:"segmentation_id,omitempty"`
	// PhysicalInterface is the host NIC a flat or vlan network rides on.
	PhysicalInterface string `json:"physical_interface,omitempty"`
	// VXLANLocalIP is this host's tunnel endpoint; VXLANPeers are the other
	// hosts' endpoints (flooding goes to each through FDB entries).
	VXLANLocalIP string   `json:"vxlan_local_ip,omitempty"`
	VXLANPeers   []string `json:"vxlan_peers,omitempty"`
	// DHCPPort is the network's DHCP port; nil means no DHCP server on this
	// host. Its address in each subnet is SubnetSpec.DHCPPortIP.
	DHCPPort  *DHCPPort    `json:"dhcp_port,omitempty"`
	Subnets   []SubnetSpec `json:"subnets,omitempty"`
	DHCPHosts []DHCPHost   `json:"dhcp_hosts,omitempty"`
}

// DHCPPort is the port a network's dnsmasq listens on, inside the
// qdhcp-<network> namespace.
type DHCPPort struct {
	ID  string `json:"id"`
	MAC string `json:"mac"`
}

// SubnetSpec is one IPv4 subnet of a network as the DHCP server sees it.
type SubnetSpec struct {
	ID   string `json:"id"`
	CIDR string `json:"cidr"`
	// GatewayIP is handed out as the router option; empty for none.
	GatewayIP  string `json:"gateway_ip,omitempty"`
	EnableDHCP bool   `json:"enable_dhcp"`
	// DHCPStart and DHCPEnd bound the allocation pool (informational: the
	// server only answers the static DHCPHosts).
	DHCPStart      string   `json:"dhcp_start,omitempty"`
	DHCPEnd        string   `json:"dhcp_end,omitempty"`
	DNSNameservers []string `json:"dns_nameservers,omitempty"`
	// DHCPPortIP is the DHCP port's address in this subnet.
	DHCPPortIP string `json:"dhcp_port_ip,omitempty"`
}

// DHCPHost is one static MAC-to-IP binding the DHCP server hands out.
type DHCPHost struct {
	MAC string `json:"mac"`
	IP  string `json:"ip"`
	// Hostname is optional; [a-z0-9-], at most 63 characters.
	Hostname string `json:"hostname,omitempty"`
}

// RouterSpec is the desired state of one router on this host: the
// qrouter-<id> namespace, its legs and its NAT rules.
type RouterSpec struct {
	ID         string            `json:"id"`
	Interfaces []RouterInterface `json:"interfaces,omitempty"`
	// Gateway is the leg on the external network; nil for none.
	Gateway *RouterGateway `json:"gateway,omitempty"`
	// EnableSNAT makes traffic from the internal subnets leave with the
	// gateway's address.
	EnableSNAT  bool         `json:"enable_snat"`
	FloatingIPs []FloatingIP `json:"floating_ips,omitempty"`
	Routes      []Route      `json:"routes,omitempty"`
}

// RouterInterface is a router's leg on a tenant network (qr-<port11>).
type RouterInterface struct {
	PortID string `json:"port_id"`
	MAC    string `json:"mac"`
	// IPCIDR is the gateway address with the subnet's prefix, e.g. 10.0.0.1/24.
	IPCIDR string `json:"ip_cidr"`
	// Bridge is the tenant network's bridge.
	Bridge string `json:"bridge"`
	MTU    int    `json:"mtu,omitempty"`
}

// RouterGateway is a router's leg on the external network (qg-<port11>).
type RouterGateway struct {
	PortID string `json:"port_id"`
	MAC    string `json:"mac"`
	// IPCIDR is the router's external address with prefix, e.g. 172.24.4.10/24.
	IPCIDR string `json:"ip_cidr"`
	// Bridge is the external bridge, e.g. br-ex.
	Bridge string `json:"bridge"`
	// GatewayIP is the upstream next hop, e.g. 172.24.4.1.
	GatewayIP string `json:"gateway_ip"`
}

// FloatingIP maps an external address to an instance's fixed address.
type FloatingIP struct {
	FloatingIP string `json:"floating_ip"`
	FixedIP    string `json:"fixed_ip"`
}

// Route is an extra static route of a router.
type Route struct {
	Destination string `json:"destination"`
	NextHop     string `json:"nexthop"`
}

// PortSecuritySpec is the security-group state of one instance port: a tap
// on a network bridge, filtered by per-port chains on the host.
type PortSecuritySpec struct {
	PortID  string `json:"port_id"`
	TapName string `json:"tap_name"`
	MAC     string `json:"mac"`
	// IPs are the port's fixed addresses.
	IPs                 []string      `json:"ips,omitempty"`
	AllowedAddressPairs []AddressPair `json:"allowed_address_pairs,omitempty"`
	// PortSecurityEnabled false removes all filtering from the port.
	PortSecurityEnabled bool           `json:"port_security_enabled"`
	Rules               []SecurityRule `json:"rules,omitempty"`
}

// AddressPair is an extra source a port may use (VRRP, a container host).
type AddressPair struct {
	// IPAddress is an IP or a CIDR.
	IPAddress string `json:"ip_address"`
	// MACAddress is empty for the port's own MAC.
	MACAddress string `json:"mac_address,omitempty"`
}

// SecurityRule is one allow rule of a port's security groups. Remote-group
// rules arrive expanded into RemoteIPPrefix values (/32 each).
type SecurityRule struct {
	// Direction is "ingress" or "egress".
	Direction string `json:"direction"`
	// EtherType is "IPv4" or "IPv6".
	EtherType string `json:"ethertype"`
	// Protocol is "" (any), "tcp", "udp", "icmp" or a protocol number.
	Protocol string `json:"protocol,omitempty"`
	// PortRangeMin and PortRangeMax bound the destination ports (tcp, udp);
	// for icmp they are the type and the code. Nil means any, as in
	// Neutron (pointers because ICMP type 0 is a real value).
	PortRangeMin   *int   `json:"port_range_min,omitempty"`
	PortRangeMax   *int   `json:"port_range_max,omitempty"`
	RemoteIPPrefix string `json:"remote_ip_prefix,omitempty"`
}

// PathMetadata is where an agent's metadata proxy asks the controller for
// a guest's metadata (POST MetadataRequest → MetadataResponse).
const PathMetadata = "/agents/v1/metadata"

// MetadataRequest is a guest's metadata request as the proxy in a router
// (or DHCP) namespace saw it: which router or network it came through, the
// guest's source address and the path it asked for.
type MetadataRequest struct {
	RouterID  string `json:"router_id,omitempty"`
	NetworkID string `json:"network_id,omitempty"`
	RemoteIP  string `json:"remote_ip"`
	Path      string `json:"path"`
}

// MetadataResponse is the document to give the guest.
type MetadataResponse struct {
	ContentType string `json:"content_type"`
	Body        []byte `json:"body"`
}

// MetadataFetcher asks the controller for metadata; the agent gives one to
// a data plane that runs metadata proxies. Errors are *fault.Error
// (NotFound for an address no instance owns or an unknown path).
type MetadataFetcher interface {
	FetchMetadata(ctx context.Context, req MetadataRequest) (*MetadataResponse, error)
}

// PathNetworkPrune: POST /agent/v1/network-prune with a NetworkKeep removes
// from the host every network, router and port security the plane finds
// that the keep lists do not name (what was deleted while the host was
// away).
const PathNetworkPrune = "/agent/v1/network-prune"

// NetworkKeep names what exists in the control plane.
type NetworkKeep struct {
	Networks []string `json:"networks"`
	Routers  []string `json:"routers"`
	Ports    []string `json:"ports"`
}
