package image

import (
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/backend/platform/policy"
)

// visible reports whether c may see img at all, given c's membership
// status on it (""): admins see everything, a project its own images,
// everyone public and community images, and a member a shared image
// whatever its membership status (listings show only accepted ones).
func (s *Service) visible(c *auth.Credentials, img *Image, member string) bool {
	if s.isAdmin(c) {
		return true
	}
	if img.Owner != "" && img.Owner == c.ProjectID {
		return true
	}
	switch img.Visibility {
	case VisibilityPublic, VisibilityCommunity:
		return true
	case VisibilityShared:
		return member != ""
	}
	return false
}

// target is the policy target of img for c.
func target(c *auth.Credentials, img *Image, member string) policy.Target {
	t := policy.Target{"project_id": img.Owner, "owner": img.Owner, "visibility": img.Visibility}
	if member != "" {
		t["member_id"] = c.ProjectID
	}
	return t
}

// access answers NotFound for an image c may not see and otherwise checks
// action on it.
func (s *Service) access(c *auth.Credentials, img *Image, member, action string) error {
	if !s.visible(c, img, member) {
		return notFound(img.ID)
	}
	return s.pol.Enforce(action, c, target(c, img, member))
}

// checkVisibilityChange enforces publicize_image or communitize_image when
// an image becomes (or is created) public or community.
func (s *Service) checkVisibilityChange(c *auth.Credentials, img *Image, from string) error {
	if img.Visibility == from {
		return nil
	}
	t := policy.Target{"project_id": img.Owner, "owner": img.Owner, "visibility": img.Visibility}
	switch img.Visibility {
	case VisibilityPublic:
		return s.pol.Enforce("publicize_image", c, t)
	case VisibilityCommunity:
		return s.pol.Enforce("communitize_image", c, t)
	}
	return nil
}

// CreateImage registers a new image, status queued, for the caller. The
// writable attributes of in are used: ID (a UUID; generated when empty),
// Name, Visibility (shared when empty, as Glance), Owner (the caller's
// project when empty; another project needs admin), Protected, Hidden,
// DiskFormat, ContainerFormat, MinDisk, MinRAM, Tags and Properties; the
// rest is ignored. Faults: Unauthorized, Forbidden (policy, or a reserved
// property), Invalid, Conflict (the ID exists or existed), TooLarge (the
// project's image count quota, or too many tags or properties).
func (s *Service) CreateImage(ctx context.Context, in Image) (*Image, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	img := newImage(in, c.ProjectID, s.now())
	if err := validateImage(img); err != nil {
		return nil, err
	}
	t := policy.Target{"project_id": img.Owner, "owner": img.Owner, "visibility": img.Visibility}
	if err := s.pol.Enforce("add_image", c, t); err != nil {
		return nil, err
	}
	if err := s.checkVisibilityChange(c, img, ""); err != nil {
		return nil, err
	}
	if err := s.st.createImage(ctx, img, s.cfg.ImageQuota); err != nil {
		return nil, err
	}
	out, _, err := s.st.image(ctx, img.ID, "")
	return out, err
}

// newImage is the record CreateImage stores for in.
func newImage(in Image, project string, now time.Time) *Image {
	img := &Image{
		ID: in.ID, Name: in.Name, Status: StatusQueued, Visibility: in.Visibility, Owner: in.Owner,
		Protected: in.Protected, Hidden: in.Hidden, DiskFormat: in.DiskFormat, ContainerFormat: in.ContainerFormat,
		MinDisk: in.MinDisk, MinRAM: in.MinRAM,
		Tags:       dedupe(in.Tags),
		Properties: maps.Clone(in.Properties),
		CreatedAt:  now,
		UpdatedAt:  now,
	}
	if img.ID == "" {
		img.ID = newID()
	}
	if img.Visibility == "" {
		img.Visibility = VisibilityShared
	}
	if img.Owner == "" {
		img.Owner = project
	}
	if img.Properties == nil {
		img.Properties = map[string]string{}
	}
	return img
}

