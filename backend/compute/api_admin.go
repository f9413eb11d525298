package compute

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/backend/platform/rest"
)

func (a *apiHandler) adminRoutes(r chi.Router) {
	r.Get("/os-availability-zone", a.listZones(false))
	r.Get("/os-availability-zone/detail", a.listZones(true))

	r.Get("/os-services", a.listServices)
	r.Put("/os-services/{id}", a.updateService)
	r.Delete("/os-services/{id}", a.deleteService)

	r.Get("/os-hypervisors", a.listHypervisors(false))
	r.Get("/os-hypervisors/detail", a.listHypervisors(true))
	r.Get("/os-hypervisors/statistics", a.hypervisorStatistics)
	r.Get("/os-hypervisors/{id}", a.showHypervisor)
	r.Get("/os-hypervisors/{id}/uptime", a.hypervisorUptime)
	r.Get("/os-hypervisors/{pattern}/search", a.searchHypervisors(false))
	r.Get("/os-hypervisors/{pattern}/servers", a.searchHypervisors(true))

	r.Get("/os-aggregates", a.listAggregates)
	r.Post("/os-aggregates", a.createAggregate)
	r.Get("/os-aggregates/{id}", a.showAggregate)
	r.Put("/os-aggregates/{id}", a.updateAggregate)
	r.Delete("/os-aggregates/{id}", a.deleteAggregate)
	r.Post("/os-aggregates/{id}/action", a.aggregateAction)

	r.Get("/os-server-groups", a.listServerGroups)
	r.Post("/os-server-groups", a.createServerGroup)
	r.Get("/os-server-groups/{id}", a.showServerGroup)
	r.Delete("/os-server-groups/{id}", a.deleteServerGroup)
}

// --- availability zones ---

func (a *apiHandler) listZones(detail bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		zs, err := a.s.AvailabilityZones(r.Context(), detail)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		out := make([]any, 0, len(zs))
		for _, z := range zs {
			m := map[string]any{"zoneName": z.Name, "zoneState": map[string]any{"available": z.Available}, "hosts": nil}
			if detail && len(z.Hosts) > 0 {
				hosts := map[string]any{}
				for _, h := range z.Hosts {
					hosts[h.Host] = map[string]any{"nova-compute": map[string]any{
						"available": h.Up, "active": h.Enabled, "updated_at": apiTimeZero(h.UpdatedAt)}}
				}
				m["hosts"] = hosts
			}
			out = append(out, m)
		}
		rest.JSON(w, http.StatusOK, map[string]any{"availabilityZoneInfo": out})
	}
}

func apiTimeZero(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return apiTimeMicro(t)
}

// --- services ---

func (a *apiHandler) serviceView(r *http.Request, cs *ComputeService) map[string]any {
	v := version(r)
	var id any = cs.Num
	if v.atLeast(53) {
		id = cs.ID
	}
	state, status := "down", "enabled"
	if cs.Up {
		state = "up"
	}
	if !cs.Enabled {
		status = "disabled"
	}
	m := map[string]any{"id": id, "binary": "nova-compute", "host": cs.Host, "zone": cs.Zone, "state": state,
		"status": status, "updated_at": apiTimeZero(cs.UpdatedAt), "disabled_reason": nullable(cs.DisabledReason)}
	if v.atLeast(11) {
		m["forced_down"] = cs.ForcedDown
	}
	return m
}

func (a *apiHandler) listServices(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	svcs, err := a.s.ListComputeServices(r.Context(), q.Get("host"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]any, 0, len(svcs))
	if b := q.Get("binary"); b == "" || b == "nova-compute" {
		for i := range svcs {
			out = append(out, a.serviceView(r, &svcs[i]))
		}
	}
	rest.JSON(w, http.StatusOK, map[string]any{"services": out})
}

