package compute

import "github.com/nimbus-cloud/nimbus/backend/platform/policy"

// Policy rule checks, following Nova's defaults. Tokens carry implied roles
// (admin implies member implies reader), so "role:reader" also passes for
// members and admins.
const (
	ruleAdmin          = "rule:admin_required"
	ruleAny            = ""
	ruleProjectReader  = "rule:admin_required or (role:reader and project_id:%(project_id)s)"
	ruleProjectMember  = "rule:admin_required or (role:member and project_id:%(project_id)s)"
	ruleKeypairOwner   = "rule:admin_required or user_id:%(user_id)s"
	ruleAnyReader      = "rule:admin_required or role:reader"
	policyListAll      = "os_compute_api:servers:detail:get_all_tenants"
	policyAllFilters   = "os_compute_api:servers:allow_all_filters"
	policyHostStatus   = "os_compute_api:servers:show:host_status"
	policyExtAttrs     = "os_compute_api:os-extended-server-attributes"
	policyForcedHost   = "os_compute_api:servers:create:forced_host"
	policyUnlockOver   = "os_compute_api:os-lock-server:unlock:unlock_override"
	policyEventDetails = "os_compute_api:os-instance-actions:events:details"
	policyEvents       = "os_compute_api:os-instance-actions:events"
	policyFaultDetails = "os_compute_api:servers:show:fault_details"
)

