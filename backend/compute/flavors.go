package compute

import (
	"cmp"
	"context"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/backend/platform/policy"
)

// Flavor is a server size: vCPUs, RAM and disks, with extra specs.
type Flavor struct {
	// ID is Nova's flavorid: any string, a UUID when the creator gives none.
	ID          string
	Name        string
	VCPUs       int64
	MemoryMB    int64
	RootGB      int64
	EphemeralGB int64
	SwapMB      int64
	RXTXFactor  float64
	IsPublic    bool
	Disabled    bool
	// Description is nil when none was set (Nova shows null).
	Description *string
	ExtraSpecs  map[string]string
	CreatedAt   time.Time
}

// FlavorFilter selects flavors to list.
type FlavorFilter struct {
	// IsPublic is honoured for admins only: nil lists public flavors, a
	// pointer to true or false lists those, and AllVisibility lists every
	// flavor. Others always see public flavors plus the private ones their
	// project was given.
	IsPublic      *bool
	AllVisibility bool
	MinRAM        int64
	MinDisk       int64
	Name          string
	// SortKey is one of id (flavorid), name, memory_mb, vcpus, root_gb,
	// swap, ephemeral_gb, rxtx_factor, created_at; "" is flavorid.
	SortKey string
	SortDir string // asc (default) or desc
	Limit   int
	Marker  string
}

// Nova's default flavors, created by EnsureDefaultFlavors.
var defaultFlavors = []Flavor{
	{ID: "1", Name: "m1.tiny", VCPUs: 1, MemoryMB: 128, RootGB: 1},
	{ID: "2", Name: "m1.small", VCPUs: 1, MemoryMB: 2048, RootGB: 20},
	{ID: "3", Name: "m1.medium", VCPUs: 2, MemoryMB: 4096, RootGB: 40},
	{ID: "4", Name: "m1.large", VCPUs: 4, MemoryMB: 8192, RootGB: 80},
}

// EnsureDefaultFlavors creates the public flavors m1.tiny (1 vCPU, 128 MiB,
// 1 GiB), m1.small, m1.medium and m1.large unless a flavor with their name
// exists; it changes nothing that exists. It acts for the operator at
// bootstrap, so it needs no credentials. Kinds: Internal.
func (s *Service) EnsureDefaultFlavors(ctx context.Context) error {
	for _, f := range defaultFlavors {
		f.IsPublic, f.RXTXFactor, f.CreatedAt = true, 1.0, s.now()
		if err := s.st.ensureFlavor(ctx, &f); err != nil {
			return err
		}
	}
	return nil
}

var flavorIDPattern = regexp.MustCompile(`^[\w\.\- ]*$`)

// validateFlavor checks a new flavor as Nova's schema does.
func validateFlavor(f *Flavor) error {
	name := f.Name
	if len(name) == 0 || len(name) > 255 || strings.TrimSpace(name) != name {
		return fault.Invalidf("Invalid input for field/attribute name. Value: %s. A flavor name must be 1 to 255 characters without leading or trailing whitespace.", name)
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return fault.Invalidf("Invalid input for field/attribute name. Value: %q. Control characters are not allowed.", name)
		}
	}
	if len(f.ID) > 255 || !flavorIDPattern.MatchString(f.ID) || strings.TrimSpace(f.ID) != f.ID {
		return fault.Invalidf("Invalid input for field/attribute id. Value: %s. Flavor IDs may contain letters, digits, '_', '-', '.' and spaces.", f.ID)
	}
	type bound struct {
		field string
		v     int64
		min   int64
	}
	for _, b := range []bound{{"ram", f.MemoryMB, 1}, {"vcpus", f.VCPUs, 1}, {"disk", f.RootGB, 0},
		{"OS-FLV-EXT-DATA:ephemeral", f.EphemeralGB, 0}, {"swap", f.SwapMB, 0}} {
		if b.v < b.min {
			return fault.Invalidf("Invalid input for field/attribute %s. Value: %d. %d is less than the minimum of %d", b.field, b.v, b.v, b.min)
		}
		if b.v > 0x7fffffff {
			return fault.Invalidf("Invalid input for field/attribute %s. Value: %d. %d is greater than the maximum of 2147483647", b.field, b.v, b.v)
		}
	}
	if f.RXTXFactor <= 0 || f.RXTXFactor > 3.40282e38 {
		return fault.Invalidf("Invalid input for field/attribute rxtx_factor. Value: %v. It must be a number greater than 0.", f.RXTXFactor)
	}
	if f.Description != nil && len(*f.Description) > 65535 {
		return fault.Invalidf("Invalid input for field/attribute description. It is longer than 65535 characters.")
	}
	return nil
}

