package network

import "github.com/nimbus-cloud/nimbus/backend/platform/policy"

// Checks shared by several actions. Targets carry the resource's
// "project_id" and, for resources on a network, the network's
// "network:project_id", "network:shared" and "network:router:external"
// ("True" or "False"); network targets carry "shared" and
// "router:external". A port target carries "network_device", "True" when
// its device_owner starts with "network:".
const (
	ruleAdmin       = "rule:admin_required"
	ruleAdminOrSvc  = "rule:admin_required or rule:service_role"
	ruleMember      = "rule:admin_required or rule:project_member"
	ruleReader      = "rule:admin_required or rule:project_reader"
	ruleNetMember   = "rule:admin_required or rule:project_member or rule:project_netadmin"
	ruleNetReader   = "rule:admin_required or rule:project_reader or rule:project_netadmin"
	ruleNetOwner    = "rule:admin_required or rule:service_role or (role:member and project_id:%(network:project_id)s)"
	ruleNetOwnerAny = "rule:admin_required or rule:service_role or project_id:%(network:project_id)s"
	rulePortMember  = "rule:admin_required or rule:service_role or rule:project_member or " +
		"(role:member and project_id:%(network:project_id)s)"
	rulePortReader = "rule:admin_required or rule:service_role or rule:project_reader or rule:project_netadmin or " +
		"(role:reader and project_id:%(network:project_id)s)"
	ruleSubnetReader = "rule:admin_required or rule:service_role or rule:project_reader or rule:project_netadmin or " +
		"'True':%(network:shared)s or 'True':%(network:router:external)s"
)

