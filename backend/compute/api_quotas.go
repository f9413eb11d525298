package compute

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/backend/platform/rest"
)

func (a *apiHandler) quotaRoutes(r chi.Router) {
	r.Get("/os-quota-sets/{project}", a.showQuotas)
	r.Put("/os-quota-sets/{project}", a.updateQuotas)
	r.Delete("/os-quota-sets/{project}", a.deleteQuotas)
	r.Get("/os-quota-sets/{project}/defaults", a.defaultQuotas)
	r.Get("/os-quota-sets/{project}/detail", a.detailQuotas)
	r.Get("/limits", a.limits)
	r.Get("/os-simple-tenant-usage", a.tenantUsages)
	r.Get("/os-simple-tenant-usage/{project}", a.tenantUsage)
}

// quotaNames are the quota_set keys of the request's microversion.
func quotaNames(r *http.Request) []string {
	v := version(r)
	names := []string{QuotaCores, QuotaInstances, QuotaKeyPairs, QuotaMetadataItems, QuotaRAM,
		QuotaServerGroups, QuotaServerGroupMembers}
	if !v.atLeast(57) {
		names = append(names, QuotaInjectedFileBytes, QuotaInjectedPathBytes, QuotaInjectedFiles)
	}
	return names
}

// networkQuotas are the quota_set keys before 2.36, proxied from the
// network service in Nova; here fixed values.
var networkQuotas = map[string]int64{"fixed_ips": -1, "floating_ips": 10, "security_group_rules": 20, "security_groups": 10}

func quotaSetView(r *http.Request, project string, lim QuotaLimits, withID bool) map[string]any {
	m := map[string]any{}
	if withID {
		m["id"] = project
	}
	for _, n := range quotaNames(r) {
		m[n] = lim[n]
	}
	if !version(r).atLeast(36) {
		for k, v := range networkQuotas {
			m[k] = v
		}
	}
	return map[string]any{"quota_set": m}
}

func (a *apiHandler) showQuotas(w http.ResponseWriter, r *http.Request) {
	p := chi.URLParam(r, "project")
	lim, err := a.s.GetQuotas(r.Context(), p)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, quotaSetView(r, p, lim, true))
}

func (a *apiHandler) defaultQuotas(w http.ResponseWriter, r *http.Request) {
	lim, err := a.s.DefaultQuotas(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, quotaSetView(r, chi.URLParam(r, "project"), lim, true))
}

func (a *apiHandler) detailQuotas(w http.ResponseWriter, r *http.Request) {
	p := chi.URLParam(r, "project")
	u, err := a.s.GetQuotaUsage(r.Context(), p)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	m := map[string]any{"id": p}
	for _, n := range quotaNames(r) {
		m[n] = map[string]any{"limit": u[n].Limit, "in_use": u[n].InUse, "reserved": 0}
	}
	if !version(r).atLeast(36) {
		for k, v := range networkQuotas {
			m[k] = map[string]any{"limit": v, "in_use": 0, "reserved": 0}
		}
	}
	rest.JSON(w, http.StatusOK, map[string]any{"quota_set": m})
}

func (a *apiHandler) updateQuotas(w http.ResponseWriter, r *http.Request) {
	p := chi.URLParam(r, "project")
	if r.URL.Query().Get("user_id") != "" {
		a.fail(w, r, fault.Invalidf("Per-user quotas are not supported; set the project's quotas."))
		return
	}
	var body struct {
		QS map[string]json.RawMessage `json:"quota_set"`
	}
	if err := decodeBody(r, &body); err != nil {
		a.fail(w, r, err)
		return
	}
	if err := requireKey(body.QS != nil, "quota_set"); err != nil {
		a.fail(w, r, err)
		return
	}
	set := map[string]int64{}
	force := false
	for k, raw := range body.QS {
		switch k {
		case "force":
			var f flexBool
			if err := json.Unmarshal(raw, &f); err != nil {
				a.fail(w, r, fault.Invalidf("Invalid input for field/attribute force."))
				return
			}
			force = f.v
		case "id":
		default:
			if _, ok := networkQuotas[k]; ok && !version(r).atLeast(36) {
				continue
			}
			var n flexInt
			if err := json.Unmarshal(raw, &n); err != nil {
				a.fail(w, r, fault.Invalidf("Invalid input for field/attribute %s. Value: %s. It is not an integer.", k, raw))
				return
			}
			set[k] = int64(n.v)
		}
	}
	lim, err := a.s.UpdateQuotas(r.Context(), p, set, force)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, quotaSetView(r, p, lim, false))
}

