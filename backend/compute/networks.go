package compute

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"strings"

	"github.com/nimbus-cloud/nimbus/agents/agentapi"
	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// NetworkPorts is compute's view of the network service: the few port and
// network calls a boot, a delete, interface attachments, the floating IP
// actions and the server views need. Lookups, port creation and floating
// IP changes act for the caller in ctx (what the user may see, create and
// change); BindPort, UnbindPort, DevicePorts and DeletePort act with the
// control plane's own rights, since binding is admin-only in Neutron and
// cleanups run in the background without a caller. Errors are *fault.Error
// values; a missing or invisible object is NotFound.
type NetworkPorts interface {
	// ListNetworks lists the networks the caller can see: its project's and
	// shared ones, external ones included (marked External).
	ListNetworks(ctx context.Context) ([]NetworkInfo, error)
	// GetNetwork returns a network the caller can see.
	GetNetwork(ctx context.Context, id string) (*NetworkInfo, error)
	// GetPort returns a port the caller can see.
	GetPort(ctx context.Context, id string) (*PortInfo, error)
	// CreatePort creates a port for the caller.
	CreatePort(ctx context.Context, req PortRequest) (*PortInfo, error)
	// BindPort sets a port's device and binds it to a host by hostname.
	BindPort(ctx context.Context, portID, deviceID, deviceOwner, hostname string) (*PortInfo, error)
	// UnbindPort clears a port's device and binding.
	UnbindPort(ctx context.Context, portID string) error
	// DevicePorts lists the ports whose device_id is deviceID.
	DevicePorts(ctx context.Context, deviceID string) ([]PortInfo, error)
	// DeletePort deletes a port.
	DeletePort(ctx context.Context, portID string) error
	// FloatingIPByAddress returns the caller's floating IP with address.
	FloatingIPByAddress(ctx context.Context, address string) (*FloatingIPInfo, error)
	// AssociateFloatingIP points the caller's floating IP id at fixedIP of
	// portID.
	AssociateFloatingIP(ctx context.Context, id, portID, fixedIP string) error
	// DisassociateFloatingIP detaches the caller's floating IP id from its
	// port.
	DisassociateFloatingIP(ctx context.Context, id string) error
}

// FloatingIPInfo is a floating IP as compute sees it; PortID and FixedIP
// are "" while it is not associated.
type FloatingIPInfo struct {
	ID      string
	Address string
	PortID  string
	FixedIP string
}

// NetworkInfo is a network as compute sees it.
type NetworkInfo struct {
	ID        string
	Name      string
	ProjectID string
	Shared    bool
	External  bool
	MTU       int
}

// FixedIP is one address of a port.
type FixedIP struct {
	SubnetID string
	IP       string
}

// PortInfo is a port as compute sees it, with its network's name and MTU.
type PortInfo struct {
	ID        string
	NetworkID string
	ProjectID string
	DeviceID  string
	MAC       string
	// Status is Neutron's port status (ACTIVE, DOWN, BUILD, ERROR).
	Status      string
	FixedIPs    []FixedIP
	MTU         int
	NetworkName string
	// FloatingIPs are the floating addresses associated with the port;
	// DevicePorts fills them in, the single-port calls leave them empty.
	FloatingIPs []string
}

// PortRequest asks for a new port on NetworkID for an instance. FixedIP,
// when set, is the one address wanted; SecurityGroups are names or IDs
// (nil: the project's default group); ProjectID, when set, owns the port
// (an admin attaching a port to another project's server), else the
// caller's project does.
type PortRequest struct {
	NetworkID      string
	ProjectID      string
	FixedIP        string
	SecurityGroups []string
	DeviceID       string
	DeviceOwner    string
}

// NetworkRequest is one entry of a boot's networks list.
type NetworkRequest struct {
	UUID    string `json:"uuid,omitempty"`
	Port    string `json:"port,omitempty"`
	FixedIP string `json:"fixed_ip,omitempty"`
}

// netPlan is what the instances.networks column holds for a boot with
// networks: the resolved requests and the security groups for new ports.
// "none" and "auto" (auto with no networking) keep their plain strings.
type netPlan struct {
	Requests       []NetworkRequest `json:"requests"`
	SecurityGroups []string         `json:"security_groups,omitempty"`
}

func (p netPlan) encode() string { return toJSON(p) }

// planOf decodes srv's network plan; ok is false for "none" and "auto".
func planOf(networks string) (netPlan, bool) {
	var p netPlan
	if !strings.HasPrefix(networks, "{") {
		return p, false
	}
	if err := json.Unmarshal([]byte(networks), &p); err != nil {
		return p, false
	}
	return p, true
}

// Data-plane device names: the same rule as agents/netplane (names.go,
// bridgeName and tapName), which does not export it.
func bridgeName(networkID string) string { return "brq" + shortID(networkID, 11) }
func tapName(portID string) string       { return "tap" + shortID(portID, 11) }

func shortID(id string, n int) string {
	if len(id) > n {
		return id[:n]
	}
	return id
}

// errNoNetworking answers networks requests when no network service is wired.
func errNoNetworking() error { return fault.Invalidf("Networking is not available") }