// updateService is PUT /os-services/{id} from 2.53, and before it the
// legacy PUT /os-services/{enable,disable,disable-log-reason,force-down}.
func (a *apiHandler) updateService(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	v := version(r)
	var body struct {
		Host           string  `json:"host"`
		Binary         string  `json:"binary"`
		Status         string  `json:"status"`
		DisabledReason *string `json:"disabled_reason"`
		ForcedDown     *bool   `json:"forced_down"`
	}
	if err := decodeBody(r, &body); err != nil {
		a.fail(w, r, err)
		return
	}
	if v.atLeast(53) {
		var u ServiceUpdate
		switch body.Status {
		case "":
		case "enabled", "disabled":
			e := body.Status == "enabled"
			u.Enabled = &e
		default:
			a.fail(w, r, fault.Invalidf("Invalid input for field/attribute status. Value: %s. '%s' is not one of ['enabled', 'disabled']", body.Status, body.Status))
			return
		}
		u.DisabledReason, u.ForcedDown = body.DisabledReason, body.ForcedDown
		if u.Enabled == nil && u.ForcedDown == nil {
			a.fail(w, r, fault.Invalidf("At least one of 'status' or 'forced_down' must be specified in the request body."))
			return
		}
		cs, err := a.s.UpdateComputeService(r.Context(), id, u)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		rest.JSON(w, http.StatusOK, map[string]any{"service": a.serviceView(r, cs)})
		return
	}
	var u ServiceUpdate
	out := map[string]any{"host": body.Host, "binary": body.Binary}
	switch id {
	case "enable":
		e := true
		u.Enabled = &e
		out["status"] = "enabled"
	case "disable":
		e := false
		u.Enabled = &e
		out["status"] = "disabled"
	case "disable-log-reason":
		e := false
		u.Enabled, u.DisabledReason = &e, body.DisabledReason
		if body.DisabledReason == nil {
			a.fail(w, r, fault.Invalidf("Missing disabled reason field"))
			return
		}
		out["status"], out["disabled_reason"] = "disabled", *body.DisabledReason
	case "force-down":
		if !v.atLeast(11) || body.ForcedDown == nil {
			a.notFound(w, r)
			return
		}
		u.ForcedDown = body.ForcedDown
		out["forced_down"] = *body.ForcedDown
	default:
		a.notFound(w, r)
		return
	}
	if _, err := a.s.UpdateComputeServiceByHost(r.Context(), body.Host, body.Binary, u); err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, map[string]any{"service": out})
}

func (a *apiHandler) deleteService(w http.ResponseWriter, r *http.Request) {
	if err := a.s.DeleteComputeService(r.Context(), chi.URLParam(r, "id")); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// --- hypervisors ---

func (a *apiHandler) hypervisorView(r *http.Request, h *Hypervisor, detail bool) map[string]any {
	v := version(r)
	var id, svcID any = h.Num, h.ServiceNum
	if v.atLeast(53) {
		id, svcID = h.ID, h.ServiceID
	}
	state, status := "down", "enabled"
	if h.Up {
		state = "up"
	}
	if !h.Enabled {
		status = "disabled"
	}
	m := map[string]any{"id": id, "hypervisor_hostname": h.Hostname, "state": state, "status": status}
	if !detail {
		return m
	}
	var cpu any = h.CPUInfo
	if v.atLeast(28) {
		var obj map[string]any
		if json.Unmarshal([]byte(h.CPUInfo), &obj) == nil {
			cpu = obj
		} else {
			cpu = map[string]any{}
		}
	}
	m["cpu_info"], m["current_workload"], m["disk_available_least"] = cpu, 0, h.LocalGB-h.Used.DiskGB
	m["host_ip"], m["hypervisor_type"], m["hypervisor_version"] = h.HostIP, h.Type, h.Version
	m["vcpus"], m["vcpus_used"] = h.VCPUs, h.Used.VCPUs
	m["memory_mb"], m["memory_mb_used"], m["free_ram_mb"] = h.MemoryMB, h.Used.MemoryMB, h.MemoryMB-h.Used.MemoryMB
	m["local_gb"], m["local_gb_used"], m["free_disk_gb"] = h.LocalGB, h.Used.DiskGB, h.LocalGB-h.Used.DiskGB
	m["running_vms"] = h.RunningVMs
	m["service"] = map[string]any{"host": h.Hostname, "id": svcID, "disabled_reason": nullable(h.DisabledReason)}
	return m
}

func (a *apiHandler) listHypervisors(detail bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		pattern := ""
		if version(r).atLeast(53) {
			pattern = r.URL.Query().Get("hypervisor_hostname_pattern")
		}
		hs, err := a.s.ListHypervisors(r.Context(), pattern)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		limit, err := queryInt(r, "limit")
		if err != nil {
			a.fail(w, r, err)
			return
		}
		marker := r.URL.Query().Get("marker")
		if version(r).atLeast(33) && (limit > 0 || marker != "") {
			key := func(h Hypervisor) string { return strconv.FormatInt(h.Num, 10) }
			if version(r).atLeast(53) {
				key = func(h Hypervisor) string { return h.ID }
			}
			if hs, err = pageBy(hs, marker, limit, key); err != nil {
				a.fail(w, r, err)
				return
			}
		}
		withServers := version(r).atLeast(53) && r.URL.Query().Get("with_servers") == "true"
		out := make([]any, 0, len(hs))
		for i := range hs {
			m := a.hypervisorView(r, &hs[i], detail)
			if withServers {
				a.addServers(r, m, hs[i].ID)
			}
			out = append(out, m)
		}
		rest.JSON(w, http.StatusOK, map[string]any{"hypervisors": out})
	}
}