// CreateFlavor creates f; an empty or "auto" ID becomes a UUID, a zero
// RXTXFactor 1.0. Kinds: Forbidden, Invalid, Conflict (name or ID taken).
func (s *Service) CreateFlavor(ctx context.Context, f Flavor) (*Flavor, error) {
	if _, err := s.authorize(ctx, "os_compute_api:os-flavor-manage:create", policy.Target{}); err != nil {
		return nil, err
	}
	if f.ID == "" || f.ID == "auto" {
		f.ID = newUUID()
	}
	if f.RXTXFactor == 0 {
		f.RXTXFactor = 1.0
	}
	if err := validateFlavor(&f); err != nil {
		return nil, err
	}
	f.CreatedAt = s.now()
	f.ExtraSpecs = map[string]string{}
	if err := s.st.createFlavor(ctx, &f); err != nil {
		return nil, err
	}
	return &f, nil
}

// flavorVisible reports whether the caller may see f: admins see every
// flavor, others public ones and private ones their project was given.
func (s *Service) flavorVisible(ctx context.Context, f *Flavor) (bool, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return false, err
	}
	if f.IsPublic || c.IsAdmin() {
		return true, nil
	}
	return s.st.flavorAccessible(ctx, f.ID, c.ProjectID)
}

// GetFlavor returns flavor id if the caller may see it. Kinds: NotFound,
// Unauthorized.
func (s *Service) GetFlavor(ctx context.Context, id string) (*Flavor, error) {
	f, err := s.st.getFlavor(ctx, s.st.db, id)
	if err != nil {
		return nil, err
	}
	ok, err := s.flavorVisible(ctx, f)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errFlavorNotFound(id)
	}
	return f, nil
}

func errFlavorNotFound(id string) error {
	return fault.NotFoundf("Flavor %s could not be found.", id)
}

// ListFlavors returns the flavors the caller may see that match fl, sorted
// and paged. Kinds: Invalid (bad sort key or unknown marker), Unauthorized.
func (s *Service) ListFlavors(ctx context.Context, fl FlavorFilter) ([]Flavor, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	all, err := s.st.listFlavors(ctx)
	if err != nil {
		return nil, err
	}
	access := map[string]bool{}
	if !c.IsAdmin() {
		ids, err := s.st.flavorsOfProject(ctx, c.ProjectID)
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			access[id] = true
		}
	}
	var out []Flavor
	for _, f := range all {
		if c.IsAdmin() {
			if !fl.AllVisibility {
				want := true
				if fl.IsPublic != nil {
					want = *fl.IsPublic
				}
				if f.IsPublic != want {
					continue
				}
			}
		} else if f.Disabled || (!f.IsPublic && !access[f.ID]) {
			continue
		}
		if f.MemoryMB < fl.MinRAM || f.RootGB < fl.MinDisk || (fl.Name != "" && f.Name != fl.Name) {
			continue
		}
		out = append(out, f)
	}
	key := fl.SortKey
	var less func(a, b *Flavor) int
	switch key {
	case "", "flavorid", "id":
		less = func(a, b *Flavor) int { return cmp.Compare(a.ID, b.ID) }
	case "name":
		less = func(a, b *Flavor) int { return cmp.Compare(a.Name, b.Name) }
	case "memory_mb":
		less = func(a, b *Flavor) int { return cmp.Compare(a.MemoryMB, b.MemoryMB) }
	case "vcpus":
		less = func(a, b *Flavor) int { return cmp.Compare(a.VCPUs, b.VCPUs) }
	case "root_gb":
		less = func(a, b *Flavor) int { return cmp.Compare(a.RootGB, b.RootGB) }
	case "swap":
		less = func(a, b *Flavor) int { return cmp.Compare(a.SwapMB, b.SwapMB) }
	case "ephemeral_gb":
		less = func(a, b *Flavor) int { return cmp.Compare(a.EphemeralGB, b.EphemeralGB) }
	case "rxtx_factor":
		less = func(a, b *Flavor) int { return cmp.Compare(a.RXTXFactor, b.RXTXFactor) }
	case "created_at":
		less = func(a, b *Flavor) int { return a.CreatedAt.Compare(b.CreatedAt) }
	default:
		return nil, fault.Invalidf("Invalid input for query parameters sort_key. Value: %s.", key)
	}
	desc := false
	switch fl.SortDir {
	case "", "asc":
	case "desc":
		desc = true
	default:
		return nil, fault.Invalidf("Invalid input for query parameters sort_dir. Value: %s.", fl.SortDir)
	}
	slices.SortStableFunc(out, func(a, b Flavor) int {
		r := less(&a, &b)
		if r == 0 {
			r = cmp.Compare(a.ID, b.ID)
		}
		if desc {
			r = -r
		}
		return r
	})
	return pageBy(out, fl.Marker, fl.Limit, func(f Flavor) string { return f.ID })
}