func dedupe(ss []string) []string {
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// GetImage returns an image the caller may see. Faults: Unauthorized,
// NotFound (missing, deleted, or not visible to the caller), Forbidden.
func (s *Service) GetImage(ctx context.Context, id string) (*Image, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	img, member, err := s.st.image(ctx, id, c.ProjectID)
	if fault.Is(err, fault.NotFound) {
		return nil, notFound(id)
	}
	if err != nil {
		return nil, err
	}
	if err := s.access(c, img, member, "get_image"); err != nil {
		return nil, err
	}
	return img, nil
}

// ListImages returns one page of the images the caller may see that match
// f, and whether more follow. Faults: Unauthorized, Forbidden, Invalid (a
// bad filter, sort key or marker).
func (s *Service) ListImages(ctx context.Context, f ListFilter) ([]Image, bool, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return nil, false, err
	}
	if err := s.pol.Enforce("get_images", c, policy.Target{"project_id": c.ProjectID}); err != nil {
		return nil, false, err
	}
	if err := normalizeFilter(&f); err != nil {
		return nil, false, err
	}
	var marker *Image
	if f.Marker != "" {
		img, member, err := s.st.image(ctx, f.Marker, c.ProjectID)
		if err == nil && !s.visible(c, img, member) {
			err = notFound(f.Marker)
		}
		if fault.Is(err, fault.NotFound) {
			return nil, false, fault.Invalidf("Invalid marker. Image %s could not be found.", f.Marker)
		}
		if err != nil {
			return nil, false, err
		}
		marker = img
	}
	return s.st.listImages(ctx, viewer{project: c.ProjectID, admin: s.isAdmin(c)}, f, marker)
}

// Sort keys an image listing accepts, as Glance.
var sortKeys = []string{"name", "status", "container_format", "disk_format", "size", "id", "created_at", "updated_at"}

// normalizeFilter validates f and fills its defaults.
func normalizeFilter(f *ListFilter) error {
	switch f.Visibility {
	case "", VisibilityPublic, VisibilityPrivate, VisibilityShared, VisibilityCommunity, "all":
	default:
		return fault.Invalidf("Invalid visibility value: %s", f.Visibility)
	}
	switch f.MemberStatus {
	case "", MemberPending, MemberAccepted, MemberRejected, "all":
	default:
		return fault.Invalidf("Invalid status: %s", f.MemberStatus)
	}
	for _, tf := range append(slices.Clone(f.CreatedAt), f.UpdatedAt...) {
		if _, ok := timeOps[tf.Op]; !ok {
			return fault.Invalidf("Invalid operator %s for a date filter; use one of eq, neq, gt, gte, lt, lte.", tf.Op)
		}
	}
	if len(f.SortKeys) == 0 {
		f.SortKeys = []string{"created_at"}
	}
	for _, k := range f.SortKeys {
		if !slices.Contains(sortKeys, k) {
			return fault.Invalidf("Invalid sort key: %s. It must be one of the following: %s.", k, strings.Join(sortKeys, ", "))
		}
	}
	if len(f.SortDirs) == 0 {
		f.SortDirs = []string{"desc"}
	}
	for _, d := range f.SortDirs {
		if d != "asc" && d != "desc" {
			return fault.Invalidf("Invalid sort direction: %s", d)
		}
	}
	switch {
	case len(f.SortDirs) == len(f.SortKeys):
	case len(f.SortDirs) == 1:
		for len(f.SortDirs) < len(f.SortKeys) {
			f.SortDirs = append(f.SortDirs, f.SortDirs[0])
		}
	default:
		return fault.Invalidf("Number of sort dirs does not match the number of sort keys")
	}
	if f.Limit < 0 {
		return fault.Invalidf("limit param must be positive")
	}
	if f.Limit == 0 {
		f.Limit = defaultPageSize
	}
	f.Limit = min(f.Limit, maxPageSize)
	return nil
}

// UpdateImage applies changes to an image in order, all or nothing.
// Making an image public needs publicize_image, community
// communitize_image; only an admin changes the owner; the disk and
// container formats change only while the image is queued. Faults:
// Unauthorized, NotFound, Forbidden (policy, a read-only or reserved
// attribute, removing a base attribute), Conflict (replacing or removing a
// custom property that does not exist), Invalid, TooLarge (too many tags
// or properties).
func (s *Service) UpdateImage(ctx context.Context, id string, changes []Change) (*Image, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	return s.st.updateImage(ctx, id, c.ProjectID, s.now(), func(img *Image, member string) error {
		if err := s.access(c, img, member, "modify_image"); err != nil {
			return err
		}
		if len(changes) == 0 {
			return errNoChange
		}
		before := *img
		for _, ch := range changes {
			if err := applyChange(img, ch); err != nil {
				return err
			}
		}
		if err := validateImage(img); err != nil {
			return err
		}
		if img.Owner != before.Owner && !s.isAdmin(c) {
			return fault.Forbiddenf("Owner can't be updated by non admin.")
		}
		for _, f := range []struct{ name, was, now string }{
			{"container_format", before.ContainerFormat, img.ContainerFormat},
			{"disk_format", before.DiskFormat, img.DiskFormat},
		} {
			if f.was != f.now && img.Status != StatusQueued {
				return fault.Forbiddenf("Attribute %s can be only replaced for a queued image.", f.name)
			}
		}
		return s.checkVisibilityChange(c, img, before.Visibility)
	})
}

