package compute

// This file is the Nova v2.1 REST API's router, version discovery,
// microversion negotiation and the helpers every handler shares. Handlers
// only translate: decode the request, call one service method (which
// checks policy itself) and encode the answer in Nova's shapes for the
// negotiated microversion, so python-novaclient, openstacksdk and
// gophercloud work unchanged.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/backend/platform/rest"
)

// apiMountPath is where the web server mounts the API.
const apiMountPath = "/compute"

// Microversions this implementation serves. 2.79 is the newest whose
// response shapes it follows throughout; clients (openstacksdk, novaclient)
// negotiate down to it.
const (
	minMinor      = 1
	maxMinor      = 79
	apiUpdated    = "2013-07-23T11:33:21Z"
	versionHeader = "OpenStack-API-Version"
	legacyHeader  = "X-OpenStack-Nova-API-Version"
)

// apiHandler serves Nova v2.1 over a Service.
type apiHandler struct {
	s    *Service
	base string // configured base URL without a trailing slash, or ""
}

// NewAPI returns the Nova v2.1 REST API of s, to be mounted at /compute.
// baseURL is the public URL of that mount point (such as
// http://127.0.0.1:8080/compute) used in links; when empty it is derived
// from each request. s's Config.Tokens must be set.
func NewAPI(s *Service, baseURL string) http.Handler {
	if s.cfg.Tokens == nil {
		panic("compute.NewAPI: Config.Tokens is required to authenticate requests")
	}
	a := &apiHandler{s: s, base: strings.TrimRight(baseURL, "/")}
	r := chi.NewRouter()
	r.Use(rest.WithRequestID, middleware.StripSlashes, stripProjectID)
	r.NotFound(a.notFound)
	r.MethodNotAllowed(a.methodNotAllowed)

	r.Get("/", a.versions)
	r.Get("/v2", a.versionV2)
	r.Route("/v2.1", func(r chi.Router) {
		r.Get("/", a.version)
		r.Group(func(r chi.Router) {
			r.Use(a.microversion, auth.Middleware(s.cfg.Tokens, a.identityURL, a.fail))
			r.Get("/extensions", func(w http.ResponseWriter, r *http.Request) {
				rest.JSON(w, http.StatusOK, map[string]any{"extensions": []any{}})
			})
			a.flavorRoutes(r)
			a.keypairRoutes(r)
			a.serverRoutes(r)
			a.adminRoutes(r)
			a.quotaRoutes(r)
		})
	})
	return r
}

// projectSegment matches a project ID in the legacy /v2.1/{project_id}/...
// URLs that old catalogs advertise.
var projectSegment = regexp.MustCompile(`^/v2(\.1)?/([0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(/.*)?$`)

// stripProjectID rewrites /v2.1/{project_id}/servers to /v2.1/servers, so
// clients configured with Nova's legacy endpoint template work too.
func stripProjectID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := routePath(r)
		if m := projectSegment.FindStringSubmatch(p); m != nil {
			np := "/v2.1" + m[3]
			if rctx := chi.RouteContext(r.Context()); rctx != nil && rctx.RoutePath != "" {
				rctx.RoutePath = np
			} else {
				r.URL.Path = strings.TrimSuffix(r.URL.Path, p) + np
			}
		}
		next.ServeHTTP(w, r)
	})
}

// routePath is the path inside the mount.
func routePath(r *http.Request) string {
	if rctx := chi.RouteContext(r.Context()); rctx != nil && rctx.RoutePath != "" {
		return rctx.RoutePath
	}
	return r.URL.Path
}

// baseURL is the compute API's public base URL (the /compute mount), without
// a trailing slash.
func (a *apiHandler) baseURL(r *http.Request) string {
	if a.base != "" {
		return a.base
	}
	return rest.Origin(r) + apiMountPath
}

func (a *apiHandler) identityURL(r *http.Request) string {
	if a.s.cfg.IdentityURL != "" {
		return a.s.cfg.IdentityURL
	}
	return rest.Origin(r) + "/identity"
}

