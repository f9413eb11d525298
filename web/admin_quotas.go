package web

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/nimbus-cloud/nimbus/backend/compute"
	"github.com/nimbus-cloud/nimbus/backend/identity"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/views"
)

// quotaResource is one quota the pages show, with its words.
type quotaResource struct {
	name, label, unit string
}

// computeQuotaResources are compute's quotas in the order the page lists
// them: the ones people change first.
var computeQuotaResources = []quotaResource{
	{compute.QuotaInstances, "Instances", ""},
	{compute.QuotaCores, "vCPUs", ""},
	{compute.QuotaRAM, "RAM", " MiB"},
	{compute.QuotaKeyPairs, "Key pairs", ""},
	{compute.QuotaServerGroups, "Server groups", ""},
	{compute.QuotaServerGroupMembers, "Server group members", ""},
	{compute.QuotaMetadataItems, "Metadata items", ""},
	{compute.QuotaInjectedFiles, "Injected files", ""},
	{compute.QuotaInjectedFileBytes, "Injected file size", " B"},
	{compute.QuotaInjectedPathBytes, "Injected file path length", " B"},
}

// networkQuotaResources are the network service's quotas.
var networkQuotaResources = []quotaResource{
	{"network", "Networks", ""},
	{"subnet", "Subnets", ""},
	{"port", "Ports", ""},
	{"router", "Routers", ""},
	{"floatingip", "Floating IPs", ""},
	{"security_group", "Security groups", ""},
	{"security_group_rule", "Security group rules", ""},
}

const (
	quotaCompute = "compute"
	quotaNetwork = "network"
)

func quotaTitle(service string) string {
	if service == quotaNetwork {
		return "Network quotas"
	}
	return "Compute quotas"
}

func quotaResourcesOf(service string) []quotaResource {
	if service == quotaNetwork {
		return networkQuotaResources
	}
	return computeQuotaResources
}

// quotaSection reads one service's quotas of project; a failure is shown in
// the section rather than failing the page.
func (s *Server) quotaSection(ctx context.Context, project, service string) views.QuotaSection {
	sec := views.QuotaSection{Service: service, Title: quotaTitle(service)}
	sec.Action = views.Path(views.AdminQuotasURL, project, service)
	sec.Cancel = views.AdminQuotasURL + "?project=" + url.QueryEscape(project)
	used, limit, err := s.quotaValues(ctx, project, service)
	if err != nil {
		sec.LoadError = fault.Message(err)
		return sec
	}
	for _, res := range quotaResourcesOf(service) {
		sec.Rows = append(sec.Rows, views.QuotaRow{
			Resource: res.name, Label: res.label, Unit: res.unit, Used: used[res.name], Limit: limit[res.name],
			Value: strconv.FormatInt(limit[res.name], 10),
		})
	}
	return sec
}

// quotaValues is what project uses and may use of each of service's
// resources.
func (s *Server) quotaValues(ctx context.Context, project, service string) (used, limit map[string]int64, err error) {
	used, limit = map[string]int64{}, map[string]int64{}
	switch service {
	case quotaCompute:
		qs, err := s.comp.GetQuotaUsage(ctx, project)
		if err != nil {
			return nil, nil, err
		}
		for k, q := range qs {
			used[k], limit[k] = q.InUse, q.Limit
		}
	case quotaNetwork:
		qs, err := s.nets.GetQuotaDetails(ctx, project)
		if err != nil {
			return nil, nil, err
		}
		for k, q := range qs {
			used[k], limit[k] = int64(q.Used), int64(q.Limit)
		}
	}
	return used, limit, nil
}

// quotaServices are the services with quotas in this deployment.
func (s *Server) quotaServices() []string {
	var out []string
	if s.comp != nil {
		out = append(out, quotaCompute)
	}
	if s.nets != nil {
		out = append(out, quotaNetwork)
	}
	return out
}

// adminQuotasModel gathers the page for project ("" is the viewer's
// project, else the first one).
func (s *Server) adminQuotasModel(r *http.Request, project string) (views.AdminQuotas, error) {
	ctx := r.Context()
	ps, _, err := s.id.ListProjects(ctx, identity.ProjectFilter{})
	if err != nil {
		return views.AdminQuotas{}, err
	}
	slices.SortFunc(ps, func(a, b identity.Project) int { return byName(a.Name, b.Name) })
	if project == "" && len(ps) > 0 {
		project = ps[0].ID
		if cur := viewerFrom(r).ProjectID; slices.ContainsFunc(ps, func(p identity.Project) bool { return p.ID == cur }) {
			project = cur
		}
	}
	var q views.AdminQuotas
	for _, p := range ps {
		q.Projects = append(q.Projects, views.Option{Value: p.ID, Label: p.Name, Selected: p.ID == project})
		if p.ID == project {
			q.ProjectID, q.ProjectName = p.ID, p.Name
		}
	}
	if project != "" && q.ProjectID == "" {
		return q, fault.NotFoundf("There is no project with ID %s.", project)
	}
	if q.ProjectID == "" {
		return q, nil
	}
	for _, svc := range s.quotaServices() {
		q.Sections = append(q.Sections, s.quotaSection(ctx, q.ProjectID, svc))
	}
	return q, nil
}

