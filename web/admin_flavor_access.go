package web

import (
	"net/http"
	"slices"
	"strings"

	"github.com/nimbus-cloud/nimbus/views"
)

// flavorAccessForm fills f for private flavor id: the projects that have
// it, by name, and the others to choose from.
func (s *Server) flavorAccessForm(r *http.Request, id string, f *views.FlavorAccessForm) error {
	ctx := r.Context()
	fl, err := s.comp.GetFlavor(ctx, id)
	if err != nil {
		return err
	}
	granted, err := s.comp.FlavorAccess(ctx, id)
	if err != nil {
		return err
	}
	f.FlavorID, f.FlavorName, f.Cancel = fl.ID, fl.Name, views.FlavorsURL
	names := s.projectNames(ctx)
	for _, p := range granted {
		f.Granted = append(f.Granted, views.Option{Value: p, Label: nameOr(names, p)})
	}
	f.Projects = []views.Option{{Value: "", Label: "Choose a project"}}
	for pid, name := range names {
		if !slices.Contains(granted, pid) {
			f.Projects = append(f.Projects, views.Option{Value: pid, Label: name, Selected: pid == field(r, "project")})
		}
	}
	slices.SortFunc(f.Projects[1:], func(a, b views.Option) int { return strings.Compare(a.Label, b.Label) })
	return nil
}

func (s *Server) renderFlavorAccess(w http.ResponseWriter, r *http.Request, status int, f views.FlavorAccessForm) {
	s.formPage(w, r, status, "Flavor access", views.NavFlavors, views.FlavorsURL, "Flavors", views.FlavorAccessView(f))
}

// flavorAccessDialog is GET /admin/flavors/{id}/access.
func (s *Server) flavorAccessDialog(w http.ResponseWriter, r *http.Request) {
	var f views.FlavorAccessForm
	if err := s.flavorAccessForm(r, urlID(r), &f); err != nil {
		s.errorPage(w, r, err)
		return
	}
	s.renderFlavorAccess(w, r, http.StatusOK, f)
}

// flavorAccessChange is POST /admin/flavors/{id}/access (add) and
// .../access/remove: the dialog comes back as it now is, or with the
// refusal in it.
func (s *Server) flavorAccessChange(add bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, project := urlID(r), field(r, "project")
		var f views.FlavorAccessForm
		var err error
		status := http.StatusOK
		switch {
		case project == "" && add:
			f.SetError("project", "Choose the project to share the flavor with.")
			status = http.StatusUnprocessableEntity
		case add:
			_, err = s.comp.AddFlavorAccess(r.Context(), id, project)
		default:
			_, err = s.comp.RemoveFlavorAccess(r.Context(), id, project)
		}
		if err != nil {
			s.formFault(r, &f.Form, err)
			status = formStatus(err)
		}
		if ferr := s.flavorAccessForm(r, id, &f); ferr != nil {
			s.errorPage(w, r, ferr)
			return
		}
		if !isHX(r) && status == http.StatusOK {
			http.Redirect(w, r, views.Path(views.FlavorsURL, id, "access"), http.StatusSeeOther)
			return
		}
		s.renderFlavorAccess(w, r, status, f)
	}
}
