package web

import (
	"net/http"
	"slices"
	"time"

	"github.com/nimbus-cloud/nimbus/backend/compute"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/views"
)

// usageDays is the default usage period, ending today.
const usageDays = 30

const dateLayout = "2006-01-02"

// projectUsage gathers the overview's quota bars and the usage report of
// the period the query names. A service that cannot answer costs only its
// part of the page, which says why.
func (s *Server) projectUsage(r *http.Request) views.ProjectUsage {
	var u views.ProjectUsage
	v := viewerFrom(r)
	if v == nil || v.ProjectID == "" {
		return u
	}
	ctx := r.Context()
	if s.comp != nil {
		lim, err := s.comp.Limits(ctx, "")
		if err != nil {
			u.QuotaError = fault.Message(err)
		} else {
			for _, res := range computeQuotaResources[:3] { // instances, cores, ram
				q := lim[res.name]
				u.Quotas = append(u.Quotas, views.QuotaRow{Resource: res.name, Label: res.label, Unit: res.unit, Used: q.InUse, Limit: q.Limit})
			}
		}
	}
	if s.nets != nil {
		qs, err := s.nets.GetQuotaDetails(ctx, v.ProjectID)
		if err != nil {
			u.QuotaError = fault.Message(err)
		} else {
			for _, name := range []string{"floatingip", "security_group", "network"} {
				i := slices.IndexFunc(networkQuotaResources, func(q quotaResource) bool { return q.name == name })
				q := qs[name]
				u.Quotas = append(u.Quotas, views.QuotaRow{Resource: name, Label: networkQuotaResources[i].label,
					Used: int64(q.Used), Limit: int64(q.Limit)})
			}
		}
	}
	if s.comp != nil {
		s.usagePeriod(r, v.ProjectID, &u)
	}
	return u
}

// usagePeriod fills in compute's usage of project between the query's
// start and end dates (whole UTC days, both included), by default the last
// 30 days.
func (s *Server) usagePeriod(r *http.Request, project string, u *views.ProjectUsage) {
	u.HasUsage = true
	today := s.now().UTC().Truncate(24 * time.Hour)
	start, end := today.AddDate(0, 0, -usageDays), today
	q := r.URL.Query()
	u.Start, u.End = q.Get("start"), q.Get("end")
	if u.Start == "" {
		u.Start = start.Format(dateLayout)
	}
	if u.End == "" {
		u.End = end.Format(dateLayout)
	}
	var err error
	if start, err = time.Parse(dateLayout, u.Start); err != nil {
		u.PeriodError, u.PeriodField = "Enter the start date as YYYY-MM-DD.", "start"
		return
	}
	if end, err = time.Parse(dateLayout, u.End); err != nil {
		u.PeriodError, u.PeriodField = "Enter the end date as YYYY-MM-DD.", "end"
		return
	}
	tus, err := s.comp.TenantUsages(r.Context(), project, start, end.AddDate(0, 0, 1))
	if err != nil {
		u.PeriodError = fault.Message(err)
		return
	}
	for _, tu := range tus {
		if tu.ProjectID != project {
			continue
		}
		u.InstanceHours, u.VCPUHours, u.RAMHours, u.DiskHours = tu.TotalHours, tu.TotalVCPUsUsage, tu.TotalMemoryMBUsage, tu.TotalLocalGBUsage
		for _, su := range tu.Servers {
			u.Servers = append(u.Servers, serverUsageRow(su))
		}
	}
	slices.SortFunc(u.Servers, func(a, b views.ServerUsageRow) int { return byName(a.Name, b.Name) })
}

func serverUsageRow(su compute.ServerUsage) views.ServerUsageRow {
	name := su.Name
	if name == "" {
		name = su.InstanceID
	}
	return views.ServerUsageRow{ID: su.InstanceID, Name: name, Flavor: su.Flavor, VCPUs: su.VCPUs, RAM: su.MemoryMB,
		Disk: su.LocalGB, Hours: su.Hours, State: su.State, Started: su.StartedAt}
}