// adminQuotas is GET /admin/quotas?project=ID.
func (s *Server) adminQuotas(w http.ResponseWriter, r *http.Request) {
	q, err := s.adminQuotasModel(r, r.URL.Query().Get("project"))
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	s.page(w, r, http.StatusOK, "Quotas", views.NavAdminQuotas, views.AdminQuotasPage(q))
}

// quotaTarget reads the project and service a quota URL names and where
// its form returns; it answers the request itself when either is unknown.
func (s *Server) quotaTarget(w http.ResponseWriter, r *http.Request) (*identity.Project, string, string, bool) {
	service := chi.URLParam(r, "service")
	if !slices.Contains(s.quotaServices(), service) {
		s.notFound(w, r)
		return nil, "", "", false
	}
	p, err := s.id.GetProject(r.Context(), chi.URLParam(r, "project"))
	if err != nil {
		s.errorPage(w, r, err)
		return nil, "", "", false
	}
	return p, service, views.AdminQuotasURL + "?project=" + url.QueryEscape(p.ID), true
}

// adminQuotaUpdate is POST /admin/quotas/{project}/{service}: it sends the
// service only the limits that changed, so a project keeps following the
// defaults for the rest.
func (s *Server) adminQuotaUpdate(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p, service, back, ok := s.quotaTarget(w, r)
	if !ok {
		return
	}
	sec := s.quotaSection(ctx, p.ID, service)
	if sec.LoadError != "" {
		s.renderQuotaSection(w, r, http.StatusServiceUnavailable, p.ID, sec)
		return
	}
	changed := map[string]int64{}
	for i := range sec.Rows {
		row := &sec.Rows[i]
		row.Value = field(r, row.Resource)
		v, err := strconv.ParseInt(row.Value, 10, 64)
		switch {
		case err != nil || v < -1:
			row.Error = "Enter a whole number, or -1 for no limit."
		case v > 1<<31-1:
			row.Error = "Enter a number no larger than 2147483647."
		case v != row.Limit:
			changed[row.Resource] = v
		}
		if row.Error != "" {
			sec.SetError(row.Resource, row.Error)
		}
	}
	if !sec.Valid() {
		sec.Error = "Correct the limits marked below."
		s.renderQuotaSection(w, r, http.StatusUnprocessableEntity, p.ID, sec)
		return
	}
	if len(changed) == 0 {
		s.finish(w, r, back, "info", "No limit changed for "+quoted(p.Name)+".")
		return
	}
	var err error
	switch service {
	case quotaCompute:
		_, err = s.comp.UpdateQuotas(ctx, p.ID, changed, false)
	case quotaNetwork:
		set := make(map[string]int, len(changed))
		for k, v := range changed {
			set[k] = int(v)
		}
		_, err = s.nets.UpdateQuota(ctx, p.ID, set, true)
	}
	if err != nil {
		s.formFault(r, &sec.Form, err)
		s.renderQuotaSection(w, r, formStatus(err), p.ID, sec)
		return
	}
	s.done(w, r, back, quotaTitle(service)+" of "+quoted(p.Name)+" saved.")
}

// adminQuotaReset is GET (the question) and POST
// /admin/quotas/{project}/{service}/reset: the project's limits of that
// service go back to the defaults, as `openstack quota delete` does.
func (s *Server) adminQuotaReset(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p, service, back, ok := s.quotaTarget(w, r)
	if !ok {
		return
	}
	title := quotaTitle(service)
	c := views.Confirm{
		Form:    views.Form{Action: views.Path(views.AdminQuotasURL, p.ID, service, "reset"), Cancel: back},
		Title:   "Reset " + strings.ToLower(title),
		Lead:    "Reset the " + strings.ToLower(title) + " of",
		Subject: p.Name,
		Detail:  "Every limit goes back to the cloud's default; what the project uses is unchanged.",
		Button:  "Reset to defaults",
		Danger:  true,
	}
	if r.Method == http.MethodGet {
		s.confirm(w, r, http.StatusOK, views.NavAdminQuotas, "Quotas", c)
		return
	}
	var err error
	switch service {
	case quotaCompute:
		err = s.comp.DeleteQuotas(ctx, p.ID)
	case quotaNetwork:
		err = s.nets.DeleteQuota(ctx, p.ID)
	}
	if err != nil {
		s.confirmFailed(w, r, views.NavAdminQuotas, "Quotas", c, err)
		return
	}
	s.done(w, r, back, title+" of "+quoted(p.Name)+" reset to the defaults.")
}

// renderQuotaSection answers a refused quota change: the section alone for
// htmx, which swaps it in place, or the whole page with it otherwise.
func (s *Server) renderQuotaSection(w http.ResponseWriter, r *http.Request, status int, project string, sec views.QuotaSection) {
	if isHX(r) {
		s.render(w, r, status, views.QuotaSectionView(project, sec))
		return
	}
	q, err := s.adminQuotasModel(r, project)
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	for i := range q.Sections {
		if q.Sections[i].Service == sec.Service {
			q.Sections[i] = sec
		}
	}
	s.page(w, r, status, "Quotas", views.NavAdminQuotas, views.AdminQuotasPage(q))
}