// applyChange applies one patch operation to img, with Glance's answers
// for each case.
func applyChange(img *Image, ch Change) error {
	name := ch.Path
	if err := checkWritable(name); err != nil {
		return err
	}
	_, isProp := img.Properties[name]
	switch ch.Op {
	case "replace":
		if !isBaseAttr(name) && !isProp {
			return fault.Conflictf("Property %s does not exist.", name)
		}
		return setAttr(img, name, ch.Value)
	case "add":
		if ch.Draft4 && (isBaseAttr(name) || isProp) {
			return fault.Conflictf("Property %s already present.", name)
		}
		return setAttr(img, name, ch.Value)
	case "remove":
		if isBaseAttr(name) {
			return fault.Forbiddenf("Property %s may not be removed.", name)
		}
		if !isProp {
			return fault.Conflictf("Property %s does not exist.", name)
		}
		delete(img.Properties, name)
		return nil
	}
	return fault.Invalidf("Invalid operation: `%s`. It must be one of the following: add, remove, replace.", ch.Op)
}

// AddTag tags an image; adding a tag it has is a no-op. Faults:
// Unauthorized, NotFound, Forbidden, Invalid, TooLarge (too many tags).
func (s *Service) AddTag(ctx context.Context, id, tag string) error {
	c, err := auth.Caller(ctx)
	if err != nil {
		return err
	}
	if err := checkTag(tag); err != nil {
		return err
	}
	_, err = s.st.updateImage(ctx, id, c.ProjectID, s.now(), func(img *Image, member string) error {
		if err := s.access(c, img, member, "modify_image"); err != nil {
			return err
		}
		if slices.Contains(img.Tags, tag) {
			return errNoChange
		}
		img.Tags = append(img.Tags, tag)
		return validateImage(img)
	})
	return err
}

// DeleteTag removes a tag from an image. Faults: Unauthorized, NotFound
// (the image or the tag), Forbidden.
func (s *Service) DeleteTag(ctx context.Context, id, tag string) error {
	c, err := auth.Caller(ctx)
	if err != nil {
		return err
	}
	_, err = s.st.updateImage(ctx, id, c.ProjectID, s.now(), func(img *Image, member string) error {
		if err := s.access(c, img, member, "modify_image"); err != nil {
			return err
		}
		i := slices.Index(img.Tags, tag)
		if i < 0 {
			return fault.NotFoundf("Tag %s not found.", tag)
		}
		img.Tags = slices.Delete(img.Tags, i, i+1)
		return nil
	})
	return err
}

// Deactivate makes an active image's data unavailable to non-admins
// (deactivating a deactivated image is a no-op). Faults: Unauthorized,
// NotFound, Forbidden (policy, or an image that is not active).
func (s *Service) Deactivate(ctx context.Context, id string) error {
	return s.transition(ctx, id, "deactivate", StatusActive, StatusDeactivated)
}

// Reactivate makes a deactivated image active again (reactivating an
// active image is a no-op). Faults: Unauthorized, NotFound, Forbidden.
func (s *Service) Reactivate(ctx context.Context, id string) error {
	return s.transition(ctx, id, "reactivate", StatusDeactivated, StatusActive)
}

func (s *Service) transition(ctx context.Context, id, action, from, to string) error {
	c, err := auth.Caller(ctx)
	if err != nil {
		return err
	}
	_, err = s.st.updateImage(ctx, id, c.ProjectID, s.now(), func(img *Image, member string) error {
		if err := s.access(c, img, member, action); err != nil {
			return err
		}
		switch img.Status {
		case to:
			return errNoChange
		case from:
			img.Status = to
			return nil
		}
		return fault.Forbiddenf("Not allowed to %s image in status '%s'", action, img.Status)
	})
	return err
}
