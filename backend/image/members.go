package image

import (
	"context"
	"strings"
	"unicode"

	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/backend/platform/policy"
)

// memberTarget is the policy target of a member action: the image's owner
// and the member project acted on.
func memberTarget(img *Image, memberID string) policy.Target {
	t := policy.Target{"project_id": img.Owner, "owner": img.Owner, "visibility": img.Visibility}
	if memberID != "" {
		t["member_id"] = memberID
	}
	return t
}

// memberCheck returns the check every member action makes: the image is
// visible to c (else NotFound), shared (else Forbidden, as Glance) and c
// passes action on it. subject is the member project acted on, "" for the
// whole list.
func (s *Service) memberCheck(c *auth.Credentials, action, subject string) func(*Image, string) error {
	return func(img *Image, member string) error {
		if !s.visible(c, img, member) {
			return notFound(img.ID)
		}
		if img.Visibility != VisibilityShared {
			return fault.Forbiddenf("Only shared images have members.")
		}
		// Someone else's membership is none of a member's business.
		if subject != "" && !s.ownsOrAdmin(c, img) && subject != c.ProjectID {
			return fault.NotFoundf("%s not found in the member list of the image %s.", subject, img.ID)
		}
		memberID := subject
		if memberID == "" && member != "" {
			memberID = c.ProjectID
		}
		return s.pol.Enforce(action, c, memberTarget(img, memberID))
	}
}

func (s *Service) ownsOrAdmin(c *auth.Credentials, img *Image) bool {
	return s.isAdmin(c) || (img.Owner != "" && img.Owner == c.ProjectID)
}

// AddMember shares a shared image with project memberID, pending its
// acceptance. Faults: Unauthorized, NotFound, Forbidden (policy, or an
// image that is not shared), Invalid, Conflict (already a member),
// TooLarge (too many members).
func (s *Service) AddMember(ctx context.Context, imageID, memberID string) (*Member, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := checkMemberID(memberID); err != nil {
		return nil, err
	}
	return s.st.addMember(ctx, imageID, memberID, c.ProjectID, maxMembersPerImage, s.now(), s.memberCheck(c, "add_member", ""))
}

// ListMembers lists a shared image's members: all of them for its owner
// and admins, only the caller's own membership for a member. Faults:
// Unauthorized, NotFound, Forbidden (policy, or an image that is not
// shared).
func (s *Service) ListMembers(ctx context.Context, imageID string) ([]Member, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	var all bool
	check := s.memberCheck(c, "get_members", "")
	ms, err := s.st.members(ctx, imageID, c.ProjectID, true, func(img *Image, member string) error {
		all = s.ownsOrAdmin(c, img)
		return check(img, member)
	})
	if err != nil || all {
		return ms, err
	}
	var own []Member
	for _, m := range ms {
		if m.MemberID == c.ProjectID {
			own = append(own, m)
		}
	}
	return own, nil
}

// GetMember returns one membership of a shared image: to the owner, an
// admin, or the member itself; anyone else gets NotFound. Faults:
// Unauthorized, NotFound, Forbidden.
func (s *Service) GetMember(ctx context.Context, imageID, memberID string) (*Member, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	m, err := s.st.member(ctx, imageID, memberID, c.ProjectID, s.memberCheck(c, "get_member", memberID))
	if fault.Is(err, fault.Forbidden) {
		// Glance hides why a membership cannot be shown.
		return nil, fault.NotFoundf("%s not found in the member list of the image %s.", memberID, imageID)
	}
	return m, err
}

// UpdateMember sets the member's status (pending, accepted or rejected);
// by default only the member project itself may. Faults: Unauthorized,
// NotFound, Forbidden, Invalid.
func (s *Service) UpdateMember(ctx context.Context, imageID, memberID, status string) (*Member, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	switch status {
	case MemberPending, MemberAccepted, MemberRejected:
	default:
		return nil, fault.Invalidf("Provided object does not match schema 'member': '%s' is not one of ['pending', 'accepted', 'rejected'].", truncate(status, 64))
	}
	return s.st.updateMember(ctx, imageID, memberID, status, c.ProjectID, s.now(), s.memberCheck(c, "modify_member", memberID))
}

// DeleteMember stops sharing an image with a project. Faults:
// Unauthorized, NotFound, Forbidden.
func (s *Service) DeleteMember(ctx context.Context, imageID, memberID string) error {
	c, err := auth.Caller(ctx)
	if err != nil {
		return err
	}
	check := s.memberCheck(c, "delete_member", memberID)
	return s.st.deleteMember(ctx, imageID, memberID, c.ProjectID, func(img *Image, member string) error {
		if err := check(img, member); err != nil {
			return err
		}
		if !s.ownsOrAdmin(c, img) {
			return fault.Forbiddenf("You cannot delete image member.")
		}
		return nil
	})
}

func checkMemberID(id string) error {
	if id == "" || len(id) > 255 || strings.IndexFunc(id, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }) >= 0 {
		return fault.Invalidf("Provided object does not match schema 'member': member must be a project ID of 1 to 255 characters.")
	}
	return nil
}
