package web

import (
	"net/http"
	"slices"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/nimbus-cloud/nimbus/backend/compute"
	"github.com/nimbus-cloud/nimbus/views"
)

// adminComputeRoutes declares the admin compute pages (inside the
// requireAdmin group); absent without a compute service.
func (s *Server) adminComputeRoutes(d chi.Router) {
	if s.comp == nil {
		return
	}
	d.Get(views.HypervisorsURL, s.hypervisorList)
	d.Get(views.AllInstancesURL, s.instanceList(true))
	d.Post(views.AllInstancesURL+"/bulk", s.instanceBulk)
	d.Get(views.FlavorsURL, s.flavorList)
	d.Get(views.FlavorsURL+"/new", s.flavorNew)
	d.Post(views.FlavorsURL, s.flavorCreate)
	d.Get(views.FlavorsURL+"/{id}/access", s.flavorAccessDialog)
	d.Post(views.FlavorsURL+"/{id}/access", s.flavorAccessChange(true))
	d.Post(views.FlavorsURL+"/{id}/access/remove", s.flavorAccessChange(false))
	d.Get(views.FlavorsURL+"/{id}/delete", s.flavorDeleteConfirm)
	d.Post(views.FlavorsURL+"/{id}/delete", s.flavorDelete)
	d.Get(views.ComputeServiceURL, s.computeServiceList)
	d.Post(views.ComputeServiceURL+"/{id}/enable", s.computeServiceSet(true))
	d.Post(views.ComputeServiceURL+"/{id}/disable", s.computeServiceSet(false))
}

// hypervisorList is GET /admin/hypervisors.
func (s *Server) hypervisorList(w http.ResponseWriter, r *http.Request) {
	hs, err := s.comp.ListHypervisors(r.Context(), "")
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	rows := make([]views.HypervisorRow, 0, len(hs))
	for _, h := range hs {
		rows = append(rows, views.HypervisorRow{
			ID: h.ID, Name: h.Hostname, Type: h.Type, IP: h.HostIP, Up: h.Up, Enabled: h.Enabled,
			VCPUsUsed: h.Used.VCPUs, VCPUs: h.VCPUs, RAMUsed: h.Used.MemoryMB, RAM: h.MemoryMB,
			DiskUsed: h.Used.DiskGB, Disk: h.LocalGB, RunningVMs: h.RunningVMs,
		})
	}
	slices.SortFunc(rows, func(a, b views.HypervisorRow) int { return byName(a.Name, b.Name) })
	s.page(w, r, http.StatusOK, "Hypervisors", views.NavHypervisors, views.HypervisorsPage(rows))
}

// flavorList is GET /admin/flavors: every flavor, public or not.
func (s *Server) flavorList(w http.ResponseWriter, r *http.Request) {
	fs, err := s.comp.ListFlavors(r.Context(), compute.FlavorFilter{AllVisibility: true, SortKey: "memory_mb"})
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	rows := make([]views.FlavorRow, 0, len(fs))
	for _, f := range fs {
		row := views.FlavorRow{ID: f.ID, Name: f.Name, VCPUs: f.VCPUs, RAM: f.MemoryMB, Disk: f.RootGB, Public: f.IsPublic, Disabled: f.Disabled}
		if !f.IsPublic {
			if ps, err := s.comp.FlavorAccess(r.Context(), f.ID); err == nil {
				row.Projects = len(ps)
			}
		}
		rows = append(rows, row)
	}
	s.page(w, r, http.StatusOK, "Flavors", views.NavFlavors, views.FlavorsPage(rows))
}

func (s *Server) renderFlavorForm(w http.ResponseWriter, r *http.Request, status int, f views.FlavorForm) {
	f.Action, f.Cancel = views.FlavorsURL, views.FlavorsURL
	s.formPage(w, r, status, "Create flavor", views.NavFlavors, views.FlavorsURL, "Flavors", views.FlavorFormView(f))
}

// flavorNew is GET /admin/flavors/new.
func (s *Server) flavorNew(w http.ResponseWriter, r *http.Request) {
	s.renderFlavorForm(w, r, http.StatusOK, views.FlavorForm{VCPUs: "1", RAM: "512", Disk: "1", Public: true})
}