// pageBy returns the items after the one whose key is marker, at most
// limit of them (0 is no limit). An unknown marker is Invalid.
func pageBy[T any](items []T, marker string, limit int, key func(T) string) ([]T, error) {
	if marker != "" {
		i := slices.IndexFunc(items, func(t T) bool { return key(t) == marker })
		if i < 0 {
			return nil, fault.Invalidf("marker [%s] not found", marker)
		}
		items = items[i+1:]
	}
	if limit > 0 && len(items) > limit {
		items = items[:limit]
	}
	return items, nil
}

// UpdateFlavorDescription sets flavor id's description (nil clears it).
// Kinds: Forbidden, NotFound, Invalid.
func (s *Service) UpdateFlavorDescription(ctx context.Context, id string, desc *string) (*Flavor, error) {
	if _, err := s.authorize(ctx, "os_compute_api:os-flavor-manage:update", policy.Target{}); err != nil {
		return nil, err
	}
	if desc != nil && len(*desc) > 65535 {
		return nil, fault.Invalidf("Invalid input for field/attribute description. It is longer than 65535 characters.")
	}
	if err := s.st.updateFlavorDescription(ctx, id, desc); err != nil {
		return nil, err
	}
	return s.st.getFlavor(ctx, s.st.db, id)
}

// DeleteFlavor deletes flavor id. Servers keep the copy of the flavor they
// were built with. Kinds: Forbidden, NotFound.
func (s *Service) DeleteFlavor(ctx context.Context, id string) error {
	if _, err := s.authorize(ctx, "os_compute_api:os-flavor-manage:delete", policy.Target{}); err != nil {
		return err
	}
	return s.st.deleteFlavor(ctx, id)
}

// FlavorExtraSpecs returns flavor id's extra specs. Kinds: Forbidden, NotFound.
func (s *Service) FlavorExtraSpecs(ctx context.Context, id string) (map[string]string, error) {
	if _, err := s.authorize(ctx, "os_compute_api:os-flavor-extra-specs:index", policy.Target{}); err != nil {
		return nil, err
	}
	f, err := s.GetFlavor(ctx, id)
	if err != nil {
		return nil, err
	}
	return f.ExtraSpecs, nil
}

// FlavorExtraSpec returns one extra spec of flavor id. Kinds: Forbidden, NotFound.
func (s *Service) FlavorExtraSpec(ctx context.Context, id, key string) (string, error) {
	if _, err := s.authorize(ctx, "os_compute_api:os-flavor-extra-specs:show", policy.Target{}); err != nil {
		return "", err
	}
	f, err := s.GetFlavor(ctx, id)
	if err != nil {
		return "", err
	}
	v, ok := f.ExtraSpecs[key]
	if !ok {
		return "", fault.NotFoundf("Flavor %s has no extra specs with key %s.", id, key)
	}
	return v, nil
}

