package image

import "github.com/nimbus-cloud/nimbus/backend/platform/policy"

// Checks built like Glance's defaults (glance/policies/base.py). Targets
// carry project_id and owner (the image's owner), visibility, and
// member_id: the caller's project when it is a member of the image, or the
// member being acted on for the member actions.
const (
	ruleAdmin         = "rule:admin_required"
	ruleAdminOrMember = "rule:admin_required or (role:member and project_id:%(project_id)s)"
	ruleAdminOrReader = "rule:admin_required or (role:reader and project_id:%(project_id)s)"
	ruleVisibleOr     = "project_id:%(project_id)s or project_id:%(member_id)s or 'community':%(visibility)s or 'public':%(visibility)s or 'shared':%(visibility)s"
	ruleGetImage      = "rule:admin_required or (role:reader and (" + ruleVisibleOr + "))"
	ruleDownloadImage = "rule:admin_required or (role:member and (" + ruleVisibleOr + "))"
	ruleCreateImage   = "rule:admin_required or (role:member and project_id:%(project_id)s and project_id:%(owner)s)"
	ruleReadMembers   = "rule:admin_required or (role:reader and (project_id:%(project_id)s or project_id:%(member_id)s))"
	ruleModifyMember  = "rule:admin_required or (role:member and project_id:%(member_id)s)"
)

// PolicyRules returns the image service's default policy with Glance's
// (unprefixed) rule names, BaseRules included (registering them twice is
// harmless). It follows Glance's defaults: readers of a project see its
// images, members change them, every project sees public and community
// images and the shared images it is a member of, only an admin makes an
// image public. Deactivating and reactivating are for admins only (Glance
// also lets the owner's members do it; a policy file can say so).
func PolicyRules() []policy.Rule {
	r := func(name, check, desc string) policy.Rule {
		return policy.Rule{Name: name, Check: check, Description: desc}
	}
	rules := policy.BaseRules()
	return append(rules,
		r("get_image", ruleGetImage, "Show an image."),
		r("get_images", ruleAdminOrReader, "List images."),
		r("add_image", ruleCreateImage, "Create an image owned by the caller's project."),
		r("modify_image", ruleAdminOrMember, "Update an image's attributes and tags."),
		r("delete_image", ruleAdminOrMember, "Delete an image."),
		r("upload_image", ruleAdminOrMember, "Upload an image's data."),
		r("download_image", ruleDownloadImage, "Download an image's data."),
		r("publicize_image", ruleAdmin, "Make an image public."),
		r("communitize_image", ruleAdminOrMember, "Make an image visible to the community."),
		r("deactivate", ruleAdmin, "Deactivate an image."),
		r("reactivate", ruleAdmin, "Reactivate an image."),
		r("add_member", ruleAdminOrMember, "Share an image with a project."),
		r("delete_member", ruleAdminOrMember, "Stop sharing an image with a project."),
		r("get_member", ruleReadMembers, "Show an image member."),
		r("get_members", ruleReadMembers, "List an image's members."),
		r("modify_member", ruleModifyMember, "Accept or reject a shared image (the member project)."),
	)
}
