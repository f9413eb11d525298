package network

// This file is the Neutron v2.0 REST API's router, version discovery,
// extensions and the helpers every handler shares. Handlers only
// translate: decode the request, call one service method (which checks
// policy itself) and encode the answer in Neutron's shapes, so
// python-openstackclient, openstacksdk and gophercloud work unchanged.

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/backend/platform/rest"
)

// apiMountPath is where the web server mounts the API; it completes a base
// URL derived from a request when none was configured.
const apiMountPath = "/network"

// apiHandler serves Neutron v2.0 over a Service.
type apiHandler struct {
	s    *Service
	base string // configured base URL without a trailing slash, or ""
}

// NewAPI returns the Neutron v2.0 REST API of s, to be mounted at
// /network. baseURL is the public URL of that mount point (such as
// http://127.0.0.1:8080/network), used in version and pagination links;
// when empty it is derived from each request. Tokens are validated by s's
// Config.Tokens, which must be set.
//
// Routes (all under /v2.0 but the resource index need X-Auth-Token; a
// trailing ".json" is accepted, as Neutron does):
//
//	GET    /                                   version discovery
//	GET    /v2.0                               resource index
//	GET    /v2.0/extensions[/{alias}]
//	GET    /v2.0/networks                      POST; GET, PUT, DELETE /v2.0/networks/{id}
//	GET    /v2.0/subnets                       POST; GET, PUT, DELETE /v2.0/subnets/{id}
//	GET    /v2.0/ports                         POST; GET, PUT, DELETE /v2.0/ports/{id}
//	GET    /v2.0/routers                       POST; GET, PUT, DELETE /v2.0/routers/{id}
//	PUT    /v2.0/routers/{id}/add_router_interface, /remove_router_interface
//	GET    /v2.0/floatingips                   POST; GET, PUT, DELETE /v2.0/floatingips/{id}
//	GET    /v2.0/security-groups               POST; GET, PUT, DELETE /v2.0/security-groups/{id}
//	GET    /v2.0/security-group-rules          POST; GET, DELETE /v2.0/security-group-rules/{id}
//	GET    /v2.0/quotas                        GET, PUT, DELETE /v2.0/quotas/{project_id}
//	GET    /v2.0/quotas/{project_id}/default, /details; GET /v2.0/quotas/tenant
//	GET    /v2.0/network-ip-availabilities[/{network_id}]
//
// Lists take any attribute as a filter (repeated means any of), fields,
// sort_key/sort_dir, and limit/marker with a <collection>_links next link.
func NewAPI(s *Service, baseURL string) http.Handler {
	if s.cfg.Tokens == nil {
		panic("network.NewAPI: Config.Tokens is required to authenticate requests")
	}
	a := &apiHandler{s: s, base: strings.TrimRight(baseURL, "/")}
	r := chi.NewRouter()
	r.Use(rest.WithRequestID, middleware.StripSlashes, apiStripJSONSuffix)
	r.NotFound(a.notFound)
	r.MethodNotAllowed(a.methodNotAllowed)

	r.Get("/", a.versions)
	r.Get("/v2.0", a.resources)
	r.Group(func(r chi.Router) {
		r.Use(auth.Middleware(s.cfg.Tokens, a.identityURL, a.fail))
		r.Get("/v2.0/extensions", a.listExtensions)
		r.Get("/v2.0/extensions/{alias}", a.getExtension)
		a.networkRoutes(r)
		a.subnetRoutes(r)
		a.portRoutes(r)
		a.routerRoutes(r)
		a.floatingIPRoutes(r)
		a.securityGroupRoutes(r)
		a.quotaRoutes(r)
		a.agentRoutes(r)
	})
	return r
}

// apiStripJSONSuffix accepts /v2.0/networks.json for /v2.0/networks, as
// Neutron (and older clients that add the suffix) do.
func apiStripJSONSuffix(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rctx := chi.RouteContext(r.Context())
		path := r.URL.Path
		if rctx != nil && rctx.RoutePath != "" {
			path = rctx.RoutePath
		}
		if trimmed, ok := strings.CutSuffix(path, ".json"); ok {
			if rctx != nil && rctx.RoutePath != "" {
				rctx.RoutePath = trimmed
			} else {
				r.URL.Path = trimmed
				r.URL.RawPath = ""
			}
		}
		next.ServeHTTP(w, r)
	})
}

// baseURL is the network API's public base URL, without a trailing slash.
func (a *apiHandler) baseURL(r *http.Request) string {
	if a.base != "" {
		return a.base
	}
	return rest.Origin(r) + apiMountPath
}

// identityURL is where a 401 sends clients to authenticate.
func (a *apiHandler) identityURL(r *http.Request) string {
	if a.s.cfg.IdentityURL != "" {
		return a.s.cfg.IdentityURL
	}
	return rest.Origin(r) + "/identity"
}

