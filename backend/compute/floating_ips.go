package compute

import (
	"context"
	"net"
	"strings"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// Nova's addFloatingIp and removeFloatingIp server actions (removed in
// 2.44): proxies to the network service's floating IP update, acting as
// the caller so the network service's own policy decides too.

// AddFloatingIP associates the caller's floating IP address with server
// id: with fixedAddress when set, else with the first IPv4 address of the
// server's ports. As in Nova, a floating IP associated with another
// server moves. Kinds: NotFound (server, floating IP), Forbidden, Invalid
// (no such fixed address, no IPv4 address, the network refused).
func (s *Service) AddFloatingIP(ctx context.Context, id, address, fixedAddress string) error {
	srv, _, err := s.serverFor(ctx, id, "os_compute_api:os-floating-ips:add")
	if err != nil {
		return err
	}
	nets := s.cfg.Networks
	if nets == nil {
		return errNoNetworking()
	}
	if ip := net.ParseIP(address); ip == nil || ip.To4() == nil {
		return fault.Invalidf("Invalid input for field/attribute address. Value: %s. '%s' is not a 'ipv4'", address, address)
	}
	var ports []PortInfo
	if _, ok := planOf(srv.Networks); ok {
		if ports, err = nets.DevicePorts(ctx, srv.ID); err != nil {
			return err
		}
	}
	portID, fixed := "", ""
	for _, p := range ports {
		for _, ip := range p.FixedIPs {
			if portID != "" {
				break
			}
			if (fixedAddress != "" && ip.IP == fixedAddress) || (fixedAddress == "" && !strings.Contains(ip.IP, ":")) {
				portID, fixed = p.ID, ip.IP
			}
		}
	}
	switch {
	case len(ports) == 0:
		return fault.Invalidf("No fixed IPs associated to instance")
	case portID == "" && fixedAddress != "":
		return fault.Invalidf("Specified fixed address not assigned to instance")
	case portID == "":
		return fault.Invalidf("Unable to associate floating IP %s to any fixed IPs for instance %s. Instance has no fixed IPv4 addresses to associate.", address, srv.ID)
	}
	fip, err := nets.FloatingIPByAddress(ctx, address)
	if fault.Is(err, fault.NotFound) {
		return fault.NotFoundf("floating IP not found")
	}
	if err != nil {
		return err
	}
	err = nets.AssociateFloatingIP(ctx, fip.ID, portID, fixed)
	if fault.Is(err, fault.Conflict) || fault.Is(err, fault.Invalid) || fault.Is(err, fault.NotFound) {
		// Nova answers every refusal of the association as a bad request.
		return fault.Invalidf("Unable to associate floating IP %s to fixed IP %s for instance %s. Error: %s", address, fixed, srv.ID, fault.Message(err))
	}
	return err
}

// RemoveFloatingIP disassociates the caller's floating IP address from
// server id. Kinds: NotFound (server, floating IP), Forbidden, Invalid,
// Conflict (not associated with this server).
func (s *Service) RemoveFloatingIP(ctx context.Context, id, address string) error {
	srv, _, err := s.serverFor(ctx, id, "os_compute_api:os-floating-ips:remove")
	if err != nil {
		return err
	}
	nets := s.cfg.Networks
	if nets == nil {
		return errNoNetworking()
	}
	if net.ParseIP(address) == nil {
		return fault.Invalidf("Invalid input for field/attribute address. Value: %s. '%s' is not a 'ip-address'", address, address)
	}
	fip, err := nets.FloatingIPByAddress(ctx, address)
	if fault.Is(err, fault.NotFound) {
		return fault.NotFoundf("floating IP not found")
	}
	if err != nil {
		return err
	}
	mine := false
	if fip.PortID != "" {
		if _, ok := planOf(srv.Networks); ok {
			ports, err := nets.DevicePorts(ctx, srv.ID)
			if err != nil {
				return err
			}
			for _, p := range ports {
				mine = mine || p.ID == fip.PortID
			}
		}
	}
	if !mine {
		return fault.Conflictf("Floating IP %s is not associated with instance %s.", address, srv.ID)
	}
	return nets.DisassociateFloatingIP(ctx, fip.ID)
}