// PolicyRules returns compute's default policy with Nova's action names,
// BaseRules included (registering them twice is harmless). An admin may do
// everything; a project's members manage its servers, server groups and
// their own key pairs; its readers see them; flavors, availability zones
// and limits are visible to any token; hosts, aggregates, services and
// hypervisors are for admins.
func PolicyRules() []policy.Rule {
	r := func(name, check, desc string) policy.Rule {
		return policy.Rule{Name: name, Check: check, Description: desc}
	}
	rules := policy.BaseRules()
	rules = append(rules,
		// Flavors.
		r("os_compute_api:os-flavor-manage:create", ruleAdmin, "Create a flavor."),
		r("os_compute_api:os-flavor-manage:update", ruleAdmin, "Update a flavor's description."),
		r("os_compute_api:os-flavor-manage:delete", ruleAdmin, "Delete a flavor."),
		r("os_compute_api:os-flavor-extra-specs:index", ruleAnyReader, "List a flavor's extra specs."),
		r("os_compute_api:os-flavor-extra-specs:show", ruleAnyReader, "Show a flavor extra spec."),
		r("os_compute_api:os-flavor-extra-specs:create", ruleAdmin, "Create flavor extra specs."),
		r("os_compute_api:os-flavor-extra-specs:update", ruleAdmin, "Update a flavor extra spec."),
		r("os_compute_api:os-flavor-extra-specs:delete", ruleAdmin, "Delete a flavor extra spec."),
		r("os_compute_api:os-flavor-access", ruleAdmin, "List the projects with access to a private flavor."),
		r("os_compute_api:os-flavor-access:add_tenant_access", ruleAdmin, "Give a project access to a private flavor."),
		r("os_compute_api:os-flavor-access:remove_tenant_access", ruleAdmin, "Take a project's access to a private flavor."),

		// Key pairs belong to users.
		r("os_compute_api:os-keypairs:index", ruleKeypairOwner, "List key pairs."),
		r("os_compute_api:os-keypairs:create", ruleKeypairOwner, "Create or import a key pair."),
		r("os_compute_api:os-keypairs:show", ruleKeypairOwner, "Show a key pair."),
		r("os_compute_api:os-keypairs:delete", ruleKeypairOwner, "Delete a key pair."),

		// Servers.
		r("os_compute_api:servers:index", ruleProjectReader, "List servers."),
		r("os_compute_api:servers:detail", ruleProjectReader, "List servers with details."),
		r("os_compute_api:servers:index:get_all_tenants", ruleAdmin, "List servers of every project."),
		r(policyListAll, ruleAdmin, "List servers of every project with details."),
		r(policyAllFilters, ruleAdmin, "Filter server lists by any attribute (host, ...)."),
		r("os_compute_api:servers:show", ruleProjectReader, "Show a server."),
		r(policyHostStatus, ruleAdmin, "See the host_status of a server."),
		r(policyFaultDetails, ruleAdmin, "See the details of a server's fault."),
		r(policyExtAttrs, ruleAdmin, "See a server's OS-EXT-SRV-ATTR attributes (host, instance name)."),
		r("os_compute_api:servers:create", ruleProjectMember, "Create a server."),
		r(policyForcedHost, ruleAdmin, "Create a server on a named host (availability_zone zone:host)."),
		r("os_compute_api:servers:update", ruleProjectMember, "Update a server."),
		r("os_compute_api:servers:delete", ruleProjectMember, "Delete a server."),
		r("os_compute_api:servers:start", ruleProjectMember, "Start a server."),
		r("os_compute_api:servers:stop", ruleProjectMember, "Stop a server."),
		r("os_compute_api:servers:reboot", ruleProjectMember, "Reboot a server."),
		r("os_compute_api:servers:rebuild", ruleProjectMember, "Rebuild a server."),
		r("os_compute_api:servers:resize", ruleProjectMember, "Resize a server."),
		r("os_compute_api:servers:confirm_resize", ruleProjectMember, "Confirm a resize."),
		r("os_compute_api:servers:revert_resize", ruleProjectMember, "Revert a resize."),
		r("os_compute_api:servers:create_image", ruleProjectMember, "Snapshot a server to an image."),
		r("os_compute_api:os-pause-server:pause", ruleProjectMember, "Pause a server."),
		r("os_compute_api:os-pause-server:unpause", ruleProjectMember, "Unpause a server."),
		r("os_compute_api:os-suspend-server:suspend", ruleProjectMember, "Suspend a server."),
		r("os_compute_api:os-suspend-server:resume", ruleProjectMember, "Resume a suspended server."),
		r("os_compute_api:os-lock-server:lock", ruleProjectMember, "Lock a server."),
		r("os_compute_api:os-lock-server:unlock", ruleProjectMember, "Unlock a server."),
		r(policyUnlockOver, ruleAdmin, "Unlock a server an admin locked."),
		r("os_compute_api:os-console-output", ruleProjectMember, "Show a server's console output."),
		r("os_compute_api:os-remote-consoles", ruleProjectMember, "Open a server's remote console."),
		r("os_compute_api:server-metadata:index", ruleProjectReader, "List a server's metadata."),
		r("os_compute_api:server-metadata:show", ruleProjectReader, "Show a server metadata item."),
		r("os_compute_api:server-metadata:create", ruleProjectMember, "Create server metadata."),
		r("os_compute_api:server-metadata:update", ruleProjectMember, "Update a server metadata item."),
		r("os_compute_api:server-metadata:update_all", ruleProjectMember, "Replace a server's metadata."),
		r("os_compute_api:server-metadata:delete", ruleProjectMember, "Delete a server metadata item."),
		r("os_compute_api:os-instance-actions:list", ruleProjectReader, "List a server's actions."),
		r("os_compute_api:os-instance-actions:show", ruleProjectReader, "Show a server action."),
		r(policyEvents, ruleAdmin, "See the events of a server action."),
		r(policyEventDetails, ruleAdmin, "See the details of server action events."),
		r("os_compute_api:os-attach-interfaces:list", ruleProjectReader, "List a server's interfaces."),
		r("os_compute_api:os-attach-interfaces:show", ruleProjectReader, "Show a server's interface."),
		r("os_compute_api:os-attach-interfaces:create", ruleProjectMember, "Attach an interface to a server."),
		r("os_compute_api:os-attach-interfaces:delete", ruleProjectMember, "Detach an interface from a server."),
		r("os_compute_api:os-floating-ips:add", ruleProjectMember, "Associate a floating IP with a server (addFloatingIp)."),
		r("os_compute_api:os-floating-ips:remove", ruleProjectMember, "Disassociate a floating IP from a server (removeFloatingIp)."),

		// Zones, hosts and their grouping.
		r("os_compute_api:os-availability-zone:list", ruleAny, "List availability zones."),
		r("os_compute_api:os-availability-zone:detail", ruleAdmin, "List availability zones with their hosts."),
		r("os_compute_api:os-hypervisors:list", ruleAdmin, "List hypervisors."),
		r("os_compute_api:os-hypervisors:list-detail", ruleAdmin, "List hypervisors with details."),
		r("os_compute_api:os-hypervisors:show", ruleAdmin, "Show a hypervisor."),
		r("os_compute_api:os-hypervisors:statistics", ruleAdmin, "Show hypervisor statistics."),
		r("os_compute_api:os-hypervisors:uptime", ruleAdmin, "Show a hypervisor's uptime."),
		r("os_compute_api:os-hypervisors:servers", ruleAdmin, "List the servers on a hypervisor."),
		r("os_compute_api:os-services:list", ruleAdmin, "List compute services."),
		r("os_compute_api:os-services:update", ruleAdmin, "Enable, disable or force down a compute service."),
		r("os_compute_api:os-services:delete", ruleAdmin, "Delete a compute service."),
		r("os_compute_api:os-aggregates:index", ruleAdmin, "List aggregates."),
		r("os_compute_api:os-aggregates:create", ruleAdmin, "Create an aggregate."),
		r("os_compute_api:os-aggregates:show", ruleAdmin, "Show an aggregate."),
		r("os_compute_api:os-aggregates:update", ruleAdmin, "Update an aggregate."),
		r("os_compute_api:os-aggregates:delete", ruleAdmin, "Delete an aggregate."),
		r("os_compute_api:os-aggregates:add_host", ruleAdmin, "Add a host to an aggregate."),
		r("os_compute_api:os-aggregates:remove_host", ruleAdmin, "Remove a host from an aggregate."),
		r("os_compute_api:os-aggregates:set_metadata", ruleAdmin, "Set an aggregate's metadata."),
		r("os_compute_api:os-server-groups:create", ruleProjectMember, "Create a server group."),
		r("os_compute_api:os-server-groups:delete", ruleProjectMember, "Delete a server group."),
		r("os_compute_api:os-server-groups:index", ruleProjectReader, "List server groups."),
		r("os_compute_api:os-server-groups:index:all_projects", ruleAdmin, "List every project's server groups."),
		r("os_compute_api:os-server-groups:show", ruleProjectReader, "Show a server group."),

		// Quotas, limits and usage.
		r("os_compute_api:os-quota-sets:show", ruleProjectReader, "Show a project's quotas."),
		r("os_compute_api:os-quota-sets:update", ruleAdmin, "Update a project's quotas."),
		r("os_compute_api:os-quota-sets:delete", ruleAdmin, "Reset a project's quotas to the defaults."),
		r("os_compute_api:os-quota-sets:defaults", ruleAny, "Show the default quotas."),
		r("os_compute_api:os-quota-sets:detail", ruleProjectReader, "Show a project's quotas with usage."),
		r("os_compute_api:limits", ruleAny, "Show the caller's limits."),
		r("os_compute_api:limits:other_project", ruleAdmin, "Show another project's limits."),
		r("os_compute_api:os-simple-tenant-usage:list", ruleAdmin, "Show usage of every project."),
		r("os_compute_api:os-simple-tenant-usage:show", ruleProjectReader, "Show a project's usage."),
	)
	return rules
}
