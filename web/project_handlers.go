package web

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/nimbus-cloud/nimbus/backend/identity"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/views"
)

var errNoProject = fault.Invalidf("This session is not scoped to a project. Switch to a project first.")

// overview is GET /project/overview: the current project, the user's roles,
// the token's expiry and the API endpoints of the token's catalog.
func (s *Server) overview(w http.ResponseWriter, r *http.Request) {
	v := viewerFrom(r)
	ti, err := s.id.ShowToken(r.Context(), v.Token)
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	o := views.Overview{
		ProjectID:   v.ProjectID,
		ProjectName: v.ProjectName,
		UserName:    ti.User.Name,
		UserID:      ti.User.ID,
		UserDomain:  ti.UserDomain.Name,
		Roles:       slices.Sorted(slices.Values(v.Creds.Roles)),
		ExpiresAt:   ti.Credentials.ExpiresAt,
		Now:         s.now(),
		Endpoints:   endpointRows(ti.Catalog),
	}
	if ti.Project != nil {
		o.ProjectID, o.ProjectName, o.Description = ti.Project.ID, ti.Project.Name, ti.Project.Description
	}
	if ti.ProjectDom != nil {
		o.ProjectDomain = ti.ProjectDom.Name
	}
	o.AuthURL, _ = authURL(r, ti.Catalog)
	o.Usage = s.projectUsage(r)
	s.page(w, r, http.StatusOK, "Overview", views.NavOverview, views.OverviewPage(o))
}

// openrc is GET /project/api-access/openrc: a shell file that sets the
// OS_* variables for this user and project and prompts for the password.
func (s *Server) openrc(w http.ResponseWriter, r *http.Request) {
	v := viewerFrom(r)
	ti, err := s.id.ShowToken(r.Context(), v.Token)
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	if ti.Project == nil {
		s.errorPage(w, r, errNoProject)
		return
	}
	au, region := authURL(r, ti.Catalog)
	projectDomain := ti.Project.DomainID
	if ti.ProjectDom != nil {
		projectDomain = ti.ProjectDom.ID
	}
	userDomain := ti.UserDomain.Name
	if userDomain == "" {
		userDomain = v.DomainName
	}
	body := openrcFile(openrcValues{
		AuthURL:         au,
		ProjectID:       ti.Project.ID,
		ProjectName:     ti.Project.Name,
		ProjectDomainID: projectDomain,
		UserDomainName:  userDomain,
		UserName:        ti.User.Name,
		Region:          region,
	})
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+fileSafe(ti.Project.Name)+`-openrc.sh"`)
	_, _ = w.Write([]byte(body))
}

// systemInfo is GET /admin/system: every catalog service, endpoint and
// region, disabled ones included (a token's catalog shows only enabled ones).
func (s *Server) systemInfo(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	services, err := s.id.ListCatalogServices(ctx, "")
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	endpoints, err := s.id.ListEndpoints(ctx, identity.EndpointFilter{})
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	regions, err := s.id.ListRegions(ctx, "")
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	// Group the endpoints under their services, as a catalog does.
	cat := make([]identity.CatalogEntry, 0, len(services))
	index := map[string]int{}
	for _, sv := range services {
		index[sv.ID] = len(cat)
		cat = append(cat, identity.CatalogEntry{Service: sv})
	}
	for _, ep := range endpoints {
		if i, ok := index[ep.ServiceID]; ok {
			cat[i].Endpoints = append(cat[i].Endpoints, ep)
		}
	}
	var si views.SystemInfo
	for _, e := range cat {
		si.Services = append(si.Services, views.ServiceRow{
			Name: e.Service.Name, Type: e.Service.Type, Description: e.Service.Description,
			Enabled: e.Service.Enabled, Endpoints: len(e.Endpoints),
		})
	}
	slices.SortFunc(si.Services, func(a, b views.ServiceRow) int { return strings.Compare(a.Type, b.Type) })
	si.Endpoints = endpointRows(cat)
	for _, rg := range regions {
		si.Regions = append(si.Regions, rg.ID)
	}
	slices.Sort(si.Regions)
	s.page(w, r, http.StatusOK, "System information", views.NavSystem, views.SystemInfoPage(si))
}

