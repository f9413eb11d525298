package web

import (
	"net/http"

	"github.com/nimbus-cloud/nimbus/backend/network"
	"github.com/nimbus-cloud/nimbus/views"
)

// editable is a network resource as its edit dialog needs it.
type editable struct {
	page        string // the resource's page: the dialog's way back
	noun        string // "network": the dialog's words
	nav         string
	name, desc  string
	label       func(name string) string // the name in the saved message
	canShare    bool
	shared      bool
	save        func(f *views.EditForm) error
	backLabel   string
	submitLabel string
}

// edit is GET (the dialog) and POST (the change) of one resource's edit
// form: name, description and, where offered, sharing.
func (s *Server) edit(w http.ResponseWriter, r *http.Request, e editable) {
	f := views.EditForm{Form: views.Form{Action: e.page + "/edit", Cancel: e.page},
		Name: e.name, Description: e.desc, CanShare: e.canShare, Shared: e.shared, Submit: e.submitLabel}
	status := http.StatusOK
	if r.Method == http.MethodPost {
		f.Name, f.Description, f.Shared = field(r, "name"), field(r, "description"), checked(r, "shared")
		if err := e.save(&f); err != nil {
			s.formFault(r, &f.Form, inWords(err, "change this "+e.noun), "name", "description")
			status = formStatus(err)
		} else {
			s.done(w, r, e.page, e.backLabel+" "+quoted(e.label(f.Name))+" saved.")
			return
		}
	}
	s.formPage(w, r, status, "Edit "+e.noun, e.nav, e.page, e.backLabel, views.EditFormView(f))
}

// networkEdit is GET and POST /project/networks/{id}/edit: name,
// description and, for admins, sharing.
func (s *Server) networkEdit(w http.ResponseWriter, r *http.Request) {
	n, err := s.nets.GetNetwork(r.Context(), urlID(r))
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	admin := viewerFrom(r).Creds.IsAdmin()
	s.edit(w, r, editable{page: views.Path(views.NetworksURL, n.ID), noun: "network", nav: views.NavNetworks,
		name: n.Name, desc: n.Description, canShare: admin, shared: n.Shared,
		label: func(name string) string { return netLabel(name, n.ID) }, backLabel: "Network", submitLabel: "Save network",
		save: func(f *views.EditForm) error {
			u := network.NetworkUpdate{Name: &f.Name, Description: &f.Description}
			if admin {
				u.Shared = &f.Shared
			}
			_, err := s.nets.UpdateNetwork(r.Context(), n.ID, u)
			return err
		}})
}

// routerEdit is GET and POST /project/routers/{id}/edit.
func (s *Server) routerEdit(w http.ResponseWriter, r *http.Request) {
	rt, err := s.nets.GetRouter(r.Context(), urlID(r))
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	s.edit(w, r, editable{page: views.Path(views.RoutersURL, rt.ID), noun: "router", nav: views.NavRouters,
		name: rt.Name, desc: rt.Description,
		label: func(name string) string { return netLabel(name, rt.ID) }, backLabel: "Router", submitLabel: "Save router",
		save: func(f *views.EditForm) error {
			_, err := s.nets.UpdateRouter(r.Context(), rt.ID, network.RouterUpdate{Name: &f.Name, Description: &f.Description})
			return err
		}})
}

// secGroupEdit is GET and POST /project/security-groups/{id}/edit. The
// name is sent only when it changed: Neutron refuses any rename of the
// default group, even to its own name.
func (s *Server) secGroupEdit(w http.ResponseWriter, r *http.Request) {
	g, err := s.nets.GetSecurityGroup(r.Context(), urlID(r))
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	s.edit(w, r, editable{page: views.Path(views.SecurityGroupsURL, g.ID), noun: "security group", nav: views.NavSecurityGroups,
		name: g.Name, desc: g.Description,
		label: func(name string) string { return name }, backLabel: "Security group", submitLabel: "Save group",
		save: func(f *views.EditForm) error {
			u := network.SecurityGroupUpdate{Description: &f.Description}
			if f.Name != g.Name {
				u.Name = &f.Name
			}
			_, err := s.nets.UpdateSecurityGroup(r.Context(), g.ID, u)
			return err
		}})
}