func (a *apiHandler) addServers(r *http.Request, m map[string]any, id string) {
	ss, err := a.s.HypervisorServers(r.Context(), id)
	if err != nil {
		return
	}
	out := make([]any, 0, len(ss))
	for _, s := range ss {
		out = append(out, map[string]any{"uuid": s.ID, "name": s.InstanceName()})
	}
	m["servers"] = out
}

func (a *apiHandler) showHypervisor(w http.ResponseWriter, r *http.Request) {
	h, err := a.s.GetHypervisor(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	m := a.hypervisorView(r, h, true)
	if version(r).atLeast(53) && r.URL.Query().Get("with_servers") == "true" {
		a.addServers(r, m, h.ID)
	}
	rest.JSON(w, http.StatusOK, map[string]any{"hypervisor": m})
}

func (a *apiHandler) hypervisorUptime(w http.ResponseWriter, r *http.Request) {
	if _, err := a.s.GetHypervisor(r.Context(), chi.URLParam(r, "id")); err != nil {
		a.fail(w, r, err)
		return
	}
	// Agents report no uptime; Nova answers 501 for drivers without it,
	// which clients (openstack hypervisor show) expect and skip.
	a.fail(w, r, fault.New(fault.NotImplemented, "Virt driver does not implement uptime function."))
}

func (a *apiHandler) hypervisorStatistics(w http.ResponseWriter, r *http.Request) {
	st, err := a.s.HypervisorStatistics(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, map[string]any{"hypervisor_statistics": map[string]any{
		"count": st.Count, "current_workload": 0, "disk_available_least": st.LocalGB - st.Used.DiskGB,
		"free_disk_gb": st.LocalGB - st.Used.DiskGB, "free_ram_mb": st.MemoryMB - st.Used.MemoryMB,
		"local_gb": st.LocalGB, "local_gb_used": st.Used.DiskGB, "memory_mb": st.MemoryMB,
		"memory_mb_used": st.Used.MemoryMB, "running_vms": st.RunningVMs, "vcpus": st.VCPUs, "vcpus_used": st.Used.VCPUs,
	}})
}

func (a *apiHandler) searchHypervisors(servers bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		hs, err := a.s.ListHypervisors(r.Context(), chi.URLParam(r, "pattern"))
		if err != nil {
			a.fail(w, r, err)
			return
		}
		if len(hs) == 0 {
			a.fail(w, r, fault.NotFoundf("No hypervisor matching '%s' could be found.", chi.URLParam(r, "pattern")))
			return
		}
		out := make([]any, 0, len(hs))
		for i := range hs {
			m := a.hypervisorView(r, &hs[i], false)
			if servers {
				a.addServers(r, m, hs[i].ID)
			}
			out = append(out, m)
		}
		rest.JSON(w, http.StatusOK, map[string]any{"hypervisors": out})
	}
}

