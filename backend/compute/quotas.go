package compute

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// Quota resources, with Nova's names.
const (
	QuotaInstances          = "instances"
	QuotaCores              = "cores"
	QuotaRAM                = "ram"
	QuotaKeyPairs           = "key_pairs"
	QuotaServerGroups       = "server_groups"
	QuotaServerGroupMembers = "server_group_members"
	QuotaMetadataItems      = "metadata_items"
	QuotaInjectedFiles      = "injected_files"
	QuotaInjectedFileBytes  = "injected_file_content_bytes"
	QuotaInjectedPathBytes  = "injected_file_path_bytes"
)

// quotaResources lists every resource in the order Nova shows them.
var quotaResources = []string{
	QuotaCores, QuotaInjectedFileBytes, QuotaInjectedPathBytes, QuotaInjectedFiles, QuotaInstances,
	QuotaKeyPairs, QuotaMetadataItems, QuotaRAM, QuotaServerGroupMembers, QuotaServerGroups,
}

// novaQuotaDefaults are Nova's default limits.
var novaQuotaDefaults = map[string]int64{
	QuotaInstances: 10, QuotaCores: 20, QuotaRAM: 51200, QuotaKeyPairs: 100,
	QuotaServerGroups: 10, QuotaServerGroupMembers: 10, QuotaMetadataItems: 128,
	QuotaInjectedFiles: 5, QuotaInjectedFileBytes: 10240, QuotaInjectedPathBytes: 255,
}

// QuotaLimits are hard limits by resource name; -1 is unlimited. Missing
// resources take Nova's defaults.
type QuotaLimits map[string]int64

func (q QuotaLimits) withDefaults() QuotaLimits {
	out := QuotaLimits{}
	for k, v := range novaQuotaDefaults {
		out[k] = v
	}
	for k, v := range q {
		out[k] = v
	}
	return out
}

// QuotaUsage is one resource's limit and what is in use, for the detail view.
type QuotaUsage struct {
	Limit    int64
	InUse    int64
	Reserved int64
}

// quotaLimit returns project's limit of resource: its own, else the default.
func (s *Service) quotaLimit(ctx context.Context, projectID, resource string) (int64, error) {
	lim, err := s.st.projectQuotas(ctx, s.st.db, projectID)
	if err != nil {
		return 0, err
	}
	if v, ok := lim[resource]; ok {
		return v, nil
	}
	return s.cfg.Quotas[resource], nil
}

// effectiveQuotas merges a project's own limits over the defaults.
func (s *Service) effectiveQuotas(own map[string]int64) QuotaLimits {
	out := QuotaLimits{}
	for k, v := range s.cfg.Quotas {
		out[k] = v
	}
	for k, v := range own {
		out[k] = v
	}
	return out
}

// DefaultQuotas returns the default limits. Kinds: Forbidden.
func (s *Service) DefaultQuotas(ctx context.Context) (QuotaLimits, error) {
	if _, err := s.authorize(ctx, "os_compute_api:os-quota-sets:defaults", nil); err != nil {
		return nil, err
	}
	return s.effectiveQuotas(nil), nil
}

// GetQuotas returns projectID's limits. Kinds: Forbidden, NotFound.
func (s *Service) GetQuotas(ctx context.Context, projectID string) (QuotaLimits, error) {
	if err := s.authorizeQuota(ctx, "os_compute_api:os-quota-sets:show", projectID); err != nil {
		return nil, err
	}
	own, err := s.st.projectQuotas(ctx, s.st.db, projectID)
	if err != nil {
		return nil, err
	}
	return s.effectiveQuotas(own), nil
}

// authorizeQuota checks a quota action on projectID; a project the
// caller may not see answers 403 as Nova does for quota sets.
func (s *Service) authorizeQuota(ctx context.Context, action, projectID string) error {
	_, err := s.authorize(ctx, action, projectTarget(projectID, ""))
	return err
}

// GetQuotaUsage returns projectID's limits with what is in use.
// Kinds: Forbidden.
func (s *Service) GetQuotaUsage(ctx context.Context, projectID string) (map[string]QuotaUsage, error) {
	if err := s.authorizeQuota(ctx, "os_compute_api:os-quota-sets:detail", projectID); err != nil {
		return nil, err
	}
	own, err := s.st.projectQuotas(ctx, s.st.db, projectID)
	if err != nil {
		return nil, err
	}
	lim := s.effectiveQuotas(own)
	used, err := s.st.projectUsage(ctx, s.st.db, projectID)
	if err != nil {
		return nil, err
	}
	c, _ := auth.Caller(ctx)
	if c != nil && c.ProjectID == projectID {
		if used[QuotaKeyPairs], err = s.st.countKeypairs(ctx, c.UserID); err != nil {
			return nil, err
		}
	}
	out := map[string]QuotaUsage{}
	for _, r := range quotaResources {
		out[r] = QuotaUsage{Limit: lim[r], InUse: used[r]}
	}
	return out, nil
}

// UpdateQuotas sets projectID's limits for the named resources (-1 is
// unlimited) and returns the result. Unless force is set, a limit below
// what is in use is refused. Kinds: Forbidden, Invalid.
func (s *Service) UpdateQuotas(ctx context.Context, projectID string, set map[string]int64, force bool) (QuotaLimits, error) {
	if err := s.authorizeQuota(ctx, "os_compute_api:os-quota-sets:update", projectID); err != nil {
		return nil, err
	}
	for k, v := range set {
		if !slices.Contains(quotaResources, k) {
			return nil, fault.Invalidf("Invalid input for field/attribute quota_set. Additional properties are not allowed ('%s' was unexpected)", k)
		}
		if v < -1 {
			return nil, fault.Invalidf("Invalid input for field/attribute %s. Value: %d. %d is less than the minimum of -1", k, v, v)
		}
	}
	if !force {
		used, err := s.st.projectUsage(ctx, s.st.db, projectID)
		if err != nil {
			return nil, err
		}
		var bad []string
		for k, v := range set {
			if v >= 0 && used[k] > v {
				bad = append(bad, fmt.Sprintf("%s: quota %d is below usage %d", k, v, used[k]))
			}
		}
		if len(bad) > 0 {
			slices.Sort(bad)
			return nil, fault.Invalidf("Quota limit must be greater than or equal to the usage (%s).", strings.Join(bad, "; "))
		}
	}
	if err := s.st.setProjectQuotas(ctx, projectID, set); err != nil {
		return nil, err
	}
	own, err := s.st.projectQuotas(ctx, s.st.db, projectID)
	if err != nil {
		return nil, err
	}
	return s.effectiveQuotas(own), nil
}

// DeleteQuotas resets projectID's limits to the defaults. Kinds: Forbidden.
func (s *Service) DeleteQuotas(ctx context.Context, projectID string) error {
	if err := s.authorizeQuota(ctx, "os_compute_api:os-quota-sets:delete", projectID); err != nil {
		return err
	}
	return s.st.deleteProjectQuotas(ctx, projectID)
}

// overQuota is Nova's TooManyInstances message for the first resource of
// want (in Nova's order: instances, cores, ram) that exceeds its limit.
func overQuota(lim QuotaLimits, used, want map[string]int64) error {
	for _, r := range []string{QuotaInstances, QuotaCores, QuotaRAM} {
		l := lim[r]
		if l < 0 || want[r] == 0 {
			continue
		}
		if used[r]+want[r] > l {
			return fault.OverQuotaf("Quota exceeded for %s: Requested %d, but already used %d of %d %s",
				r, want[r], used[r], l, r)
		}
	}
	return nil
}