func (a *apiHandler) deleteQuotas(w http.ResponseWriter, r *http.Request) {
	if err := a.s.DeleteQuotas(r.Context(), chi.URLParam(r, "project")); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func (a *apiHandler) limits(w http.ResponseWriter, r *http.Request) {
	u, err := a.s.Limits(r.Context(), firstOf(r.URL.Query().Get("tenant_id"), r.URL.Query().Get("project_id")))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	abs := map[string]any{
		"maxTotalInstances": u[QuotaInstances].Limit, "maxTotalCores": u[QuotaCores].Limit,
		"maxTotalRAMSize": u[QuotaRAM].Limit, "maxTotalKeypairs": u[QuotaKeyPairs].Limit,
		"maxServerMeta": u[QuotaMetadataItems].Limit, "maxServerGroups": u[QuotaServerGroups].Limit,
		"maxServerGroupMembers": u[QuotaServerGroupMembers].Limit,
		"totalInstancesUsed":    u[QuotaInstances].InUse, "totalCoresUsed": u[QuotaCores].InUse,
		"totalRAMUsed": u[QuotaRAM].InUse, "totalServerGroupsUsed": u[QuotaServerGroups].InUse,
	}
	v := version(r)
	if !v.atLeast(57) {
		abs["maxPersonality"], abs["maxPersonalitySize"] = u[QuotaInjectedFiles].Limit, u[QuotaInjectedFileBytes].Limit
	}
	if !v.atLeast(39) {
		abs["maxImageMeta"] = u[QuotaMetadataItems].Limit
	}
	if !v.atLeast(36) {
		abs["maxSecurityGroupRules"], abs["maxSecurityGroups"] = networkQuotas["security_group_rules"], networkQuotas["security_groups"]
		abs["maxTotalFloatingIps"], abs["totalFloatingIpsUsed"], abs["totalSecurityGroupsUsed"] = networkQuotas["floating_ips"], 0, 0
	}
	rest.JSON(w, http.StatusOK, map[string]any{"limits": map[string]any{"absolute": abs, "rate": []any{}}})
}

// usagePeriod reads start and end (ISO 8601); the default is the last day.
func usagePeriod(r *http.Request, now time.Time) (time.Time, time.Time, error) {
	start, end := now.Add(-24*time.Hour), now
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"start", &start}, {"end", &end}} {
		if s := r.URL.Query().Get(p.name); s != "" {
			t, err := parseISOTime(s)
			if err != nil {
				return start, end, fault.Invalidf("Invalid %s time. %s", p.name, s)
			}
			*p.dst = t
		}
	}
	return start, end, nil
}

func tenantUsageView(tu *TenantUsage, detailed bool) map[string]any {
	m := map[string]any{"tenant_id": tu.ProjectID, "start": apiTimeMicro(tu.Start), "stop": apiTimeMicro(tu.Stop),
		"total_hours": tu.TotalHours, "total_local_gb_usage": tu.TotalLocalGBUsage,
		"total_memory_mb_usage": tu.TotalMemoryMBUsage, "total_vcpus_usage": tu.TotalVCPUsUsage}
	if detailed {
		out := make([]any, 0, len(tu.Servers))
		for _, s := range tu.Servers {
			out = append(out, map[string]any{"instance_id": s.InstanceID, "name": s.Name, "hours": s.Hours,
				"vcpus": s.VCPUs, "memory_mb": s.MemoryMB, "local_gb": s.LocalGB, "flavor": s.Flavor, "state": s.State,
				"started_at": apiTimeMicro(s.StartedAt), "ended_at": apiTimePtr(s.EndedAt), "tenant_id": s.ProjectID,
				"uptime": s.UptimeSec})
		}
		m["server_usages"] = out
	}
	return m
}

func (a *apiHandler) tenantUsages(w http.ResponseWriter, r *http.Request) {
	start, end, err := usagePeriod(r, a.s.now())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	tus, err := a.s.TenantUsages(r.Context(), "", start, end)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	detailed := r.URL.Query().Get("detailed") == "1"
	out := make([]any, 0, len(tus))
	for i := range tus {
		out = append(out, tenantUsageView(&tus[i], detailed))
	}
	rest.JSON(w, http.StatusOK, map[string]any{"tenant_usages": out})
}

func (a *apiHandler) tenantUsage(w http.ResponseWriter, r *http.Request) {
	start, end, err := usagePeriod(r, a.s.now())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	tus, err := a.s.TenantUsages(r.Context(), chi.URLParam(r, "project"), start, end)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	m := map[string]any{}
	if len(tus) > 0 && (len(tus[0].Servers) > 0 || tus[0].TotalHours > 0) {
		m = tenantUsageView(&tus[0], true)
	}
	rest.JSON(w, http.StatusOK, map[string]any{"tenant_usage": m})
}
