package web

import (
	"net/http"

	"github.com/nimbus-cloud/nimbus/backend/network"
	"github.com/nimbus-cloud/nimbus/views"
)

// editFields reads an edit form's fields as posted.
func editFields(r *http.Request, f *views.EditForm) {
	f.Name, f.Description = field(r, "name"), field(r, "description")
	f.Shared = checked(r, "shared")
}

// networkEdit is GET and POST /project/networks/{id}/edit: name,
// description and, for admins, sharing.
func (s *Server) networkEdit(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	n, err := s.nets.GetNetwork(ctx, urlID(r))
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	back := views.Path(views.NetworksURL, n.ID)
	f := views.EditForm{Form: views.Form{Action: views.Path(views.NetworksURL, n.ID, "edit"), Cancel: back},
		Name: n.Name, Description: n.Description,
		CanShare: viewerFrom(r).Creds.IsAdmin(), Shared: n.Shared, Submit: "Save network"}
	status := http.StatusOK
	if r.Method == http.MethodPost {
		editFields(r, &f)
		u := network.NetworkUpdate{Name: &f.Name, Description: &f.Description}
		if f.CanShare {
			u.Shared = &f.Shared
		}
		if _, err := s.nets.UpdateNetwork(ctx, n.ID, u); err != nil {
			s.formFault(r, &f.Form, inWords(err, "change this network"), "name", "description")
			status = formStatus(err)
		} else {
			s.done(w, r, back, "Network "+quoted(netLabel(f.Name, n.ID))+" saved.")
			return
		}
	}
	s.formPage(w, r, status, "Edit network", views.NavNetworks, back, "Network", views.EditFormView(f))
}

// routerEdit is GET and POST /project/routers/{id}/edit.
func (s *Server) routerEdit(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	rt, err := s.nets.GetRouter(ctx, urlID(r))
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	back := views.Path(views.RoutersURL, rt.ID)
	f := views.EditForm{Form: views.Form{Action: views.Path(views.RoutersURL, rt.ID, "edit"), Cancel: back},
		Name: rt.Name, Description: rt.Description, Submit: "Save router"}
	status := http.StatusOK
	if r.Method == http.MethodPost {
		editFields(r, &f)
		u := network.RouterUpdate{Name: &f.Name, Description: &f.Description}
		if _, err := s.nets.UpdateRouter(ctx, rt.ID, u); err != nil {
			s.formFault(r, &f.Form, inWords(err, "change this router"), "name", "description")
			status = formStatus(err)
		} else {
			s.done(w, r, back, "Router "+quoted(netLabel(f.Name, rt.ID))+" saved.")
			return
		}
	}
	s.formPage(w, r, status, "Edit router", views.NavRouters, back, "Router", views.EditFormView(f))
}

// secGroupEdit is GET and POST /project/security-groups/{id}/edit.
func (s *Server) secGroupEdit(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	g, err := s.nets.GetSecurityGroup(ctx, urlID(r))
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	back := views.Path(views.SecurityGroupsURL, g.ID)
	f := views.EditForm{Form: views.Form{Action: views.Path(views.SecurityGroupsURL, g.ID, "edit"), Cancel: back},
		Name: g.Name, Description: g.Description, Submit: "Save group"}
	status := http.StatusOK
	if r.Method == http.MethodPost {
		editFields(r, &f)
		u := network.SecurityGroupUpdate{Description: &f.Description}
		if f.Name != g.Name {
			u.Name = &f.Name
		}
		if _, err := s.nets.UpdateSecurityGroup(ctx, g.ID, u); err != nil {
			s.formFault(r, &f.Form, inWords(err, "change this security group"), "name", "description")
			status = formStatus(err)
		} else {
			s.done(w, r, back, "Security group "+quoted(f.Name)+" saved.")
			return
		}
	}
	s.formPage(w, r, status, "Edit security group", views.NavSecurityGroups, back, "Security group", views.EditFormView(f))
}
