package compute

import (
	"context"
	"sort"
	"time"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// Limits returns projectID's quota limits with their usage for the limits
// API; "" is the caller's project, another project needs admin. Kinds:
// Forbidden.
func (s *Service) Limits(ctx context.Context, projectID string) (map[string]QuotaUsage, error) {
	c, err := s.authorize(ctx, "os_compute_api:limits", nil)
	if err != nil {
		return nil, err
	}
	if projectID == "" || projectID == c.ProjectID {
		projectID = c.ProjectID
	} else if _, err := s.authorize(ctx, "os_compute_api:limits:other_project", projectTarget(projectID, "")); err != nil {
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
	out := map[string]QuotaUsage{}
	for _, r := range quotaResources {
		out[r] = QuotaUsage{Limit: lim[r], InUse: used[r]}
	}
	return out, nil
}

// ServerUsage is one server's share of a tenant usage report.
type ServerUsage struct {
	InstanceID string
	Name       string
	Hours      float64
	VCPUs      int64
	MemoryMB   int64
	LocalGB    int64
	Flavor     string
	State      string // vm_state, or "terminated"
	StartedAt  time.Time
	EndedAt    *time.Time
	ProjectID  string
	UptimeSec  int64
}

// TenantUsage is a project's usage over a period, as
// os-simple-tenant-usage reports it.
type TenantUsage struct {
	ProjectID          string
	Start, Stop        time.Time
	TotalHours         float64
	TotalVCPUsUsage    float64
	TotalMemoryMBUsage float64
	TotalLocalGBUsage  float64
	Servers            []ServerUsage
}

// TenantUsages reports usage between start and end for projectID, or for
// every project with servers in the period when projectID is "" (admins).
// Kinds: Forbidden, Invalid (end before start).
func (s *Service) TenantUsages(ctx context.Context, projectID string, start, end time.Time) ([]TenantUsage, error) {
	if projectID == "" {
		if err := s.authorizeAdmin(ctx, "os_compute_api:os-simple-tenant-usage:list"); err != nil {
			return nil, err
		}
	} else if _, err := s.authorize(ctx, "os_compute_api:os-simple-tenant-usage:show", projectTarget(projectID, "")); err != nil {
		return nil, err
	}
	if end.Before(start) {
		return nil, fault.Invalidf("Invalid start time. The start time cannot occur after the end time.")
	}
	all, err := s.st.listServers(ctx, serverQuery{projectID: projectID, withDeleted: true})
	if err != nil {
		return nil, err
	}
	now := s.now()
	byProject := map[string]*TenantUsage{}
	for _, srv := range all {
		from := srv.CreatedAt
		if srv.LaunchedAt != nil {
			from = *srv.LaunchedAt
		}
		to := now
		if srv.TerminatedAt != nil {
			to = *srv.TerminatedAt
		}
		a, b := maxTime(from, start), minTime(to, end)
		if !b.After(a) {
			continue
		}
		hours := b.Sub(a).Hours()
		tu := byProject[srv.ProjectID]
		if tu == nil {
			tu = &TenantUsage{ProjectID: srv.ProjectID, Start: start, Stop: end}
			byProject[srv.ProjectID] = tu
		}
		state := srv.VMState
		if srv.Deleted {
			state = "terminated"
		}
		root := srv.Flavor.RootGB + srv.Flavor.EphemeralGB
		tu.TotalHours += hours
		tu.TotalVCPUsUsage += hours * float64(srv.Flavor.VCPUs)
		tu.TotalMemoryMBUsage += hours * float64(srv.Flavor.MemoryMB)
		tu.TotalLocalGBUsage += hours * float64(root)
		uptime := int64(0)
		if !srv.Deleted {
			uptime = int64(now.Sub(from).Seconds())
		}
		tu.Servers = append(tu.Servers, ServerUsage{InstanceID: srv.ID, Name: srv.Name, Hours: hours,
			VCPUs: srv.Flavor.VCPUs, MemoryMB: srv.Flavor.MemoryMB, LocalGB: root, Flavor: srv.Flavor.Name,
			State: state, StartedAt: from, EndedAt: srv.TerminatedAt, ProjectID: srv.ProjectID, UptimeSec: uptime})
	}
	out := make([]TenantUsage, 0, len(byProject))
	for _, tu := range byProject {
		out = append(out, *tu)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ProjectID < out[j].ProjectID })
	if projectID != "" && len(out) == 0 {
		out = append(out, TenantUsage{ProjectID: projectID, Start: start, Stop: end})
	}
	return out, nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