// flavorCreate is POST /admin/flavors.
func (s *Server) flavorCreate(w http.ResponseWriter, r *http.Request) {
	f := views.FlavorForm{ID: field(r, "id"), Name: field(r, "name"), VCPUs: field(r, "vcpus"), RAM: field(r, "ram"), Disk: field(r, "disk"), Public: checked(r, "public")}
	requireName(&f.Form, f.Name, "flavor")
	num := func(name, v string, lo int64) int64 {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < lo {
			f.SetError(name, "Enter a whole number of at least "+strconv.FormatInt(lo, 10)+".")
		}
		return n
	}
	vcpus, ram, disk := num("vcpus", f.VCPUs, 1), num("ram", f.RAM, 1), num("disk", f.Disk, 0)
	if !f.Valid() {
		s.renderFlavorForm(w, r, http.StatusUnprocessableEntity, f)
		return
	}
	fl, err := s.comp.CreateFlavor(r.Context(), compute.Flavor{ID: f.ID, Name: f.Name, VCPUs: vcpus, MemoryMB: ram, RootGB: disk, IsPublic: f.Public})
	if err != nil {
		s.formFault(r, &f.Form, err, "name", "id", "vcpus", "ram", "disk")
		s.renderFlavorForm(w, r, formStatus(err), f)
		return
	}
	s.done(w, r, views.FlavorsURL, "Flavor "+quoted(fl.Name)+" created.")
}

func flavorDeleteConfirmation(id, name string) views.Confirm {
	return views.Confirm{
		Form:    views.Form{Action: views.Path(views.FlavorsURL, id, "delete"), Cancel: views.FlavorsURL},
		Title:   "Delete flavor",
		Lead:    "Delete the flavor",
		Subject: name,
		Detail:  "Instances built with it keep their size; no new instance can use it.",
		Button:  "Delete flavor",
		Danger:  true,
	}
}

// flavorDeleteConfirm is GET /admin/flavors/{id}/delete.
func (s *Server) flavorDeleteConfirm(w http.ResponseWriter, r *http.Request) {
	fl, err := s.comp.GetFlavor(r.Context(), urlID(r))
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	s.confirm(w, r, http.StatusOK, views.NavFlavors, "Flavors", flavorDeleteConfirmation(fl.ID, fl.Name))
}

// flavorDelete is POST /admin/flavors/{id}/delete.
func (s *Server) flavorDelete(w http.ResponseWriter, r *http.Request) {
	id := urlID(r)
	if err := s.comp.DeleteFlavor(r.Context(), id); err != nil {
		s.confirmFailed(w, r, views.NavFlavors, "Flavors", flavorDeleteConfirmation(id, id), err)
		return
	}
	s.done(w, r, views.FlavorsURL, "Flavor deleted.")
}

// computeServiceList is GET /admin/services.
func (s *Server) computeServiceList(w http.ResponseWriter, r *http.Request) {
	cs, err := s.comp.ListComputeServices(r.Context(), "")
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	rows := make([]views.ComputeServiceRow, 0, len(cs))
	for _, c := range cs {
		rows = append(rows, views.ComputeServiceRow{ID: c.ID, Host: c.Host, Zone: c.Zone, Up: c.Up, Enabled: c.Enabled, Reason: c.DisabledReason, Updated: c.UpdatedAt})
	}
	slices.SortFunc(rows, func(a, b views.ComputeServiceRow) int { return byName(a.Host, b.Host) })
	p := views.ServicesPage{Compute: rows, HasNetwork: s.nets != nil}
	if s.nets != nil {
		agents, err := s.nets.ListAgents(r.Context(), nil)
		if err != nil {
			s.errorPage(w, r, err)
			return
		}
		for _, a := range agents {
			p.Agents = append(p.Agents, views.NetworkAgentRow{ID: a.ID, Type: a.AgentType, Binary: a.Binary, Host: a.Host,
				Alive: a.Alive, AdminUp: a.AdminStateUp, Heartbeat: a.HeartbeatAt})
		}
	}
	s.page(w, r, http.StatusOK, "Services and agents", views.NavComputeService, views.ComputeServicesPage(p))
}

// computeServiceSet is POST /admin/services/{id}/enable and /disable.
func (s *Server) computeServiceSet(enabled bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u := compute.ServiceUpdate{Enabled: &enabled}
		if !enabled {
			reason := "Disabled from the dashboard by " + viewerFrom(r).UserName
			u.DisabledReason = &reason
		}
		cs, err := s.comp.UpdateComputeService(r.Context(), urlID(r), u)
		if err != nil {
			s.failed(w, r, views.ComputeServiceURL, err)
			return
		}
		word := "disabled"
		if enabled {
			word = "enabled"
		}
		s.done(w, r, views.ComputeServiceURL, "Compute service on "+quoted(cs.Host)+" "+word+".")
	}
}
