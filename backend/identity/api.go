package identity

// This file is the Keystone v3 REST API's router, version discovery and the
// helpers every handler shares. Handlers only translate: decode the request,
// call one service method (which checks policy itself) and encode the answer
// in Keystone's shapes, so python-openstackclient, keystoneauth and
// gophercloud work unchanged.

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
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
const apiMountPath = "/identity"

// v3 version document values. 3.14 is the newest minor version whose API
// this implementation follows.
const (
	apiVersionID      = "v3.14"
	apiVersionUpdated = "2020-04-07T00:00:00Z"
	apiMediaType      = "application/vnd.openstack.identity-v3+json"
)

// apiHandler serves Keystone v3 over a Service.
type apiHandler struct {
	s    *Service
	base string // configured base URL without a trailing slash, or ""
}

// NewAPI returns the Keystone v3 REST API of s, to be mounted at /identity.
// baseURL is the public URL of that mount point (such as
// http://127.0.0.1:8080/identity) and is used in links and in the
// WWW-Authenticate header; when empty it is derived from each request.
func NewAPI(s *Service, baseURL string) http.Handler {
	a := &apiHandler{s: s, base: strings.TrimRight(baseURL, "/")}
	r := chi.NewRouter()
	r.Use(rest.WithRequestID, middleware.StripSlashes)
	r.NotFound(a.notFound)
	r.MethodNotAllowed(a.methodNotAllowed)

	// Version discovery and authentication need no token.
	apiGetHead(r, "/", a.versions)
	apiGetHead(r, "/v3", a.version)
	r.Post("/v3/auth/tokens", a.issueToken)

	r.Group(func(r chi.Router) {
		r.Use(auth.Middleware(s, a.baseURL, a.fail))
		a.authRoutes(r)
		a.domainRoutes(r)
		a.projectRoutes(r)
		a.userRoutes(r)
		a.groupRoutes(r)
		a.roleRoutes(r)
		a.impliedRoleRoutes(r)
		a.grantRoutes(r)
		a.catalogRoutes(r)
		a.appCredentialRoutes(r)
	})
	return r
}

// apiGetHead registers h for GET and HEAD: Keystone answers HEAD on every
// readable resource, and net/http drops the body of a HEAD response.
func apiGetHead(r chi.Router, pattern string, h http.HandlerFunc) {
	r.Get(pattern, h)
	r.Head(pattern, h)
}

// baseURL is the identity API's public base URL, without a trailing slash.
func (a *apiHandler) baseURL(r *http.Request) string {
	if a.base != "" {
		return a.base
	}
	return rest.Origin(r) + apiMountPath
}