// --- aggregates ---

func aggregateView(r *http.Request, ag *Aggregate) map[string]any {
	var az any
	if z := ag.AvailabilityZone(); z != "" {
		az = z
	}
	m := map[string]any{"id": ag.ID, "name": ag.Name, "availability_zone": az, "hosts": ag.Hosts,
		"metadata": ag.Metadata, "created_at": apiTimeMicro(ag.CreatedAt), "updated_at": apiTimePtr(ag.UpdatedAt),
		"deleted": false, "deleted_at": nil}
	if version(r).atLeast(41) {
		m["uuid"] = ag.UUID
	}
	return m
}

func aggregateID(r *http.Request) (int64, error) {
	s := chi.URLParam(r, "id")
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fault.Invalidf("Invalid aggregate ID %s", s)
	}
	return id, nil
}

func (a *apiHandler) listAggregates(w http.ResponseWriter, r *http.Request) {
	ags, err := a.s.ListAggregates(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]any, 0, len(ags))
	for i := range ags {
		out = append(out, aggregateView(r, &ags[i]))
	}
	rest.JSON(w, http.StatusOK, map[string]any{"aggregates": out})
}

func (a *apiHandler) createAggregate(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Aggregate *struct {
			Name string  `json:"name"`
			AZ   *string `json:"availability_zone"`
		} `json:"aggregate"`
	}
	if err := decodeBody(r, &body); err != nil {
		a.fail(w, r, err)
		return
	}
	if err := requireKey(body.Aggregate != nil, "aggregate"); err != nil {
		a.fail(w, r, err)
		return
	}
	az := ""
	if body.Aggregate.AZ != nil {
		az = *body.Aggregate.AZ
	}
	ag, err := a.s.CreateAggregate(r.Context(), body.Aggregate.Name, az)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	m := aggregateView(r, ag)
	delete(m, "hosts")
	delete(m, "metadata")
	rest.JSON(w, http.StatusOK, map[string]any{"aggregate": m})
}

func (a *apiHandler) showAggregate(w http.ResponseWriter, r *http.Request) {
	id, err := aggregateID(r)
	if err == nil {
		var ag *Aggregate
		if ag, err = a.s.GetAggregate(r.Context(), id); err == nil {
			rest.JSON(w, http.StatusOK, map[string]any{"aggregate": aggregateView(r, ag)})
			return
		}
	}
	a.fail(w, r, err)
}

func (a *apiHandler) updateAggregate(w http.ResponseWriter, r *http.Request) {
	id, err := aggregateID(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var body struct {
		Aggregate *struct {
			Name *string `json:"name"`
			AZ   *string `json:"availability_zone"`
		} `json:"aggregate"`
	}
	if err := decodeBody(r, &body); err != nil {
		a.fail(w, r, err)
		return
	}
	if err := requireKey(body.Aggregate != nil, "aggregate"); err != nil {
		a.fail(w, r, err)
		return
	}
	ag, err := a.s.UpdateAggregate(r.Context(), id, body.Aggregate.Name, body.Aggregate.AZ)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, map[string]any{"aggregate": aggregateView(r, ag)})
}

