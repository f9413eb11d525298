package views

// Nav keys and URLs of the network pages.
const (
	NavTopology       = "project/network-topology"
	NavNetworks       = "project/networks"
	NavRouters        = "project/routers"
	NavSecurityGroups = "project/security-groups"
	NavFloatingIPs    = "project/floating-ips"

	TopologyURL       = "/project/network-topology"
	NetworksURL       = "/project/networks"
	RoutersURL        = "/project/routers"
	SecurityGroupsURL = "/project/security-groups"
	FloatingIPsURL    = "/project/floating-ips"
)

// SubnetRow is one subnet of a network.
type SubnetRow struct {
	ID      string
	Name    string
	CIDR    string
	Gateway string // "" for none
	DHCP    bool
	Pools   []string // "start – end"
	DNS     []string
}

// Label is the subnet's name and CIDR, or the CIDR alone.
func (s SubnetRow) Label() string {
	if s.Name == "" {
		return s.CIDR
	}
	return s.Name + " " + s.CIDR
}

// NetworkRow is one network in the list.
type NetworkRow struct {
	ID       string
	Name     string
	Subnets  []SubnetRow
	Shared   bool
	External bool
	Status   string
	// Owned marks the viewer's project's networks, the ones it may delete.
	Owned bool
}

// NetworkList is Project → Networks.
type NetworkList struct {
	Rows     []NetworkRow
	CanWrite bool
}

// NetworkForm is the create-network dialog: a network and its first subnet.
type NetworkForm struct {
	Form
	// NetworkID, when set, makes the form add a subnet to that network;
	// SubnetID as well makes it edit that subnet (its CIDR is fixed).
	NetworkID  string
	SubnetID   string
	Name       string
	SubnetName string
	CIDR       string
	Gateway    string
	NoGateway  bool
	DHCP       bool
	DNS        string // one address a line
	Pools      string // one "start,end" a line
}

// NetPortRow is one port of a network.
type NetPortRow struct {
	ID          string
	Name        string
	DeviceOwner string
	// Device names what the port belongs to; DeviceURL links its page.
	Device    string
	DeviceURL string
	MAC       string
	Addresses []string
	Status    string
}

// NetworkDetail is a network's page.
type NetworkDetail struct {
	Row       NetworkRow
	Type      string
	MTU       int
	ProjectID string
	Ports     []NetPortRow
	CanWrite  bool
}

// RouterRow is one router.
type RouterRow struct {
	ID     string
	Name   string
	Status string
	// Gateway is the external network's name, "" without a gateway;
	// GatewayIPs are the router's addresses on it.
	Gateway    string
	GatewayIPs []string
	SNAT       bool
}

// RouterList is Project → Routers.
type RouterList struct {
	Rows     []RouterRow
	CanWrite bool
}

// RouterForm creates a router, or sets a router's gateway (ID set).
type RouterForm struct {
	Form
	ID        string
	Name      string
	External  string
	Externals []Option
}

// RouterInterfaceRow is one interface of a router.
type RouterInterfaceRow struct {
	PortID    string
	Network   string
	NetworkID string
	Subnet    string
	Address   string
	Status    string
}

// RouterDetail is a router's page.
type RouterDetail struct {
	Row        RouterRow
	Interfaces []RouterInterfaceRow
	// Subnets are the project's subnets the router is not on yet.
	Subnets  []Option
	AddError string
	CanWrite bool
}

// SecurityGroupRow is one security group.
type SecurityGroupRow struct {
	ID          string
	Name        string
	Description string
	Rules       int
}

// SecurityGroupList is Project → Security groups.
type SecurityGroupList struct {
	Rows     []SecurityGroupRow
	CanWrite bool
}

// SecurityGroupForm creates a security group.
type SecurityGroupForm struct {
	Form
	Name        string
	Description string
}

// SGRuleRow is one rule of a security group.
type SGRuleRow struct {
	ID        string
	Direction string
	Ethertype string
	Protocol  string
	Ports     string
	Remote    string
}

// SGRuleForm adds a rule to a security group.
type SGRuleForm struct {
	Form
	Direction   string
	Ethertype   string
	Protocol    string
	PortMin     string
	PortMax     string
	RemoteCIDR  string
	RemoteGroup string
	Directions  []Option
	Ethertypes  []Option
	Protocols   []Option
	Groups      []Option
}

// SecurityGroupDetail is a security group's page with its rules.
type SecurityGroupDetail struct {
	ID          string
	Name        string
	Description string
	Rules       []SGRuleRow
	Rule        SGRuleForm
	CanWrite    bool
}

// SGPreset is a one-click ingress rule.
type SGPreset struct {
	Key   string
	Label string
}

// SGPresets are the preset rules offered on a group's page.
var SGPresets = []SGPreset{{"ssh", "SSH"}, {"icmp", "ICMP"}, {"http", "HTTP"}, {"https", "HTTPS"}}

// FIPRow is one floating IP.
type FIPRow struct {
	ID          string
	Address     string
	Fixed       string
	Instance    string
	InstanceURL string
	Pool        string
	Status      string
}

// FIPList is Project → Floating IPs.
type FIPList struct {
	Rows     []FIPRow
	CanWrite bool
}

// FIPAllocateForm allocates a floating IP from a pool (an external network).
type FIPAllocateForm struct {
	Form
	Pool  string
	Pools []Option
}

// FIPAssociateForm associates a floating IP with an instance's port.
type FIPAssociateForm struct {
	Form
	ID      string
	Address string
	Port    string
	Ports   []Option
}

// Topology is the network topology drawing, laid out by the handler.
type Topology struct {
	Width, Height int
	Networks      []TopoNetwork
	Nodes         []TopoNode
}

// TopoNetwork is a network drawn as a vertical bar at X.
type TopoNetwork struct {
	ID       string
	Name     string
	CIDRs    string
	External bool
	URL      string
	X        int
	Top      int
	Bottom   int
}

// TopoNode is a router or an instance drawn as a box, with a line to each
// network it has a port on.
type TopoNode struct {
	ID    string
	Kind  string // router or instance
	Name  string
	URL   string
	X, Y  int
	W, H  int
	Links []TopoLink
}

// TopoLink is a horizontal line from a box to a network bar at height Y.
type TopoLink struct {
	X1, X2, Y int
	Address   string
}

// netName is a resource's name, or its ID when it has none.
func netName(name, id string) string {
	if name == "" {
		return id
	}
	return name
}

func netYesNo(b bool) string {
	if b {
		return "Yes"
	}
	return "No"
}

func topoNetFill(external bool) string {
	if external {
		return "#d9a400"
	}
	return "#3b6fd8"
}

func topoStroke(kind string) string {
	if kind == "router" {
		return "#2e8b57"
	}
	return "#3b6fd8"
}

func topoKind(kind string) string {
	if kind == "router" {
		return "Router"
	}
	return "Instance"
}

// topoClip shortens s to n runes for a label; the link's title keeps it whole.
func topoClip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// EditForm edits a network resource's name and description and, for a
// network edited by an admin, its sharing. (admin_state_up is left to the
// API: the data plane does not act on it.)
type EditForm struct {
	Form
	Name, Description string
	CanShare, Shared  bool
	Submit            string
}