// PolicyRules returns the network service's default policy with Neutron's
// action names, BaseRules included (registering them twice is harmless).
// It follows Neutron's defaults: members manage their project's networks,
// subnets and ports; readers see them; everyone sees shared and external
// networks and their subnets; only admins create shared, external or
// provider networks, bind ports to hosts, choose MAC addresses and fixed
// IPs on networks they do not own, or pick a floating IP's address; the
// netadmin role manages its project's routers, floating IPs and security
// groups alongside members. The service role (the compute service acting
// for an instance) may create, bind and delete ports.
func PolicyRules() []policy.Rule {
	r := func(name, check, desc string) policy.Rule {
		return policy.Rule{Name: name, Check: check, Description: desc}
	}
	rules := policy.BaseRules()
	rules = append(rules,
		r("context_is_admin", "role:admin", "The caller sees and manages every project's networking."),
		r("context_is_advsvc", "role:service", "The caller (a service such as compute) sees every project's networks, subnets and ports."),

		// Networks.
		r("create_network", ruleMember, "Create a network."),
		r("create_network:shared", ruleAdmin, "Create a shared network."),
		r("create_network:router:external", ruleAdmin, "Create an external network."),
		r("create_network:provider:network_type", ruleAdmin, "Choose a network's type."),
		r("create_network:provider:physical_network", ruleAdmin, "Choose a network's physical network."),
		r("create_network:provider:segmentation_id", ruleAdmin, "Choose a network's segmentation ID."),
		r("create_network:port_security_enabled", ruleMember, "Set a network's port security default."),
		r("get_network", ruleNetReader+" or rule:service_role or 'True':%(shared)s or 'True':%(router:external)s",
			"Show a network: its project, and everyone for shared and external networks."),
		r("get_network:provider:network_type", ruleAdmin, "See a network's type."),
		r("get_network:provider:physical_network", ruleAdmin, "See a network's physical network."),
		r("get_network:provider:segmentation_id", ruleAdmin, "See a network's segmentation ID."),
		r("update_network", ruleMember, "Update a network."),
		r("update_network:shared", ruleAdmin, "Share or unshare a network."),
		r("update_network:router:external", ruleAdmin, "Make a network external or not."),
		r("delete_network", ruleMember, "Delete a network."),

		// Subnets.
		r("create_subnet", ruleNetOwner, "Create a subnet on a network the caller's project owns."),
		r("get_subnet", ruleSubnetReader, "Show a subnet."),
		r("update_subnet", ruleNetOwner, "Update a subnet."),
		r("delete_subnet", ruleNetOwner, "Delete a subnet."),

		// Ports.
		r("create_port", "rule:admin_required or rule:service_role or (role:member and project_id:%(project_id)s and "+
			"(project_id:%(network:project_id)s or 'True':%(network:shared)s))",
			"Create a port on the caller's own network or a shared one."),
		r("create_port:device_owner", "rule:admin_required or rule:service_role or 'False':%(network_device)s or "+
			"project_id:%(network:project_id)s", "Create a port owned by the networking service (network:*)."),
		r("create_port:mac_address", ruleNetOwnerAny, "Choose a port's MAC address."),
		r("create_port:fixed_ips:ip_address", ruleNetOwnerAny, "Choose a port's IP address."),
		r("create_port:fixed_ips:subnet_id", ruleNetOwnerAny+" or 'True':%(network:shared)s", "Choose a port's subnet."),
		r("create_port:port_security_enabled", ruleNetOwner, "Turn a port's port security off or on."),
		r("create_port:binding:host_id", ruleAdminOrSvc, "Bind a port to a host."),
		r("create_port:binding:profile", ruleAdminOrSvc, "Set a port's binding profile."),
		r("create_port:binding:vnic_type", rulePortMember, "Choose a port's VNIC type."),
		r("create_port:allowed_address_pairs", ruleNetOwner, "Set a port's allowed address pairs."),
		r("get_port", rulePortReader, "Show a port: its project and its network's project."),
		r("get_port:binding:vif_type", ruleAdminOrSvc, "See a port's VIF type."),
		r("get_port:binding:vif_details", ruleAdminOrSvc, "See a port's VIF details."),
		r("get_port:binding:host_id", ruleAdminOrSvc, "See the host a port is bound to."),
		r("get_port:binding:profile", ruleAdminOrSvc, "See a port's binding profile."),
		r("update_port", rulePortMember, "Update a port."),
		r("update_port:device_owner", "rule:admin_required or rule:service_role or 'False':%(network_device)s or "+
			"project_id:%(network:project_id)s", "Give a port a network:* device owner."),
		r("update_port:mac_address", ruleAdminOrSvc, "Change a port's MAC address."),
		r("update_port:fixed_ips:ip_address", ruleNetOwnerAny, "Change a port's IP addresses."),
		r("update_port:fixed_ips:subnet_id", ruleNetOwnerAny+" or 'True':%(network:shared)s", "Change a port's subnets."),
		r("update_port:port_security_enabled", ruleNetOwner, "Turn a port's port security off or on."),
		r("update_port:binding:host_id", ruleAdminOrSvc, "Bind a port to a host."),
		r("update_port:binding:profile", ruleAdminOrSvc, "Set a port's binding profile."),
		r("update_port:binding:vnic_type", rulePortMember, "Change a port's VNIC type."),
		r("update_port:allowed_address_pairs", ruleNetOwner, "Change a port's allowed address pairs."),
		r("delete_port", rulePortMember, "Delete a port."),

		// Routers.
		r("create_router", ruleNetMember, "Create a router."),
		r("create_router:external_gateway_info", ruleNetMember, "Give a new router a gateway."),
		r("create_router:external_gateway_info:enable_snat", ruleAdmin, "Choose whether a gateway does SNAT."),
		r("create_router:external_gateway_info:external_fixed_ips", ruleAdmin, "Choose a gateway's addresses."),
		r("get_router", ruleNetReader, "Show a router."),
		r("update_router", ruleNetMember, "Update a router."),
		r("update_router:external_gateway_info", ruleNetMember, "Set or clear a router's gateway."),
		r("update_router:external_gateway_info:enable_snat", ruleAdmin, "Choose whether a gateway does SNAT."),
		r("update_router:external_gateway_info:external_fixed_ips", ruleAdmin, "Choose a gateway's addresses."),
		r("delete_router", ruleNetMember, "Delete a router."),
		r("add_router_interface", ruleNetMember, "Attach a subnet or port to a router."),
		r("remove_router_interface", ruleNetMember, "Detach a subnet or port from a router."),

		// Floating IPs.
		r("create_floatingip", ruleNetMember, "Allocate a floating IP."),
		r("create_floatingip:floating_ip_address", ruleAdmin, "Choose a floating IP's address."),
		r("get_floatingip", ruleNetReader, "Show a floating IP."),
		r("update_floatingip", ruleNetMember, "Associate or disassociate a floating IP."),
		r("delete_floatingip", ruleNetMember, "Release a floating IP."),

		// Security groups.
		r("create_security_group", ruleNetMember, "Create a security group."),
		r("get_security_group", ruleNetReader, "Show a security group."),
		r("update_security_group", ruleNetMember, "Update a security group."),
		r("delete_security_group", ruleNetMember, "Delete a security group."),
		r("create_security_group_rule", ruleNetMember, "Add a security group rule."),
		r("get_security_group_rule", ruleNetReader, "Show a security group rule."),
		r("delete_security_group_rule", ruleNetMember, "Remove a security group rule."),

		// Quotas and availability.
		r("get_quota", ruleReader, "Show a project's quotas."),
		r("update_quota", ruleAdmin, "Change a project's quotas."),
		r("delete_quota", ruleAdmin, "Reset a project's quotas to the defaults."),
		r("get_agent", ruleAdmin, "List and show the hosts' network agents."),
		r("get_network_ip_availability", ruleAdmin, "Show networks' IP availability."),
	)
	return rules
}
