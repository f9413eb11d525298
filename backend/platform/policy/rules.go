package policy

// BaseRules returns the helper rules every service's defaults build on,
// following Keystone's modern defaults. The identity service makes admin
// imply member and member imply reader, as Keystone's default implied roles
// do, and tokens carry the implied roles; so "role:reader" also passes for
// members and admins, and the project_* rules need no "or" chains.
//
// A new slice is returned on each call so no caller can change another's
// defaults.
func BaseRules() []Rule {
	return []Rule{
		{Name: "admin_required", Check: "role:admin or is_admin:1",
			Description: "The caller holds the admin role."},
		{Name: "service_role", Check: "role:service",
			Description: "The caller is an OpenStack service user."},
		{Name: "owner", Check: "user_id:%(user_id)s",
			Description: "The caller is the user who owns the target."},
		{Name: "admin_or_owner", Check: "rule:admin_required or rule:owner",
			Description: "The caller is an admin or owns the target."},
		{Name: "project_reader", Check: "role:reader and project_id:%(project_id)s",
			Description: "The caller may read within the target's project."},
		{Name: "project_member", Check: "role:member and project_id:%(project_id)s",
			Description: "The caller is a member of the target's project."},
		{Name: "project_admin", Check: "role:admin and project_id:%(project_id)s",
			Description: "The caller is an admin scoped to the target's project."},
		{Name: "project_netadmin", Check: "role:netadmin and project_id:%(project_id)s",
			Description: "The caller administers networking in the target's project."},
		{Name: "project_manager", Check: "role:project_manager and project_id:%(project_id)s",
			Description: "The caller manages the target's project."},
		{Name: "itsec", Check: "role:itsec",
			Description: "The caller belongs to IT security and may act on any project's resources."},
	}
}