func validateSpecs(specs map[string]string) error {
	for k, v := range specs {
		if len(k) == 0 || len(k) > 255 || !specKeyPattern.MatchString(k) {
			return fault.Invalidf("Invalid input for field/attribute extra_specs. Key '%s' is not a valid extra spec key.", k)
		}
		if len(v) > 255 {
			return fault.Invalidf("Invalid input for field/attribute extra_specs. The value of '%s' is longer than 255 characters.", k)
		}
	}
	return nil
}

var specKeyPattern = regexp.MustCompile(`^[\w\.\-:]+$`)

// SetFlavorExtraSpecs adds or replaces the given extra specs of flavor id
// and returns them. Kinds: Forbidden, NotFound, Invalid.
func (s *Service) SetFlavorExtraSpecs(ctx context.Context, id string, specs map[string]string) (map[string]string, error) {
	if _, err := s.authorize(ctx, "os_compute_api:os-flavor-extra-specs:create", policy.Target{}); err != nil {
		return nil, err
	}
	if err := validateSpecs(specs); err != nil {
		return nil, err
	}
	if err := s.st.setExtraSpecs(ctx, id, specs); err != nil {
		return nil, err
	}
	return specs, nil
}

// UpdateFlavorExtraSpec sets one extra spec of flavor id. Kinds:
// Forbidden, NotFound, Invalid.
func (s *Service) UpdateFlavorExtraSpec(ctx context.Context, id, key, value string) error {
	if _, err := s.authorize(ctx, "os_compute_api:os-flavor-extra-specs:update", policy.Target{}); err != nil {
		return err
	}
	specs := map[string]string{key: value}
	if err := validateSpecs(specs); err != nil {
		return err
	}
	return s.st.setExtraSpecs(ctx, id, specs)
}

// DeleteFlavorExtraSpec deletes one extra spec of flavor id. Kinds:
// Forbidden, NotFound.
func (s *Service) DeleteFlavorExtraSpec(ctx context.Context, id, key string) error {
	if _, err := s.authorize(ctx, "os_compute_api:os-flavor-extra-specs:delete", policy.Target{}); err != nil {
		return err
	}
	return s.st.deleteExtraSpec(ctx, id, key)
}

// FlavorAccess lists the projects given access to private flavor id.
// Kinds: Forbidden, NotFound (also for public flavors, as Nova).
func (s *Service) FlavorAccess(ctx context.Context, id string) ([]string, error) {
	if _, err := s.authorize(ctx, "os_compute_api:os-flavor-access", policy.Target{}); err != nil {
		return nil, err
	}
	f, err := s.st.getFlavor(ctx, s.st.db, id)
	if err != nil {
		return nil, err
	}
	if f.IsPublic {
		return nil, fault.NotFoundf("Access list not available for public flavors.")
	}
	return s.st.flavorProjects(ctx, id)
}

// AddFlavorAccess gives project access to private flavor id. Kinds:
// Forbidden, NotFound, Conflict (public flavor, or access exists).
func (s *Service) AddFlavorAccess(ctx context.Context, id, project string) ([]string, error) {
	if _, err := s.authorize(ctx, "os_compute_api:os-flavor-access:add_tenant_access", policy.Target{}); err != nil {
		return nil, err
	}
	if project == "" {
		return nil, fault.Invalidf("Invalid input for field/attribute tenant. A project ID is required.")
	}
	if err := s.st.addFlavorAccess(ctx, id, project); err != nil {
		return nil, err
	}
	return s.st.flavorProjects(ctx, id)
}

// RemoveFlavorAccess takes project's access to flavor id. Kinds:
// Forbidden, NotFound.
func (s *Service) RemoveFlavorAccess(ctx context.Context, id, project string) ([]string, error) {
	if _, err := s.authorize(ctx, "os_compute_api:os-flavor-access:remove_tenant_access", policy.Target{}); err != nil {
		return nil, err
	}
	if err := s.st.removeFlavorAccess(ctx, id, project); err != nil {
		return nil, err
	}
	return s.st.flavorProjects(ctx, id)
}
