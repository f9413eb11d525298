package web

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/nimbus-cloud/nimbus/backend/identity"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/views"
)

// This file holds what the Identity pages share: reading forms, domain and
// role choices, filtering, and the confirmation step.

// field returns a form value without surrounding whitespace.
func field(r *http.Request, name string) string {
	return strings.TrimSpace(r.PostFormValue(name))
}

// checked reports whether a checkbox was ticked (unticked sends nothing).
func checked(r *http.Request, name string) bool { return r.PostFormValue(name) == "true" }

// requireName records a field error when a required name is blank.
func requireName(f *views.Form, name, what string) {
	if name == "" {
		f.SetError("name", "Enter a name for the "+what+".")
	}
}

// formFault puts a service fault into the form in the user's words. A fault
// about a named field ("Invalid input for field 'name': ...") goes beside
// that field when the form has it.
func (s *Server) formFault(r *http.Request, f *views.Form, err error, fields ...string) {
	if fault.Status(err) >= 500 && !errors.Is(err, context.Canceled) {
		s.log.ErrorContext(r.Context(), "dashboard form failed", "path", r.URL.Path, "err", err)
	}
	msg := fault.Message(err)
	for _, name := range fields {
		if strings.Contains(msg, "field '"+name+"'") {
			f.SetError(name, msg)
			return
		}
	}
	f.Error = msg
}

// matches reports whether any of fields contains q, ignoring case.
func matches(q string, fields ...string) bool {
	if q == "" {
		return true
	}
	q = strings.ToLower(q)
	for _, f := range fields {
		if strings.Contains(strings.ToLower(f), q) {
			return true
		}
	}
	return false
}

func byName(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) }

// domainNames maps domain IDs to names for the lists; a failure only costs
// the names (the IDs are shown instead).
func (s *Server) domainNames(ctx context.Context) (map[string]string, []identity.Domain) {
	ds, _, err := s.id.ListDomains(ctx, identity.DomainFilter{})
	if err != nil {
		s.log.WarnContext(ctx, "list domains", "err", err)
	}
	m := make(map[string]string, len(ds))
	for _, d := range ds {
		m[d.ID] = d.Name
	}
	return m, ds
}

func nameOr(m map[string]string, id string) string {
	if n, ok := m[id]; ok && n != "" {
		return n
	}
	return id
}

func domainOptions(ds []identity.Domain, selected string) []views.Option {
	opts := make([]views.Option, 0, len(ds))
	for _, d := range ds {
		if !d.Enabled && d.ID != selected {
			continue
		}
		opts = append(opts, views.Option{Value: d.ID, Label: d.Name, Selected: d.ID == selected})
	}
	slices.SortFunc(opts, func(a, b views.Option) int { return byName(a.Label, b.Label) })
	return opts
}

// domainOrDefault is the posted domain, or the default domain.
func domainOrDefault(r *http.Request) string {
	if d := field(r, "domain_id"); d != "" {
		return d
	}
	return identity.DefaultDomainID
}

// confirm renders a confirmation step: in the dialog for htmx, as a page otherwise.
func (s *Server) confirm(w http.ResponseWriter, r *http.Request, status int, nav, backLabel string, c views.Confirm) {
	s.formPage(w, r, status, c.Title, nav, c.Cancel, backLabel, views.ConfirmForm(c))
}

// confirmFailed re-renders a confirmation with the service's refusal.
func (s *Server) confirmFailed(w http.ResponseWriter, r *http.Request, nav, backLabel string, c views.Confirm, err error) {
	s.formFault(r, &c.Form, err)
	s.confirm(w, r, formStatus(err), nav, backLabel, c)
}

// quoted wraps user text for messages: Project “web” created.
func quoted(s string) string { return "“" + s + "”" }

// urlID is the {id} path parameter.
func urlID(r *http.Request) string { return chi.URLParam(r, "id") }

// roleOptions lists roles for a select, preselecting the role named
// preferName when selected is "".
func roleOptions(roles []identity.Role, selected, preferName string) []views.Option {
	slices.SortFunc(roles, func(a, b identity.Role) int { return byName(a.Name, b.Name) })
	opts := make([]views.Option, 0, len(roles))
	for _, ro := range roles {
		sel := ro.ID == selected || (selected == "" && ro.Name == preferName)
		opts = append(opts, views.Option{Value: ro.ID, Label: ro.Name, Selected: sel})
	}
	return opts
}

// projectOptions lists projects for a select, after a "none" choice.
func projectOptions(ps []identity.Project, selected, none string) []views.Option {
	slices.SortFunc(ps, func(a, b identity.Project) int { return byName(a.Name, b.Name) })
	opts := []views.Option{{Value: "", Label: none, Selected: selected == ""}}
	for _, p := range ps {
		opts = append(opts, views.Option{Value: p.ID, Label: p.Name, Selected: p.ID == selected})
	}
	return opts
}

// displayName is the name of a project, user, group or role for a message,
// or its ID when it cannot be read (for example because it is gone).
func (s *Server) displayName(ctx context.Context, kind, id string) string {
	var name string
	switch kind {
	case identity.TargetProject:
		if p, err := s.id.GetProject(ctx, id); err == nil {
			name = p.Name
		}
	case identity.ActorUser:
		if u, err := s.id.GetUser(ctx, id); err == nil {
			name = u.Name
		}
	case identity.ActorGroup:
		if g, err := s.id.GetGroup(ctx, id); err == nil {
			name = g.Name
		}
	case "role":
		if ro, err := s.id.GetRole(ctx, id); err == nil {
			name = ro.Name
		}
	}
	if name == "" {
		return id
	}
	return name
}
