package image

// This file is the Glance v2 REST API's router, version discovery, faults
// and the helpers every handler shares. Handlers only translate: decode the
// request, call one service method (which checks policy itself) and encode
// the answer in Glance's shapes, so python-openstackclient, openstacksdk and
// gophercloud work unchanged.

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
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
const apiMountPath = "/image"

// apiVersions are the versions GET /image lists, newest first: the v2
// minor versions whose API this implementation serves (2.8 to 2.13 mean
// multiple stores, which Nimbus does not have, so they are left out as
// Glance leaves them out without enabled_backends).
var apiVersions = []struct{ id, status string }{
	{"v2.16", "CURRENT"}, {"v2.15", "SUPPORTED"}, {"v2.9", "SUPPORTED"}, {"v2.7", "SUPPORTED"},
	{"v2.6", "SUPPORTED"}, {"v2.5", "SUPPORTED"}, {"v2.4", "SUPPORTED"}, {"v2.3", "SUPPORTED"},
	{"v2.2", "SUPPORTED"}, {"v2.1", "SUPPORTED"}, {"v2.0", "SUPPORTED"},
}

// apiHandler serves Glance v2 over a Service.
type apiHandler struct {
	s    *Service
	base string // configured base URL without a trailing slash, or ""
}

// NewAPI returns the Glance v2 REST API of s, to be mounted at /image.
// baseURL is the public URL of that mount point (such as
// http://127.0.0.1:8080/image), used in the version document and Location
// headers; when empty it is derived from each request. Tokens are validated
// by s's Config.Tokens, which must be set.
//
// Routes (all under /v2 need X-Auth-Token):
//
//	GET    /                                  versions (300), /versions (200)
//	GET    /v2/schemas/{image,images,member,members}
//	GET    /v2/info/import
//	POST   /v2/images                         create (201)
//	GET    /v2/images                         list, filters, sort, marker paging
//	GET    /v2/images/{id}
//	PATCH  /v2/images/{id}                    application/openstack-images-v2.1-json-patch (or v2.0)
//	DELETE /v2/images/{id}                    204
//	PUT    /v2/images/{id}/file               application/octet-stream, 204
//	GET    /v2/images/{id}/file               200, 206 (Range), 204 (no data)
//	POST   /v2/images/{id}/actions/{deactivate,reactivate}  204
//	PUT    /v2/images/{id}/tags/{tag}         204
//	DELETE /v2/images/{id}/tags/{tag}         204
//	POST   /v2/images/{id}/members            {"member": project}
//	GET    /v2/images/{id}/members
//	GET    /v2/images/{id}/members/{member}
//	PUT    /v2/images/{id}/members/{member}   {"status": ...}
//	DELETE /v2/images/{id}/members/{member}   204
func NewAPI(s *Service, baseURL string) http.Handler {
	if s.cfg.Tokens == nil {
		panic("image.NewAPI: Config.Tokens is required to authenticate requests")
	}
	a := &apiHandler{s: s, base: strings.TrimRight(baseURL, "/")}
	r := chi.NewRouter()
	r.Use(rest.WithRequestID, middleware.StripSlashes)
	r.NotFound(a.notFound)
	r.MethodNotAllowed(a.methodNotAllowed)

	// Version discovery needs no token.
	r.Get("/", a.versions(http.StatusMultipleChoices))
	r.Get("/versions", a.versions(http.StatusOK))
	r.Get("/v2", a.versions(http.StatusOK))

	r.Group(func(r chi.Router) {
		r.Use(auth.Middleware(s.cfg.Tokens, a.identityURL, a.fail))
		r.Get("/v2/schemas/image", a.schema(imageSchema))
		r.Get("/v2/schemas/images", a.schema(func() map[string]any { return collectionSchema("images", imageSchema()) }))
		r.Get("/v2/schemas/member", a.schema(memberSchema))
		r.Get("/v2/schemas/members", a.schema(func() map[string]any { return collectionSchema("members", memberSchema()) }))
		r.Get("/v2/info/import", a.importInfo)

		r.Post("/v2/images", a.createImage)
		r.Get("/v2/images", a.listImages)
		r.Get("/v2/images/{id}", a.getImage)
		r.Patch("/v2/images/{id}", a.updateImage)
		r.Delete("/v2/images/{id}", a.deleteImage)
		r.Put("/v2/images/{id}/file", a.upload)
		r.Get("/v2/images/{id}/file", a.download)
		r.Post("/v2/images/{id}/actions/{action}", a.action)
		r.Put("/v2/images/{id}/tags/{tag}", a.addTag)
		r.Delete("/v2/images/{id}/tags/{tag}", a.deleteTag)

		r.Post("/v2/images/{id}/members", a.addMember)
		r.Get("/v2/images/{id}/members", a.listMembers)
		r.Get("/v2/images/{id}/members/{member}", a.getMember)
		r.Put("/v2/images/{id}/members/{member}", a.updateMember)
		r.Delete("/v2/images/{id}/members/{member}", a.deleteMember)
	})
	return r
}

// baseURL is the image API's public base URL, without a trailing slash.
func (a *apiHandler) baseURL(r *http.Request) string {
	if a.base != "" {
		return a.base
	}
	return rest.Origin(r) + apiMountPath
}