func (a *apiHandler) deleteAggregate(w http.ResponseWriter, r *http.Request) {
	id, err := aggregateID(r)
	if err == nil {
		err = a.s.DeleteAggregate(r.Context(), id)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (a *apiHandler) aggregateAction(w http.ResponseWriter, r *http.Request) {
	id, err := aggregateID(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var body struct {
		Add *struct {
			Host string `json:"host"`
		} `json:"add_host"`
		Remove *struct {
			Host string `json:"host"`
		} `json:"remove_host"`
		Set *struct {
			Metadata map[string]*string `json:"metadata"`
		} `json:"set_metadata"`
	}
	if err := decodeBody(r, &body); err != nil {
		a.fail(w, r, err)
		return
	}
	var ag *Aggregate
	switch {
	case body.Add != nil:
		ag, err = a.s.AddAggregateHost(r.Context(), id, body.Add.Host)
	case body.Remove != nil:
		ag, err = a.s.RemoveAggregateHost(r.Context(), id, body.Remove.Host)
	case body.Set != nil:
		ag, err = a.s.SetAggregateMetadata(r.Context(), id, body.Set.Metadata)
	default:
		err = fault.Invalidf("Invalid input: the body must hold add_host, remove_host or set_metadata.")
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, map[string]any{"aggregate": aggregateView(r, ag)})
}

// --- server groups ---

func serverGroupView(r *http.Request, g *ServerGroup) map[string]any {
	m := map[string]any{"id": g.ID, "name": g.Name, "members": g.Members, "project_id": g.ProjectID, "user_id": g.UserID}
	if version(r).atLeast(64) {
		rules := map[string]any{}
		if g.MaxServerPerHost > 0 {
			rules["max_server_per_host"] = g.MaxServerPerHost
		}
		m["policy"], m["rules"] = g.Policy, rules
	} else {
		m["policies"], m["metadata"] = []string{g.Policy}, map[string]any{}
	}
	return m
}

func (a *apiHandler) listServerGroups(w http.ResponseWriter, r *http.Request) {
	limit, err := queryInt(r, "limit")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	offset, err := queryInt(r, "offset")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	all := r.URL.Query().Get("all_projects")
	gs, err := a.s.ListServerGroups(r.Context(), all == "true" || all == "True" || all == "1", limit, offset)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]any, 0, len(gs))
	for i := range gs {
		out = append(out, serverGroupView(r, &gs[i]))
	}
	rest.JSON(w, http.StatusOK, map[string]any{"server_groups": out})
}

func (a *apiHandler) createServerGroup(w http.ResponseWriter, r *http.Request) {
	var body struct {
		SG *struct {
			Name     string   `json:"name"`
			Policies []string `json:"policies"`
			Policy   string   `json:"policy"`
			Rules    *struct {
				MaxServerPerHost flexInt `json:"max_server_per_host"`
			} `json:"rules"`
		} `json:"server_group"`
	}
	if err := decodeBody(r, &body); err != nil {
		a.fail(w, r, err)
		return
	}
	if err := requireKey(body.SG != nil, "server_group"); err != nil {
		a.fail(w, r, err)
		return
	}
	pol, max := body.SG.Policy, 0
	if !version(r).atLeast(64) {
		if len(body.SG.Policies) != 1 {
			a.fail(w, r, fault.Invalidf("Invalid input for field/attribute policies. A server group takes exactly one policy."))
			return
		}
		pol = body.SG.Policies[0]
	} else if body.SG.Rules != nil {
		max = body.SG.Rules.MaxServerPerHost.v
		if body.SG.Rules.MaxServerPerHost.set && max < 1 {
			a.fail(w, r, fault.Invalidf("Invalid input for field/attribute max_server_per_host. It must be at least 1."))
			return
		}
	}
	g, err := a.s.CreateServerGroup(r.Context(), body.SG.Name, pol, max)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, map[string]any{"server_group": serverGroupView(r, g)})
}

func (a *apiHandler) showServerGroup(w http.ResponseWriter, r *http.Request) {
	g, err := a.s.GetServerGroup(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, map[string]any{"server_group": serverGroupView(r, g)})
}

func (a *apiHandler) deleteServerGroup(w http.ResponseWriter, r *http.Request) {
	if err := a.s.DeleteServerGroup(r.Context(), chi.URLParam(r, "id")); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
