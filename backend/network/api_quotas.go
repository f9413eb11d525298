package network

// Neutron's /v2.0/quotas and /v2.0/network-ip-availabilities.

import (
	"encoding/json"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
	"github.com/nimbus-cloud/nimbus/backend/platform/rest"
)

func (a *apiHandler) quotaRoutes(r chi.Router) {
	r.Get("/v2.0/quotas", a.listQuotas)
	r.Get("/v2.0/quotas/tenant", a.quotaTenant)
	r.Get("/v2.0/quotas/{project}", a.getQuota)
	r.Get("/v2.0/quotas/{project}/default", a.defaultQuota)
	r.Get("/v2.0/quotas/{project}/details", a.quotaDetails)
	r.Put("/v2.0/quotas/{project}", a.updateQuota)
	r.Delete("/v2.0/quotas/{project}", a.deleteQuota)
	r.Get("/v2.0/network-ip-availabilities", a.listIPAvailability)
	r.Get("/v2.0/network-ip-availabilities/{id}", a.getIPAvailability)
}

func quotaJSON(limits map[string]int) map[string]any {
	m := make(map[string]any, len(limits))
	for k, v := range limits {
		m[k] = v
	}
	return m
}

func (a *apiHandler) listQuotas(w http.ResponseWriter, r *http.Request) {
	qs, err := a.s.ListQuotas(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]any, len(qs))
	for i, q := range qs {
		m := quotaJSON(q.Limits)
		m["project_id"], m["tenant_id"] = q.ProjectID, q.ProjectID
		out[i] = m
	}
	rest.JSON(w, http.StatusOK, map[string]any{"quotas": out})
}

// quotaTenant is GET /v2.0/quotas/tenant: the caller's own project.
func (a *apiHandler) quotaTenant(w http.ResponseWriter, r *http.Request) {
	c, _ := auth.FromContext(r.Context())
	rest.JSON(w, http.StatusOK, map[string]any{"tenant": map[string]any{"tenant_id": c.ProjectID}})
}

func (a *apiHandler) getQuota(w http.ResponseWriter, r *http.Request) {
	q, err := a.s.GetQuota(r.Context(), pathID(r, "project"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, map[string]any{"quota": quotaJSON(q)})
}

func (a *apiHandler) defaultQuota(w http.ResponseWriter, r *http.Request) {
	q, err := a.s.DefaultQuota(r.Context(), pathID(r, "project"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, map[string]any{"quota": quotaJSON(q)})
}

func (a *apiHandler) quotaDetails(w http.ResponseWriter, r *http.Request) {
	d, err := a.s.GetQuotaDetails(r.Context(), pathID(r, "project"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	m := make(map[string]any, len(d))
	for k, v := range d {
		m[k] = map[string]any{"limit": v.Limit, "used": v.Used, "reserved": v.Reserved}
	}
	rest.JSON(w, http.StatusOK, map[string]any{"quota": m})
}

// updateQuota is PUT /v2.0/quotas/{project}: {"quota": {"network": 10,
// ..., "check_limit": true}}.
func (a *apiHandler) updateQuota(w http.ResponseWriter, r *http.Request) {
	allowed := append([]string{"check_limit", "force"}, QuotaResources...)
	b, err := apiDecode(r, "quota", allowed, nil)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	check, err := b.boolPtr("check_limit")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if _, err := b.boolPtr("force"); err != nil {
		a.fail(w, r, err)
		return
	}
	limits := map[string]int{}
	for _, res := range QuotaResources {
		n, err := b.intPtr(res)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		if n != nil {
			limits[res] = *n
		}
	}
	q, err := a.s.UpdateQuota(r.Context(), pathID(r, "project"), limits, check != nil && *check)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, map[string]any{"quota": quotaJSON(q)})
}

func (a *apiHandler) deleteQuota(w http.ResponseWriter, r *http.Request) {
	if err := a.s.DeleteQuota(r.Context(), pathID(r, "project")); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func ipAvailabilityJSON(n *NetworkIPAvailability) map[string]any {
	subnets := make([]any, len(n.Subnets))
	for i, s := range n.Subnets {
		subnets[i] = map[string]any{
			"subnet_id": s.SubnetID, "subnet_name": s.SubnetName, "cidr": s.CIDR, "ip_version": s.IPVersion,
			"total_ips": json.Number(s.TotalIPs.String()), "used_ips": s.UsedIPs,
		}
	}
	return map[string]any{
		"network_id": n.NetworkID, "network_name": n.NetworkName, "tenant_id": n.ProjectID, "project_id": n.ProjectID,
		"total_ips": json.Number(n.TotalIPs.String()), "used_ips": n.UsedIPs, "subnet_ip_availability": subnets,
	}
}

func (a *apiHandler) listIPAvailability(w http.ResponseWriter, r *http.Request) {
	serveList(a, w, r, "network_ip_availabilities", a.s.ListNetworkIPAvailabilities,
		func(x *NetworkIPAvailability) map[string]any { return ipAvailabilityJSON(x) },
		func(x *NetworkIPAvailability) string { return x.NetworkID })
}

func (a *apiHandler) getIPAvailability(w http.ResponseWriter, r *http.Request) {
	n, err := a.s.GetNetworkIPAvailability(r.Context(), pathID(r, "id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.writeOne(w, r, http.StatusOK, "network_ip_availability", ipAvailabilityJSON(n))
}