// links are Nova's self and bookmark links of a resource.
func (a *apiHandler) links(r *http.Request, collection, id string) []any {
	b := a.baseURL(r)
	return []any{
		map[string]any{"rel": "self", "href": b + "/v2.1/" + collection + "/" + id},
		map[string]any{"rel": "bookmark", "href": b + "/" + collection + "/" + id},
	}
}

func (a *apiHandler) bookmark(r *http.Request, collection, id string) []any {
	return []any{map[string]any{"rel": "bookmark", "href": a.baseURL(r) + "/" + collection + "/" + id}}
}

// nextLink is a collection's "next" link after marker when the page is full.
func (a *apiHandler) nextLink(r *http.Request, collection string, n, limit int, marker string) []any {
	if limit <= 0 || n < limit || marker == "" {
		return nil
	}
	q := r.URL.Query()
	q.Set("marker", marker)
	q.Set("limit", strconv.Itoa(limit))
	return []any{map[string]any{"rel": "next", "href": a.baseURL(r) + "/v2.1/" + collection + "?" + q.Encode()}}
}

// fail writes err as Nova's fault body.
func (a *apiHandler) fail(w http.ResponseWriter, r *http.Request, err error) {
	if fault.Status(err) == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Keystone uri="`+a.identityURL(r)+`"`)
	}
	rest.Fault(w, r, fault.NovaBody, err)
}

func (a *apiHandler) notFound(w http.ResponseWriter, r *http.Request) {
	a.fail(w, r, fault.NotFoundf("The resource could not be found."))
}

func (a *apiHandler) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	rest.JSON(w, http.StatusMethodNotAllowed, map[string]any{"badMethod": map[string]any{
		"code": http.StatusMethodNotAllowed, "message": "The method specified is not allowed for this resource.",
	}})
}

// versionDoc describes v2.1.
func (a *apiHandler) versionDoc(r *http.Request) map[string]any {
	return map[string]any{
		"id": "v2.1", "status": "CURRENT", "version": fmt.Sprintf("2.%d", maxMinor), "min_version": "2.1",
		"updated": apiUpdated,
		"links": []any{
			map[string]any{"rel": "self", "href": a.baseURL(r) + "/v2.1/"},
			map[string]any{"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"},
		},
		"media-types": []any{map[string]any{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}},
	}
}

// versions is GET /: the version list (200, as Nova).
func (a *apiHandler) versions(w http.ResponseWriter, r *http.Request) {
	d := a.versionDoc(r)
	delete(d, "media-types")
	rest.JSON(w, http.StatusOK, map[string]any{"versions": []any{d}})
}

// version is GET /v2.1.
func (a *apiHandler) version(w http.ResponseWriter, r *http.Request) {
	rest.JSON(w, http.StatusOK, map[string]any{"version": a.versionDoc(r)})
}

// versionV2 answers /v2 with the v2.1 document's location: the legacy v2.0
// API is not served.
func (a *apiHandler) versionV2(w http.ResponseWriter, r *http.Request) {
	a.fail(w, r, fault.NotFoundf("The v2.0 API is not available; use %s/v2.1.", a.baseURL(r)))
}

// mv is a negotiated microversion 2.minor.
type mv int

func (v mv) atLeast(minor int) bool { return int(v) >= minor }

type mvKey struct{}

func withVersion(ctx context.Context, v mv) context.Context {
	return context.WithValue(ctx, mvKey{}, v)
}

// version returns the request's microversion.
func version(r *http.Request) mv {
	v, _ := r.Context().Value(mvKey{}).(mv)
	if v == 0 {
		return minMinor
	}
	return v
}

var versionPattern = regexp.MustCompile(`^([1-9]\d*)\.([1-9]\d*|0)$`)

// microversion negotiates the compute microversion from
// OpenStack-API-Version: compute X.Y (or the legacy
// X-OpenStack-Nova-API-Version), defaulting to 2.1; "latest" is the
// maximum; a version out of range is 406 and a malformed one 400. The
// answer carries the version and Vary.
func (a *apiHandler) microversion(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw := ""
		for _, h := range r.Header.Values(versionHeader) {
			for _, part := range strings.Split(h, ",") {
				svc, ver, ok := strings.Cut(strings.TrimSpace(part), " ")
				if ok && strings.EqualFold(svc, "compute") {
					raw = strings.TrimSpace(ver)
				}
			}
		}
		if raw == "" {
			raw = strings.TrimSpace(r.Header.Get(legacyHeader))
		}
		v := mv(minMinor)
		switch {
		case raw == "":
		case strings.EqualFold(raw, "latest"):
			v = maxMinor
		default:
			m := versionPattern.FindStringSubmatch(raw)
			if m == nil {
				a.fail(w, r, fault.Invalidf("API Version String %s is of invalid format. Must be of format MajorNum.MinorNum.", raw))
				return
			}
			major, _ := strconv.Atoi(m[1])
			minor, _ := strconv.Atoi(m[2])
			if major != 2 || minor < minMinor || minor > maxMinor {
				rest.JSON(w, http.StatusNotAcceptable, map[string]any{"computeFault": map[string]any{
					"code": http.StatusNotAcceptable,
					"message": fmt.Sprintf("Version %s is not supported by the API. Minimum is 2.%d and maximum is 2.%d.",
						raw, minMinor, maxMinor),
				}})
				return
			}
			v = mv(minor)
		}
		s := fmt.Sprintf("2.%d", v)
		w.Header().Set(versionHeader, "compute "+s)
		w.Header().Set(legacyHeader, s)
		w.Header().Add("Vary", versionHeader+", "+legacyHeader)
		next.ServeHTTP(w, r.WithContext(withVersion(r.Context(), v)))
	})
}

// decodeBody reads a JSON object into v, leniently as Nova's schemas are
// about known fields (unknown fields are ignored).
func decodeBody(r *http.Request, v any) error {
	return rest.Decode(r, v, false)
}

// requireKey checks that a body object had the wrapper key.
func requireKey(present bool, key string) error {
	if !present {
		return fault.Invalidf("Invalid input for field/attribute %s. Value: None. '%s' is a required property", key, key)
	}
	return nil
}

// queryInt parses an optional non-negative integer query parameter.
func queryInt(r *http.Request, name string) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fault.Invalidf("Invalid input for query parameters %s. Value: %s. '%s' does not match '^[0-9]*$'", name, v, v)
	}
	return n, nil
}

// apiTime formats t as Nova's created/updated: seconds and a Z.
func apiTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// apiTimeMicro formats t as Nova's launched_at and action times:
// microseconds, no zone.
func apiTimeMicro(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000") }

func apiTimePtr(t *time.Time) any {
	if t == nil || t.IsZero() {
		return nil
	}
	return apiTimeMicro(*t)
}

// nullable returns nil for "" so JSON shows null.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullablePtr(p *string) any {
	if p == nil {
		return nil
	}
	return *p
}

// flexInt reads a JSON number or numeric string, as Nova's schemas accept
// both for counts.
type flexInt struct {
	set bool
	v   int
}

func (f *flexInt) UnmarshalJSON(b []byte) error {
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return fault.Invalidf("Invalid input: expected an integer, got %s.", b)
		}
		n = json.Number(s)
	}
	i, err := strconv.Atoi(string(n))
	if err != nil {
		return fault.Invalidf("Invalid input: expected an integer, got %s.", b)
	}
	f.set, f.v = true, i
	return nil
}

// flexBool reads a JSON boolean or a boolean string ("true", "1", ...).
type flexBool struct {
	set bool
	v   bool
}

func (f *flexBool) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch x := v.(type) {
	case bool:
		f.set, f.v = true, x
	case string:
		bv, err := strconv.ParseBool(strings.ToLower(x))
		if err != nil && x != "" {
			switch strings.ToLower(x) {
			case "yes", "on", "y":
				bv, err = true, nil
			case "no", "off", "n":
				bv, err = false, nil
			}
		}
		if err != nil {
			return fault.Invalidf("Invalid input: %q is not a boolean.", x)
		}
		f.set, f.v = true, bv
	case nil:
	default:
		return fault.Invalidf("Invalid input: %s is not a boolean.", b)
	}
	return nil
}