// endpointRows flattens a catalog into rows sorted by service type and
// interface (public first).
func endpointRows(cat []identity.CatalogEntry) []views.EndpointRow {
	var rows []views.EndpointRow
	for _, e := range cat {
		name := e.Service.Name
		if name == "" {
			name = e.Service.Type
		}
		for _, ep := range e.Endpoints {
			rows = append(rows, views.EndpointRow{
				Service: name, Type: e.Service.Type, Interface: ep.Interface,
				Region: ep.RegionID, URL: ep.URL, Enabled: ep.Enabled,
			})
		}
	}
	order := map[string]int{"public": 0, "internal": 1, "admin": 2}
	slices.SortStableFunc(rows, func(a, b views.EndpointRow) int {
		if c := strings.Compare(a.Type, b.Type); c != 0 {
			return c
		}
		return order[a.Interface] - order[b.Interface]
	})
	return rows
}

// authURL is the identity API's public v3 URL from the catalog, with its
// region, or derived from the request when the catalog has none.
func authURL(r *http.Request, cat []identity.CatalogEntry) (url, region string) {
	for _, e := range cat {
		if e.Service.Type != "identity" {
			continue
		}
		for _, ep := range e.Endpoints {
			if ep.Interface == "public" {
				u := strings.TrimRight(ep.URL, "/")
				if !strings.HasSuffix(u, "/v3") {
					u += "/v3"
				}
				return u, ep.RegionID
			}
		}
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + "/identity/v3", ""
}

type openrcValues struct {
	AuthURL         string
	ProjectID       string
	ProjectName     string
	ProjectDomainID string
	UserDomainName  string
	UserName        string
	Region          string
}

// openrcFile renders an OpenStack RC file. Every value is single-quoted, so
// a name with quotes, $ or backquotes stays a literal string.
func openrcFile(v openrcValues) string {
	var b strings.Builder
	b.WriteString("#!/usr/bin/env bash\n")
	b.WriteString("# OpenStack RC file generated by the Nimbus dashboard.\n")
	b.WriteString("# Source it (`. ./this-file`) to use the openstack client with this project.\n\n")
	b.WriteString("# Clear settings that would conflict with a password login.\n")
	b.WriteString("unset OS_TOKEN OS_AUTH_TYPE OS_APPLICATION_CREDENTIAL_ID OS_APPLICATION_CREDENTIAL_SECRET\n")
	b.WriteString("unset OS_TENANT_ID OS_TENANT_NAME OS_PROJECT_DOMAIN_NAME OS_USER_DOMAIN_ID\n\n")
	export := func(k, val string) { fmt.Fprintf(&b, "export %s=%s\n", k, shellQuote(val)) }
	export("OS_AUTH_URL", v.AuthURL)
	export("OS_IDENTITY_API_VERSION", "3")
	export("OS_PROJECT_ID", v.ProjectID)
	export("OS_PROJECT_NAME", v.ProjectName)
	export("OS_PROJECT_DOMAIN_ID", v.ProjectDomainID)
	export("OS_USER_DOMAIN_NAME", v.UserDomainName)
	export("OS_USERNAME", v.UserName)
	if v.Region != "" {
		export("OS_REGION_NAME", v.Region)
	} else {
		b.WriteString("unset OS_REGION_NAME\n")
	}
	export("OS_INTERFACE", "public")
	b.WriteString("\n# Ask for the password rather than store it in this file.\n")
	b.WriteString("echo \"Please enter your OpenStack password for project $OS_PROJECT_NAME as user $OS_USERNAME: \"\n")
	b.WriteString("read -sr OS_PASSWORD_INPUT\n")
	b.WriteString("export OS_PASSWORD=$OS_PASSWORD_INPUT\n")
	b.WriteString("unset OS_PASSWORD_INPUT\n")
	return b.String()
}

// shellQuote single-quotes s for POSIX shells.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

var unsafeFileChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// fileSafe makes a project name usable in a download's file name.
func fileSafe(name string) string {
	f := strings.Trim(unsafeFileChars.ReplaceAllString(name, "_"), "._")
	if f == "" {
		return "project"
	}
	if len(f) > 60 {
		f = f[:60]
	}
	return f
}