// resolveNetworks checks a boot's networks at the API and returns the value
// to store in instances.networks. Kinds: Invalid, Conflict.
func (s *Service) resolveNetworks(ctx context.Context, c *auth.Credentials, req ServerCreate) (string, error) {
	nets := s.cfg.Networks
	if req.NetworkList == nil {
		if req.Networks == NetworksNone {
			return NetworksNone, nil
		}
		if nets == nil {
			return NetworksAuto, nil
		}
		all, err := nets.ListNetworks(ctx)
		if err != nil {
			return "", err
		}
		var usable []NetworkInfo
		for _, n := range all {
			if !n.External {
				usable = append(usable, n)
			}
		}
		switch len(usable) {
		case 0:
			// Before 2.37 a request without networks boots without NICs when
			// the project has none; only an explicit "auto" asks for one.
			if req.Networks == "" {
				return NetworksNone, nil
			}
			return "", fault.Invalidf("Unable to automatically allocate a network for project %s", c.ProjectID)
		case 1:
			return netPlan{Requests: []NetworkRequest{{UUID: usable[0].ID}}, SecurityGroups: req.SecurityGroups}.encode(), nil
		default:
			return "", fault.Conflictf("Multiple possible networks found, use a Network ID to be more specific.")
		}
	}
	if len(req.NetworkList) == 0 {
		return NetworksNone, nil
	}
	if nets == nil {
		return "", errNoNetworking()
	}
	for _, r := range req.NetworkList {
		switch {
		case r.Port != "":
			if req.MaxCount > 1 {
				return "", fault.Invalidf("Unable to launch multiple instances with a single configured port ID. Please launch your instance one by one with different ports.")
			}
			p, err := nets.GetPort(ctx, r.Port)
			if fault.Is(err, fault.NotFound) || (err == nil && p.ProjectID != c.ProjectID) {
				return "", fault.Invalidf("Port %s could not be found.", r.Port)
			}
			if err != nil {
				return "", err
			}
			if p.DeviceID != "" {
				return "", fault.Conflictf("Port %s is still in use.", r.Port)
			}
		case r.UUID != "":
			if _, err := nets.GetNetwork(ctx, r.UUID); fault.Is(err, fault.NotFound) {
				return "", fault.Invalidf("Network %s could not be found.", r.UUID)
			} else if err != nil {
				return "", err
			}
			if r.FixedIP != "" {
				if net.ParseIP(r.FixedIP) == nil {
					return "", fault.Invalidf("Invalid input for field/attribute fixed_ip. Value: %s. '%s' is not a valid IP address.", r.FixedIP, r.FixedIP)
				}
				if req.MaxCount > 1 {
					return "", fault.Invalidf("Unable to launch multiple instances with a single configured fixed IP address.")
				}
			}
		default:
			return "", fault.Invalidf("Invalid input for field/attribute networks. Each network needs a uuid or a port.")
		}
	}
	return netPlan{Requests: req.NetworkList, SecurityGroups: req.SecurityGroups}.encode(), nil
}

// allocatePorts creates and binds srv's ports on hostname and returns its
// NICs. Every step registers its undo; on failure the undos run in reverse,
// so no port compute created survives and pre-created ports are unbound.
func (s *Service) allocatePorts(ctx context.Context, srv *Server, hostname string) (nics []agentapi.NIC, err error) {
	plan, ok := planOf(srv.Networks)
	nets := s.cfg.Networks
	if !ok || nets == nil || len(plan.Requests) == 0 {
		return nil, nil
	}
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	owner := "compute:" + srv.AvailabilityZone
	bg := context.WithoutCancel(ctx)
	for _, r := range plan.Requests {
		var portID string
		created := false
		if r.Port != "" {
			portID = r.Port
		} else {
			p, err := nets.CreatePort(ctx, PortRequest{NetworkID: r.UUID, FixedIP: r.FixedIP, SecurityGroups: plan.SecurityGroups,
				DeviceID: srv.ID, DeviceOwner: owner})
			if err != nil {
				return nil, err
			}
			portID, created = p.ID, true
			undo = append(undo, func() {
				if err := nets.DeletePort(bg, portID); err != nil && !fault.Is(err, fault.NotFound) {
					s.log.Warn("delete port after failed build", "port", portID, "err", err)
				}
			})
		}
		if err := s.recordPort(ctx, srv.ID, portID, created); err != nil {
			return nil, err
		}
		undo = append(undo, func() { _ = s.forgetPort(bg, srv.ID, portID) })
		p, err := nets.BindPort(ctx, portID, srv.ID, owner, hostname)
		if !created {
			undo = append(undo, func() {
				if err := nets.UnbindPort(bg, portID); err != nil && !fault.Is(err, fault.NotFound) {
					s.log.Warn("unbind port after failed build", "port", portID, "err", err)
				}
			})
		}
		if err != nil {
			return nil, err
		}
		nics = append(nics, nicOf(p))
	}
	return nics, nil
}

func nicOf(p *PortInfo) agentapi.NIC {
	return agentapi.NIC{PortID: p.ID, MAC: p.MAC, Bridge: bridgeName(p.NetworkID), TapName: tapName(p.ID), MTU: p.MTU}
}