// link is the absolute URL of a v3 resource path made of segments.
func (a *apiHandler) link(r *http.Request, segments ...string) string {
	var b strings.Builder
	b.WriteString(a.baseURL(r))
	b.WriteString("/v3")
	for _, s := range segments {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}

// selfLink is the links object of a single entity.
func (a *apiHandler) selfLink(r *http.Request, segments ...string) map[string]any {
	return map[string]any{"self": a.link(r, segments...)}
}

// requestURL is the absolute URL of the request itself, query included, as
// Keystone puts in a collection's self link.
func (a *apiHandler) requestURL(r *http.Request, rawQuery string) string {
	path := r.URL.EscapedPath()
	// The path inside the mount, reconstructed from the route context when
	// a parent router stripped the prefix.
	if rctx := chi.RouteContext(r.Context()); rctx != nil && rctx.RoutePath != "" {
		path = rctx.RoutePath
	}
	if i := strings.Index(path, "/v3"); i >= 0 {
		path = path[i:]
	}
	u := a.baseURL(r) + strings.TrimRight(path, "/")
	if rawQuery != "" {
		u += "?" + rawQuery
	}
	return u
}

// collectionLinks is the links object of a list that is complete.
func (a *apiHandler) collectionLinks(r *http.Request) map[string]any {
	return map[string]any{"self": a.requestURL(r, r.URL.RawQuery), "previous": nil, "next": nil}
}

// pageLinks is the links object of a list the service may have cut short:
// when more is true, next asks for the page after lastID with the same
// filters and page size, so clients that follow links.next (gophercloud,
// openstacksdk) read the whole collection.
func (a *apiHandler) pageLinks(r *http.Request, more bool, lastID string, opts ListOptions, n int) map[string]any {
	links := a.collectionLinks(r)
	if more && lastID != "" {
		q := r.URL.Query()
		q.Set("marker", lastID)
		limit := opts.Limit
		if limit <= 0 {
			limit = n
		}
		q.Set("limit", strconv.Itoa(limit))
		links["next"] = a.requestURL(r, q.Encode())
	}
	return links
}

// fail writes err as Keystone's fault body. A 401 carries the
// WWW-Authenticate header that points clients at this identity service.
func (a *apiHandler) fail(w http.ResponseWriter, r *http.Request, err error) {
	if fault.Status(err) == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Keystone uri="`+a.baseURL(r)+`"`)
	}
	rest.Fault(w, r, fault.KeystoneBody, err)
}

func (a *apiHandler) notFound(w http.ResponseWriter, r *http.Request) {
	a.fail(w, r, fault.NotFoundf("The resource could not be found."))
}

func (a *apiHandler) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	rest.JSON(w, http.StatusMethodNotAllowed, map[string]any{"error": map[string]any{
		"code": http.StatusMethodNotAllowed, "title": "Method Not Allowed",
		"message": fmt.Sprintf("The method %s is not allowed for the requested URL.", r.Method),
	}})
}

// versionDoc describes the v3 API.
func (a *apiHandler) versionDoc(r *http.Request) map[string]any {
	return map[string]any{
		"id":      apiVersionID,
		"status":  "stable",
		"updated": apiVersionUpdated,
		"links":   []any{map[string]any{"rel": "self", "href": a.baseURL(r) + "/v3/"}},
		"media-types": []any{map[string]any{
			"base": "application/json", "type": apiMediaType,
		}},
	}
}

// versions is GET / : the version list, answered 300 Multiple Choices as
// Keystone does.
func (a *apiHandler) versions(w http.ResponseWriter, r *http.Request) {
	rest.JSON(w, http.StatusMultipleChoices, map[string]any{
		"versions": map[string]any{"values": []any{a.versionDoc(r)}},
	})
}

// version is GET /v3.
func (a *apiHandler) version(w http.ResponseWriter, r *http.Request) {
	rest.JSON(w, http.StatusOK, map[string]any{"version": a.versionDoc(r)})
}

// apiClientAddr is the client's IP address, for login throttling.
func apiClientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// apiTime formats t like Keystone's token timestamps.
func apiTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000000Z")
}

// apiNullable returns nil for "" so JSON shows null, as Keystone does for
// unset references.
func apiNullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// --- request bodies ---

// apiDecodeEntity reads a body of the form {"<key>": {...}}. The wrapper is
// strict (Keystone rejects other top-level keys); the entity itself is
// decoded leniently because Keystone accepts and stores extra attributes on
// most entities, but every known field must have its documented type.
func apiDecodeEntity(r *http.Request, key string, v any) error {
	var wrapper map[string]json.RawMessage
	if err := rest.Decode(r, &wrapper, true); err != nil {
		return err
	}
	if wrapper == nil {
		return fault.Invalidf("Invalid input: the request body must be a JSON object.")
	}
	for k := range wrapper {
		if k != key {
			return fault.Invalidf("Invalid input: additional property '%s' is not allowed.", k)
		}
	}
	raw, ok := wrapper[key]
	if !ok || apiIsNull(raw) {
		return fault.Invalidf("Invalid input: '%s' is a required property.", key)
	}
	return apiUnmarshal(key, raw, v)
}

// apiDecodeStrict reads a body whose every field is known, rejecting others.
func apiDecodeStrict(r *http.Request, v any) error {
	return rest.Decode(r, v, true)
}

func apiIsNull(raw json.RawMessage) bool {
	s := strings.TrimSpace(string(raw))
	return s == "" || s == "null"
}

// apiUnmarshal decodes raw into v, turning type errors into Keystone-style
// validation faults that name the field.
func apiUnmarshal(prefix string, raw json.RawMessage, v any) error {
	if err := json.Unmarshal(raw, v); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te):
			field := prefix
			switch {
			case prefix == "":
				field = te.Field
			case te.Field != "":
				field = prefix + "." + te.Field
			}
			return fault.Invalidf("Invalid input for field '%s': expected %s, got %s.", field, apiJSONType(te.Type.Kind().String()), te.Value)
		case errors.As(err, &se):
			return fault.Invalidf("Malformed JSON in request body.")
		default:
			var fe *fault.Error
			if errors.As(err, &fe) {
				return fe
			}
			return fault.Invalidf("Invalid input for field '%s': %s.", prefix, strings.TrimPrefix(err.Error(), "json: "))
		}
	}
	return nil
}

// apiJSONType names a Go kind as the JSON type a client must send.
func apiJSONType(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "an array"
	case "map", "struct", "ptr":
		return "an object"
	case "int", "int64", "float64", "uint":
		return "a number"
	default:
		return kind
	}
}

// opt is a JSON field that records whether it was present and whether it
// was null, so PATCH can tell "leave alone" from "clear".
type apiOpt[T any] struct {
	Set  bool
	Null bool
	V    T
}

func (o *apiOpt[T]) UnmarshalJSON(b []byte) error {
	o.Set = true
	if apiIsNull(b) {
		o.Null = true
		return nil
	}
	return json.Unmarshal(b, &o.V)
}

// ptr returns the field's value for an update: nil when absent, the zero
// value when null.
func (o apiOpt[T]) ptr() *T {
	if !o.Set {
		return nil
	}
	v := o.V
	return &v
}

// apiBool is a boolean attribute for the service: nil when absent, and a
// validation error when null (Keystone's booleans are not apiNullable).
func apiBool(field string, o apiOpt[bool]) (*bool, error) {
	if !o.Set {
		return nil, nil
	}
	if o.Null {
		return nil, fault.Invalidf("Invalid input for field '%s': None is not of type 'boolean'.", field)
	}
	v := o.V
	return &v, nil
}

func apiInvalid(msg string) error { return fault.Invalidf("%s", msg) }

func apiNotImplemented(msg string) error { return fault.New(fault.NotImplemented, "%s", msg) }

// apiRequired rejects a missing or null required string attribute, as
// Keystone's schema does; validating its content is the service's job.
func apiRequired(field string, o apiOpt[string]) error {
	if !o.Set || o.Null {
		name := field
		if i := strings.LastIndexByte(field, '.'); i >= 0 {
			name = field[i+1:]
		}
		return fault.Invalidf("Invalid input for field '%s': '%s' is a required property.", field, name)
	}
	return nil
}

// apiNotNull rejects null for an attribute an update may leave out but not
// clear.
func apiNotNull(field string, o apiOpt[string]) error {
	if o.Set && o.Null {
		return fault.Invalidf("Invalid input for field '%s': None is not of type 'string'.", field)
	}
	return nil
}

// apiObject is an attribute that must be a JSON object when present, such as
// "options"; its content is accepted and not interpreted.
type apiObject map[string]json.RawMessage

// --- query strings ---

// apiQueryTrue reports whether a flag parameter such as ?nocatalog or
// ?effective is on. Keystone treats a present parameter as true unless its
// value is "0" or "false".
func apiQueryTrue(r *http.Request, key string) bool {
	q := r.URL.Query()
	if !q.Has(key) {
		return false
	}
	v := strings.ToLower(q.Get(key))
	return v != "0" && v != "false"
}

// apiQueryBool parses a boolean filter such as ?enabled=false: nil when absent.
func apiQueryBool(r *http.Request, key string) (*bool, error) {
	q := r.URL.Query()
	if !q.Has(key) {
		return nil, nil
	}
	var b bool
	switch strings.ToLower(q.Get(key)) {
	case "", "1", "true", "yes", "on", "y", "t":
		b = true
	case "0", "false", "no", "off", "n", "f":
		b = false
	default:
		return nil, fault.Invalidf("Invalid value for query parameter '%s': expected a boolean.", key)
	}
	return &b, nil
}

// apiListOptions reads ?limit and ?marker.
func apiListOptions(r *http.Request) (ListOptions, error) {
	q := r.URL.Query()
	var o ListOptions
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return o, fault.Invalidf("Invalid value for query parameter 'limit': expected a non-negative integer.")
		}
		o.Limit = n
	}
	o.Marker = q.Get("marker")
	return o, nil
}

// apiQueryList splits a comma-separated parameter such as ?tags=a,b.
func apiQueryList(r *http.Request, key string) []string {
	var out []string
	for _, v := range r.URL.Query()[key] {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}
