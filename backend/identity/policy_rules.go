package identity

import "github.com/nimbus-cloud/nimbus/backend/platform/policy"

// Policy rule checks shared by several actions. Tokens carry implied roles
// (admin implies member implies reader; project_manager implies member), so
// "role:reader" also passes for members, managers and admins.
const (
	ruleAdmin        = "rule:admin_required"
	ruleAdminOrSelf  = "rule:admin_required or user_id:%(target.user.id)s"
	ruleAny          = "" // any valid token
	ruleProjectRead  = "rule:admin_required or (role:reader and project_id:%(target.project.id)s)"
	ruleGrantManager = "rule:admin_required or (role:project_manager and project_id:%(target.project.id)s and " +
		"('member':%(target.role.name)s or 'reader':%(target.role.name)s))"
	ruleTokenOwner = "rule:admin_required or rule:service_role or user_id:%(target.token.user_id)s"
)

// PolicyRules returns identity's default policy, with Keystone's action
// names, BaseRules included (registering them twice is harmless). It follows
// Keystone's defaults: an admin may do everything; a user may see itself,
// change its own password, list its own projects, validate and revoke its
// own tokens and manage its own application credentials; a member of a
// project may see that project; a reader of a project may list the role
// assignments on it; a project_manager may also grant and revoke the member
// and reader roles on its own project, and no other role. Listing all
// projects, users or groups is for admins only.
func PolicyRules() []policy.Rule {
	r := func(name, check, desc string) policy.Rule {
		return policy.Rule{Name: name, Check: check, Description: desc}
	}
	rules := policy.BaseRules()
	rules = append(rules,
		// Tokens and the auth/* views of the caller's own token.
		r("identity:validate_token", ruleTokenOwner, "Validate a token (GET /v3/auth/tokens)."),
		r("identity:check_token", ruleTokenOwner, "Check a token (HEAD /v3/auth/tokens)."),
		r("identity:revoke_token", "rule:admin_required or user_id:%(target.token.user_id)s", "Revoke a token (DELETE /v3/auth/tokens)."),
		r("identity:revocation_list", ruleAdmin, "List revoked tokens."),
		r("identity:get_auth_projects", ruleAny, "List the projects the caller may scope to."),
		r("identity:get_auth_domains", ruleAny, "List the domains the caller may scope to."),
		r("identity:get_auth_system", ruleAny, "Whether the caller may scope to the system."),
		r("identity:get_auth_catalog", ruleAny, "Show the catalog of the caller's token."),

		// Domains.
		r("identity:get_domain", "rule:admin_required or domain_id:%(target.domain.id)s or project_domain_id:%(target.domain.id)s",
			"Show a domain: admins, and tokens scoped to the domain or a project in it."),
		r("identity:list_domains", ruleAdmin, "List domains."),
		r("identity:create_domain", ruleAdmin, "Create a domain."),
		r("identity:update_domain", ruleAdmin, "Update a domain."),
		r("identity:delete_domain", ruleAdmin, "Delete a domain."),

		// Projects.
		r("identity:get_project", "rule:admin_required or project_id:%(target.project.id)s",
			"Show a project: admins, and tokens scoped to it."),
		r("identity:list_projects", ruleAdmin, "List projects (others use /v3/auth/projects)."),
		r("identity:list_user_projects", ruleAdminOrSelf, "List a user's projects."),
		r("identity:create_project", ruleAdmin, "Create a project."),
		r("identity:update_project", ruleAdmin, "Update a project."),
		r("identity:delete_project", ruleAdmin, "Delete a project."),
		r("identity:list_project_tags", "rule:admin_required or project_id:%(target.project.id)s", "List a project's tags."),
		r("identity:get_project_tag", "rule:admin_required or project_id:%(target.project.id)s", "Check a project tag."),
		r("identity:update_project_tags", ruleAdmin, "Replace a project's tags."),
		r("identity:create_project_tag", ruleAdmin, "Add a project tag."),
		r("identity:delete_project_tag", ruleAdmin, "Remove a project tag."),
		r("identity:delete_project_tags", ruleAdmin, "Remove all of a project's tags."),

		// Users.
		r("identity:get_user", ruleAdminOrSelf, "Show a user: admins, and the user itself."),
		r("identity:list_users", ruleAdmin, "List users."),
		r("identity:create_user", ruleAdmin, "Create a user."),
		r("identity:update_user", ruleAdmin, "Update a user."),
		r("identity:delete_user", ruleAdmin, "Delete a user."),
		r("identity:change_password", ruleAdminOrSelf, "Change a user's own password (the original is still required)."),
		r("identity:list_groups_for_user", ruleAdminOrSelf, "List a user's groups."),

		// Groups.
		r("identity:get_group", ruleAdmin, "Show a group."),
		r("identity:list_groups", ruleAdmin, "List groups."),
		r("identity:create_group", ruleAdmin, "Create a group."),
		r("identity:update_group", ruleAdmin, "Update a group."),
		r("identity:delete_group", ruleAdmin, "Delete a group."),
		r("identity:list_users_in_group", ruleAdmin, "List a group's members."),
		r("identity:add_user_to_group", ruleAdmin, "Add a user to a group."),
		r("identity:remove_user_from_group", ruleAdmin, "Remove a user from a group."),
		r("identity:check_user_in_group", ruleAdmin, "Check a user's membership of a group."),

		// Roles and implied roles. Managers see roles so they can pick one
		// to grant.
		r("identity:get_role", "rule:admin_required or role:project_manager", "Show a role."),
		r("identity:list_roles", "rule:admin_required or role:project_manager", "List roles."),
		r("identity:create_role", ruleAdmin, "Create a role."),
		r("identity:update_role", ruleAdmin, "Update a role."),
		r("identity:delete_role", ruleAdmin, "Delete a role."),
		r("identity:list_implied_roles", ruleAdmin, "List the roles a role implies."),
		r("identity:list_role_inference_rules", ruleAdmin, "List every implied-role rule."),
		r("identity:create_implied_role", ruleAdmin, "Make a role imply another."),
		r("identity:delete_implied_role", ruleAdmin, "Remove an implied-role rule."),

		// Grants and assignments.
		r("identity:check_grant", ruleProjectRead, "Check a role assignment."),
		r("identity:list_grants", ruleProjectRead, "List the roles of an actor on a target."),
		r("identity:create_grant", ruleGrantManager,
			"Grant a role: admins; project managers grant member or reader on their own project."),
		r("identity:revoke_grant", ruleGrantManager,
			"Revoke a role: admins; project managers revoke member or reader on their own project."),
		r("identity:list_role_assignments", ruleProjectRead,
			"List role assignments: admins; readers of a project those on it (scope.project.id filter)."),

		// Application credentials. Creating one for someone else is refused
		// in code whatever the policy, as in Keystone.
		r("identity:get_application_credential", ruleAdminOrSelf, "Show an application credential."),
		r("identity:list_application_credentials", ruleAdminOrSelf, "List a user's application credentials."),
		r("identity:create_application_credential", "user_id:%(target.user.id)s", "Create an application credential."),
		r("identity:delete_application_credential", ruleAdminOrSelf, "Delete an application credential."),

		// Catalog. Regions are public to any token, as in Keystone.
		r("identity:get_region", ruleAny, "Show a region."),
		r("identity:list_regions", ruleAny, "List regions."),
		r("identity:create_region", ruleAdmin, "Create a region."),
		r("identity:update_region", ruleAdmin, "Update a region."),
		r("identity:delete_region", ruleAdmin, "Delete a region."),
		r("identity:get_service", ruleAdmin, "Show a catalog service."),
		r("identity:list_services", ruleAdmin, "List catalog services."),
		r("identity:create_service", ruleAdmin, "Create a catalog service."),
		r("identity:update_service", ruleAdmin, "Update a catalog service."),
		r("identity:delete_service", ruleAdmin, "Delete a catalog service."),
		r("identity:get_endpoint", ruleAdmin, "Show an endpoint."),
		r("identity:list_endpoints", ruleAdmin, "List endpoints."),
		r("identity:create_endpoint", ruleAdmin, "Create an endpoint."),
		r("identity:update_endpoint", ruleAdmin, "Update an endpoint."),
		r("identity:delete_endpoint", ruleAdmin, "Delete an endpoint."),
	)
	return rules
}