// fail writes err as Neutron's fault body.
func (a *apiHandler) fail(w http.ResponseWriter, r *http.Request, err error) {
	if fault.Status(err) == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Keystone uri="`+a.identityURL(r)+`"`)
	}
	rest.Fault(w, r, fault.NeutronBody, err)
}

func (a *apiHandler) notFound(w http.ResponseWriter, r *http.Request) {
	a.fail(w, r, fault.NotFoundf("The resource could not be found.").WithType("HTTPNotFound"))
}

func (a *apiHandler) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	rest.JSON(w, http.StatusMethodNotAllowed, map[string]any{"NeutronError": map[string]any{
		"type": "HTTPMethodNotAllowed", "detail": "",
		"message": fmt.Sprintf("The method %s is not allowed for this resource.", r.Method),
	}})
}

// versions is GET / : the one API version.
func (a *apiHandler) versions(w http.ResponseWriter, r *http.Request) {
	rest.JSON(w, http.StatusOK, map[string]any{"versions": []any{map[string]any{
		"id": "v2.0", "status": "CURRENT",
		"links": []any{map[string]any{"href": a.baseURL(r) + "/v2.0/", "rel": "self"}},
	}}})
}

// apiCollections are the core resources GET /v2.0 lists.
var apiCollections = [][2]string{
	{"network", "networks"}, {"subnet", "subnets"}, {"port", "ports"}, {"router", "routers"},
	{"floatingip", "floatingips"}, {"security_group", "security-groups"}, {"security_group_rule", "security-group-rules"},
}

// resources is GET /v2.0: the resource index.
func (a *apiHandler) resources(w http.ResponseWriter, r *http.Request) {
	out := make([]any, 0, len(apiCollections))
	for _, c := range apiCollections {
		out = append(out, map[string]any{"name": c[0], "collection": c[1],
			"links": []any{map[string]any{"href": a.baseURL(r) + "/v2.0/" + c[1], "rel": "self"}}})
	}
	rest.JSON(w, http.StatusOK, map[string]any{"resources": out})
}

// apiExtension is one entry of GET /v2.0/extensions.
type apiExtension struct{ alias, name, description, updated string }

// apiExtensions are the extensions this implementation provides in full;
// clients probe the list before using one.
var apiExtensions = []apiExtension{
	{"allowed-address-pairs", "Allowed Address Pairs", "Provides allowed address pairs", "2013-07-23T10:00:00-00:00"},
	{"binding", "Port Binding", "Expose port bindings of a virtual port to external application", "2014-02-03T10:00:00-00:00"},
	{"ext-gw-mode", "Neutron L3 Configurable external gateway mode",
		"Extension of the router abstraction for specifying whether SNAT should occur on the external gateway", "2013-03-28T10:00:00-00:00"},
	{"external-net", "Neutron external network", "Adds external network attribute to network resource.", "2013-01-14T10:00:00-00:00"},
	{"extraroute", "Neutron Extra Route", "Extra routes configuration for L3 router", "2013-02-01T10:00:00-00:00"},
	{"filter-validation", "Filter parameters validation", "Provides validation on filter parameters.", "2018-03-21T10:00:00-00:00"},
	{"net-mtu", "Network MTU", "Provides MTU attribute for a network resource.", "2015-03-25T10:00:00-00:00"},
	{"network-ip-availability", "Network IP Availability", "Provides IP availability data for each network and subnet.",
		"2015-09-24T00:00:00-00:00"},
	{"pagination", "Pagination support", "Extension that indicates that pagination is enabled.", "2016-06-12T00:00:00-00:00"},
	{"port-security", "Port Security", "Provides port security", "2012-07-23T10:00:00-00:00"},
	{"port-security-groups-filtering", "Port filtering on security groups", "Provides security groups filtering when listing ports",
		"2018-01-09T09:00:00-00:00"},
	{"project-id", "project_id field enabled", "Extension that indicates that project_id field is enabled.", "2016-09-09T09:09:09-09:09"},
	{"provider", "Provider Network", "Expose mapping of virtual networks to physical networks", "2012-09-07T10:00:00-00:00"},
	{"quota_details", "Quota details management support", "Expose functions for quotas usage statistics per project",
		"2017-02-10T10:00:00-00:00"},
	{"quotas", "Quota management support", "Expose functions for quotas management per tenant", "2012-07-29T10:00:00-00:00"},
	{"router", "Neutron L3 Router", "Router abstraction for basic L3 forwarding between L2 Neutron networks and access to external " +
		"networks via a NAT gateway.", "2012-07-20T10:00:00-00:00"},
	{"security-group", "security-group", "The security groups extension.", "2012-10-05T10:00:00-00:00"},
	{"sorting", "Sorting support", "Extension that indicates that sorting is enabled.", "2016-06-12T00:00:00-00:00"},
	{"standard-attr-description", "standard-attr-description", "Extension to add descriptions to standard attributes",
		"2016-02-10T10:00:00-00:00"},
	{"standard-attr-revisions", "Resource revision numbers", "This extension will display the revision number of neutron resources.",
		"2016-04-11T10:00:00-00:00"},
	{"standard-attr-timestamp", "Resource timestamps", "Adds created_at and updated_at fields to all Neutron resources that have " +
		"Neutron standard attributes.", "2016-09-12T10:00:00-00:00"},
	{"stateful-security-group", "Stateful security group", "Indicates if the security group is stateful or not",
		"2019-11-26T09:00:00-00:00"},
}

func (e apiExtension) json() map[string]any {
	return map[string]any{"alias": e.alias, "name": e.name, "description": e.description, "updated": e.updated, "links": []any{}}
}

func (a *apiHandler) listExtensions(w http.ResponseWriter, r *http.Request) {
	out := make([]any, 0, len(apiExtensions))
	for _, e := range apiExtensions {
		out = append(out, e.json())
	}
	rest.JSON(w, http.StatusOK, map[string]any{"extensions": out})
}

func (a *apiHandler) getExtension(w http.ResponseWriter, r *http.Request) {
	alias := chi.URLParam(r, "alias")
	for _, e := range apiExtensions {
		if e.alias == alias {
			rest.JSON(w, http.StatusOK, map[string]any{"extension": e.json()})
			return
		}
	}
	a.fail(w, r, fault.NotFoundf("Extension with alias %s does not exist", alias).WithType("HTTPNotFound"))
}

// --- shared encoding helpers ---

// apiTime formats a timestamp as Neutron does (whole seconds, UTC).
func apiTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// apiNullable is nil (JSON null) for "".
func apiNullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func apiNullInt(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}

// apiStandard adds the attributes every Neutron resource has.
func apiStandard(m map[string]any, id, project, description string, rev int, created, updated time.Time) map[string]any {
	m["id"] = id
	m["tenant_id"] = project
	m["project_id"] = project
	m["description"] = description
	m["revision_number"] = rev
	m["created_at"] = apiTime(created)
	m["updated_at"] = apiTime(updated)
	return m
}

// apiFields keeps only the attributes ?fields= asks for (all when none).
func apiFields(r *http.Request, m map[string]any) map[string]any {
	fields := r.URL.Query()["fields"]
	if len(fields) == 0 {
		return m
	}
	out := make(map[string]any, len(fields))
	for _, f := range fields {
		for _, k := range strings.Split(f, ",") {
			if v, ok := m[k]; ok {
				out[k] = v
			}
		}
	}
	return out
}

// writeOne writes a single resource under key.
func (a *apiHandler) writeOne(w http.ResponseWriter, r *http.Request, status int, key string, m map[string]any) {
	rest.JSON(w, status, map[string]any{key: apiFields(r, m)})
}

// writeList writes a collection; when more follow, <collection>_links has
// the next page after lastID with the same query.
// serveList answers a GET on a collection: one service list call, each item
// rendered, and the page's next link after the last item's key.
func serveList[T any](a *apiHandler, w http.ResponseWriter, r *http.Request, collection string,
	list func(context.Context, ListOptions) ([]T, bool, error), render func(*T) map[string]any, key func(*T) string) {
	o, err := apiListOptions(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	xs, more, err := list(r.Context(), o)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	items := make([]map[string]any, len(xs))
	last := ""
	for i := range xs {
		items[i] = render(&xs[i])
		last = key(&xs[i])
	}
	a.writeList(w, r, collection, items, more, last, o)
}

func (a *apiHandler) writeList(w http.ResponseWriter, r *http.Request, collection string, items []map[string]any, more bool, lastID string, o ListOptions) {
	out := make([]any, len(items))
	for i, m := range items {
		out[i] = apiFields(r, m)
	}
	body := map[string]any{collection: out}
	if more && lastID != "" {
		q := r.URL.Query()
		q.Set("marker", lastID)
		q.Set("limit", strconv.Itoa(o.Limit))
		body[collection+"_links"] = []any{map[string]any{
			"href": a.baseURL(r) + "/v2.0/" + strings.ReplaceAll(collection, "_", "-") + "?" + q.Encode(), "rel": "next",
		}}
	}
	rest.JSON(w, http.StatusOK, body)
}

// apiReserved are query parameters that are not filters.
var apiReserved = map[string]bool{"fields": true, "sort_key": true, "sort_dir": true, "limit": true, "marker": true, "page_reverse": true}

// apiListOptions reads Neutron's list query: every other parameter is a
// filter on the attribute it names.
func apiListOptions(r *http.Request) (ListOptions, error) {
	q := r.URL.Query()
	o := ListOptions{Filters: map[string][]string{}, SortKeys: q["sort_key"], SortDirs: q["sort_dir"], Marker: q.Get("marker")}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return o, fault.Invalidf("Limit must be an integer 0 or greater and not '%s'", s).WithType("HTTPBadRequest")
		}
		o.Limit = n
	}
	if b, ok := parseBool(q.Get("page_reverse")); ok && b {
		return o, fault.New(fault.NotImplemented, "page_reverse is not supported.").WithType("NotImplemented")
	}
	for k, v := range q {
		if !apiReserved[k] {
			o.Filters[k] = v
		}
	}
	return o, nil
}

// pathID is the {id} URL parameter, unescaped.
func pathID(r *http.Request, name string) string {
	v := chi.URLParam(r, name)
	if u, err := url.PathUnescape(v); err == nil {
		return u
	}
	return v
}
