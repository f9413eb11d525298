package network

// Neutron's faults: each keeps the exception's name as the NeutronError
// type and its message text, since clients and operators match on both.

import (
	"fmt"
	"strings"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// invalidInput is Neutron's InvalidInput (400).
func invalidInput(format string, args ...any) error {
	return fault.Invalidf("Invalid input for operation: "+format+".", args...).WithType("InvalidInput")
}

// badRequest is Neutron's BadRequest (400) about one resource.
func badRequest(resource, format string, args ...any) error {
	return fault.Invalidf("Bad %s request: %s.", resource, fmt.Sprintf(format, args...)).WithType("BadRequest")
}

func errNetworkNotFound(id string) error {
	return fault.NotFoundf("Network %s could not be found.", id).WithType("NetworkNotFound")
}

func errSubnetNotFound(id string) error {
	return fault.NotFoundf("Subnet %s could not be found.", id).WithType("SubnetNotFound")
}

func errPortNotFound(id string) error {
	return fault.NotFoundf("Port %s could not be found.", id).WithType("PortNotFound")
}

func errRouterNotFound(id string) error {
	return fault.NotFoundf("Router %s could not be found", id).WithType("RouterNotFound")
}

func errFloatingIPNotFound(id string) error {
	return fault.NotFoundf("Floating IP %s could not be found", id).WithType("FloatingIPNotFound")
}

func errSecurityGroupNotFound(id string) error {
	return fault.NotFoundf("Security group %s does not exist", id).WithType("SecurityGroupNotFound")
}

func errSecurityGroupRuleNotFound(id string) error {
	return fault.NotFoundf("Security group rule %s does not exist", id).WithType("SecurityGroupRuleNotFound")
}

func errNetworkInUse(id string) error {
	return fault.Conflictf("Unable to complete operation on network %s. There are one or more ports still in use on the network.", id).
		WithType("NetworkInUse")
}

func errSubnetInUse(id string) error {
	return fault.Conflictf("Unable to complete operation on subnet %s: One or more ports have an IP allocation from this subnet.", id).
		WithType("SubnetInUse")
}

func errPortInUse(portID, netID, deviceID string) error {
	return fault.Conflictf("Unable to complete operation on port %s for network %s. Port already has an attached device %s.",
		portID, netID, deviceID).WithType("PortInUse")
}

func errServicePortInUse(portID, owner string) error {
	return fault.Conflictf("Port %s cannot be deleted directly via the port API: has device owner %s.", portID, owner).
		WithType("ServicePortInUse")
}

func errIPAllocated(ip, subnetID string) error {
	return fault.Conflictf("IP address %s already allocated in subnet %s", ip, subnetID).WithType("IpAddressAlreadyAllocated")
}

func errIPGeneration(netID string) error {
	return fault.Conflictf("No more IP addresses available on network %s.", netID).WithType("IpAddressGenerationFailure")
}

func errMACInUse(netID, mac string) error {
	return fault.Conflictf("Unable to complete operation for network %s. The mac address %s is in use.", netID, mac).
		WithType("MacAddressInUse")
}

func errInvalidIPForNetwork(ip string) error {
	return fault.Invalidf("IP address %s is not a valid IP for any of the subnets on the specified network.", ip).
		WithType("InvalidIpForNetwork")
}

func errInvalidIPForSubnet(ip string) error {
	return fault.Invalidf("IP address %s is not a valid IP for the specified subnet.", ip).WithType("InvalidIpForSubnet")
}

func errRouterInUse(id string) error {
	return fault.Conflictf("Router %s still has ports", id).WithType("RouterInUse")
}

func errNoNetworkAvailable() error {
	return fault.New(fault.Unavailable, "Unable to create the network. No tenant network is available for allocation.").
		WithType("NoNetworkAvailable")
}

// errOverQuota is Neutron's OverQuota: a 409 naming the resources in
// Python's list notation.
func errOverQuota(resources ...string) error {
	q := make([]string, len(resources))
	for i, r := range resources {
		q[i] = "'" + r + "'"
	}
	return fault.Conflictf("Quota exceeded for resources: [%s].", strings.Join(q, ", ")).WithType("OverQuota")
}

// fault400 is a 400 with Neutron fault type typ.
func fault400(typ, format string, args ...any) error {
	return fault.Invalidf(format, args...).WithType(typ)
}

// fault409 is a 409 with Neutron fault type typ.
func fault409(typ, format string, args ...any) error {
	return fault.Conflictf(format, args...).WithType(typ)
}

// fault503 is a 503 with Neutron fault type typ.
func fault503(typ, format string, args ...any) error {
	return fault.New(fault.Unavailable, format, args...).WithType(typ)
}

func errFIPPortAssociated(f *FloatingIP, portID, fixedIP string) error {
	return fault409("FloatingIPPortAlreadyAssociated",
		"Cannot associate floating IP %s (%s) with port %s using fixed IP %s, as that fixed IP already has a floating IP on external network %s.",
		f.FloatingIPAddress, f.ID, portID, fixedIP, f.FloatingNetworkID)
}

// notFoundType is a 404 with Neutron fault type typ.
func notFoundType(typ, format string, args ...any) error {
	return fault.NotFoundf(format, args...).WithType(typ)
}