// identityURL is where a 401 sends clients to authenticate.
func (a *apiHandler) identityURL(r *http.Request) string {
	if a.s.cfg.IdentityURL != "" {
		return strings.TrimRight(a.s.cfg.IdentityURL, "/")
	}
	return rest.Origin(r) + "/identity"
}

// glanceBody is Glance's fault body as webob renders it for a JSON
// client: {"code": "404 Not Found", "title": "Not Found", "message": ...}.
func glanceBody(err error) any {
	status := fault.Status(err)
	title := http.StatusText(status)
	return map[string]any{
		"code":    strconv.Itoa(status) + " " + title,
		"title":   title,
		"message": fault.Message(err),
	}
}

// fail writes err as Glance's fault body; a 401 carries WWW-Authenticate.
func (a *apiHandler) fail(w http.ResponseWriter, r *http.Request, err error) {
	if fault.Status(err) == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Keystone uri="`+a.identityURL(r)+`"`)
	}
	rest.Fault(w, r, glanceBody, err)
}

// failStatus writes a fault with a status the fault kinds do not cover
// (415, 416, 405).
func failStatus(w http.ResponseWriter, status int, msg string) {
	title := http.StatusText(status)
	rest.JSON(w, status, map[string]any{"code": strconv.Itoa(status) + " " + title, "title": title, "message": msg})
}

func (a *apiHandler) notFound(w http.ResponseWriter, r *http.Request) {
	a.fail(w, r, fault.NotFoundf("The resource could not be found."))
}

func (a *apiHandler) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	failStatus(w, http.StatusMethodNotAllowed, "The method "+r.Method+" is not allowed for this resource.")
}

// versions is the version list, 300 at the root and 200 when asked for.
func (a *apiHandler) versions(status int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		href := a.baseURL(r) + "/v2/"
		vs := make([]any, len(apiVersions))
		for i, v := range apiVersions {
			vs[i] = map[string]any{"id": v.id, "status": v.status,
				"links": []any{map[string]any{"rel": "self", "href": href}}}
		}
		rest.JSON(w, status, map[string]any{"versions": vs})
	}
}

func (a *apiHandler) schema(f func() map[string]any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { rest.JSON(w, http.StatusOK, f()) }
}

// importInfo is GET /v2/info/import: no interoperable import methods; data
// is uploaded with PUT /file.
func (a *apiHandler) importInfo(w http.ResponseWriter, r *http.Request) {
	rest.JSON(w, http.StatusOK, map[string]any{"import-methods": map[string]any{
		"description": "Import methods available.", "type": "array", "value": []string{},
	}})
}

// apiTime formats t as Glance's timeutils.isotime does.
func apiTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// nullable returns nil for "" so JSON shows null.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// imageView is an image in Glance's shape: custom properties at the top
// level beside the base attributes.
func imageView(img *Image) map[string]any {
	m := make(map[string]any, 24+len(img.Properties))
	for k, v := range img.Properties {
		m[k] = v
	}
	tags := img.Tags
	if tags == nil {
		tags = []string{}
	}
	var size, vsize any
	if img.Size != nil {
		size = *img.Size
	}
	if img.VirtualSize != nil {
		vsize = *img.VirtualSize
	}
	self := "/v2/images/" + img.ID
	for k, v := range map[string]any{
		"id": img.ID, "name": nullable(img.Name), "status": img.Status, "visibility": img.Visibility,
		"protected": img.Protected, "os_hidden": img.Hidden, "checksum": nullable(img.Checksum),
		"os_hash_algo": nullable(img.HashAlgo), "os_hash_value": nullable(img.HashValue), "owner": nullable(img.Owner),
		"size": size, "virtual_size": vsize, "container_format": nullable(img.ContainerFormat),
		"disk_format": nullable(img.DiskFormat), "min_disk": img.MinDisk, "min_ram": img.MinRAM, "tags": tags,
		"created_at": apiTime(img.CreatedAt), "updated_at": apiTime(img.UpdatedAt),
		"self": self, "file": self + "/file", "schema": "/v2/schemas/image",
	} {
		m[k] = v
	}
	return m
}

// memberView is a membership in Glance's shape.
func memberView(m *Member) map[string]any {
	return map[string]any{
		"image_id": m.ImageID, "member_id": m.MemberID, "status": m.Status,
		"created_at": apiTime(m.CreatedAt), "updated_at": apiTime(m.UpdatedAt),
		"schema": "/v2/schemas/member",
	}
}

// decodeJSON reads the request body as one JSON value with numbers kept
// exact, so an integer attribute can refuse 1.5.
func decodeJSON(r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, rest.MaxBodyBytes))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return fault.New(fault.TooLarge, "Request body is larger than %d bytes.", rest.MaxBodyBytes)
	}
	if err != nil {
		return fault.Wrap(fault.Invalid, err, "Error reading the request body.")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return fault.Invalidf("Body expected in request.")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return fault.Invalidf("Malformed JSON in request body.")
	}
	if dec.More() {
		return fault.Invalidf("Malformed JSON in request body: trailing data after the JSON value.")
	}
	return nil
}