// instanceNICs are the NICs of srv's ports, for rebuilding its spec.
func (s *Service) instanceNICs(ctx context.Context, srv *Server) ([]agentapi.NIC, error) {
	if _, ok := planOf(srv.Networks); !ok || s.cfg.Networks == nil {
		return nil, nil
	}
	ports, err := s.cfg.Networks.DevicePorts(ctx, srv.ID)
	if err != nil {
		return nil, err
	}
	nics := make([]agentapi.NIC, 0, len(ports))
	for i := range ports {
		nics = append(nics, nicOf(&ports[i]))
	}
	return nics, nil
}

// releasePorts deletes the ports compute created for instance id and
// unbinds the pre-created ones, as Nova's deallocate_for_instance.
func (s *Service) releasePorts(ctx context.Context, id string) {
	if s.cfg.Networks == nil {
		return
	}
	ctx = context.WithoutCancel(ctx)
	rows, err := s.db.QueryContext(ctx, `SELECT port_id, created_by_compute FROM compute_instance_ports WHERE instance_uuid = ?`, id)
	if err != nil {
		s.log.Error("list instance ports", "instance", id, "err", err)
		return
	}
	type row struct {
		port    string
		created bool
	}
	var list []row
	for rows.Next() {
		var r row
		var c int
		if err := rows.Scan(&r.port, &c); err != nil {
			rows.Close()
			s.log.Error("list instance ports", "instance", id, "err", err)
			return
		}
		r.created = c != 0
		list = append(list, r)
	}
	rows.Close()
	for _, r := range list {
		s.releasePort(ctx, id, r.port, r.created)
	}
}

// releasePort deletes port if compute created it for instance, else
// unbinds it, and forgets it.
func (s *Service) releasePort(ctx context.Context, instance, port string, created bool) {
	ctx = context.WithoutCancel(ctx)
	var err error
	if created {
		err = s.cfg.Networks.DeletePort(ctx, port)
	} else {
		err = s.cfg.Networks.UnbindPort(ctx, port)
	}
	if err != nil && !fault.Is(err, fault.NotFound) {
		s.log.Warn("release port", "instance", instance, "port", port, "err", err)
		return
	}
	if err := s.forgetPort(ctx, instance, port); err != nil {
		s.log.Warn("forget port", "instance", instance, "port", port, "err", err)
	}
}

func (s *Service) recordPort(ctx context.Context, instance, port string, created bool) error {
	c := 0
	if created {
		c = 1
	}
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO compute_instance_ports (instance_uuid, port_id, created_by_compute) VALUES (?, ?, ?)`,
			instance, port, c)
		return err
	})
}

func (s *Service) forgetPort(ctx context.Context, instance, port string) error {
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM compute_instance_ports WHERE instance_uuid = ? AND port_id = ?`, instance, port)
		return err
	})
}

// Address is one address of a server in its addresses view.
type Address struct {
	Version int
	Addr    string
	MAC     string
	// Floating marks a floating IP (OS-EXT-IPS:type "floating").
	Floating bool
}

// AddressNetwork is the addresses of a server on one network.
type AddressNetwork struct {
	Network   string
	Addresses []Address
}

// ServerAddresses returns srv's addresses by network name, in port order.
// A server without networks (or without networking) has none.
func (s *Service) ServerAddresses(ctx context.Context, srv *Server) ([]AddressNetwork, error) {
	if _, ok := planOf(srv.Networks); !ok || s.cfg.Networks == nil || srv.Deleted {
		return nil, nil
	}
	ports, err := s.cfg.Networks.DevicePorts(ctx, srv.ID)
	if err != nil {
		return nil, err
	}
	var out []AddressNetwork
	idx := map[string]int{}
	for _, p := range ports {
		name := p.NetworkName
		if name == "" {
			name = p.NetworkID
		}
		i, ok := idx[name]
		if !ok {
			i = len(out)
			idx[name] = i
			out = append(out, AddressNetwork{Network: name})
		}
		for _, ip := range p.FixedIPs {
			v := 4
			if strings.Contains(ip.IP, ":") {
				v = 6
			}
			out[i].Addresses = append(out[i].Addresses, Address{Version: v, Addr: ip.IP, MAC: p.MAC})
		}
		for _, f := range p.FloatingIPs {
			out[i].Addresses = append(out[i].Addresses, Address{Version: 4, Addr: f, MAC: p.MAC, Floating: true})
		}
	}
	return out, nil
}

// networkData is the config drive's network_data.json for nics: each NIC a
// link configured by DHCP.
func networkData(nics []agentapi.NIC) []byte {
	links := []any{}
	networks := []any{}
	for i, n := range nics {
		links = append(links, map[string]any{"id": n.TapName, "vif_id": n.PortID, "type": "phy",
			"ethernet_mac_address": n.MAC, "mtu": n.MTU})
		networks = append(networks, map[string]any{"id": fmt.Sprintf("network%d", i), "type": "ipv4_dhcp",
			"link": n.TapName})
	}
	return []byte(toJSON(map[string]any{"links": links, "networks": networks, "services": []any{}}))
}
