package image

import (
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/backend/platform/rest"
)

// Patch media types: v2.1 is RFC 6902 style ({"op", "path", "value"}),
// v2.0 the JSON-schema draft 4 style ({"replace": path, "value"}).
const (
	patchV21 = "application/openstack-images-v2.1-json-patch"
	patchV20 = "application/openstack-images-v2.0-json-patch"
)

// createImage is POST /v2/images.
func (a *apiHandler) createImage(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	if err := decodeJSON(r, &body); err != nil {
		a.fail(w, r, err)
		return
	}
	if body == nil {
		a.fail(w, r, fault.Invalidf("Provided object does not match schema 'image': the request body must be a JSON object."))
		return
	}
	var in Image
	// Sorted keys make the first error reported deterministic.
	keys := make([]string, 0, len(body))
	for k := range body {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := body[k]
		if len(k) > maxPropertyNameLen {
			a.fail(w, r, fault.Invalidf("Custom property should not be greater than 255 characters."))
			return
		}
		if k == "id" {
			s, ok := v.(string)
			if !ok {
				a.fail(w, r, typeError("id", v, "string"))
				return
			}
			in.ID = s
			continue
		}
		if err := setAttr(&in, k, v); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	img, err := a.s.CreateImage(r.Context(), in)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Location", a.baseURL(r)+"/v2/images/"+img.ID)
	rest.JSON(w, http.StatusCreated, imageView(img))
}

// Query parameters with a meaning of their own; any other is a custom
// property filter, as in Glance.
var listParams = []string{"limit", "marker", "sort", "sort_key", "sort_dir", "name", "id", "status", "visibility",
	"owner", "tag", "member_status", "disk_format", "container_format", "protected", "os_hidden", "size_min",
	"size_max", "created_at", "updated_at", "changes-since"}

// listImages is GET /v2/images.
func (a *apiHandler) listImages(w http.ResponseWriter, r *http.Request) {
	f, err := parseListQuery(r.URL.Query())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	imgs, more, err := a.s.ListImages(r.Context(), f)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	views := make([]any, len(imgs))
	for i := range imgs {
		views[i] = imageView(&imgs[i])
	}
	q := r.URL.Query()
	q.Del("marker")
	body := map[string]any{"images": views, "schema": "/v2/schemas/images", "first": "/v2/images"}
	if len(q) > 0 {
		body["first"] = "/v2/images?" + q.Encode()
	}
	if more && len(imgs) > 0 {
		q.Set("marker", imgs[len(imgs)-1].ID)
		body["next"] = "/v2/images?" + q.Encode()
	}
	rest.JSON(w, http.StatusOK, body)
}

// parseListQuery turns GET /v2/images's query into a ListFilter.
func parseListQuery(q url.Values) (ListFilter, error) {
	var f ListFilter
	var err error
	if q.Has("changes-since") {
		return f, fault.Invalidf(`The "changes-since" filter is no longer available on v2.`)
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return f, fault.Invalidf("limit param must be an integer")
		}
		if n < 0 {
			return f, fault.Invalidf("limit param must be positive")
		}
		f.Limit = n
	}
	f.Marker = q.Get("marker")
	f.IDs = inList(q.Get("id"))
	f.Names = inList(q.Get("name"))
	f.Statuses = inList(q.Get("status"))
	f.DiskFormats = inList(q.Get("disk_format"))
	f.ContainerFormats = inList(q.Get("container_format"))
	f.Visibility = q.Get("visibility")
	f.Owner = q.Get("owner")
	f.MemberStatus = q.Get("member_status")
	for _, t := range q["tag"] {
		if t = strings.TrimSpace(t); t != "" {
			f.Tags = append(f.Tags, t)
		}
	}
	if q.Has("protected") {
		switch q.Get("protected") {
		case "true":
			f.Protected = ptr(true)
		case "false":
			f.Protected = ptr(false)
		default:
			return f, fault.Invalidf("Invalid value '%s' for 'protected' filter. Valid values are 'true' or 'false'.", q.Get("protected"))
		}
	}
	if q.Has("os_hidden") {
		switch strings.ToLower(q.Get("os_hidden")) {
		case "true":
			f.Hidden = true
		case "false":
		default:
			return f, fault.Invalidf("Invalid value '%s' for 'os_hidden' filter. Valid values are 'true' or 'false'.", q.Get("os_hidden"))
		}
	}
	for _, p := range []struct {
		name string
		dst  **int64
	}{{"size_min", &f.SizeMin}, {"size_max", &f.SizeMax}} {
		if s := q.Get(p.name); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return f, fault.Invalidf("Invalid value for %s: %s", p.name, s)
			}
			*p.dst = &n
		}
	}
	if f.CreatedAt, err = timeFilters(q, "created_at"); err != nil {
		return f, err
	}
	if f.UpdatedAt, err = timeFilters(q, "updated_at"); err != nil {
		return f, err
	}
	if q.Has("sort") {
		if q.Has("sort_key") || q.Has("sort_dir") {
			return f, fault.Invalidf("Old and new sorting syntax cannot be combined")
		}
		for _, part := range strings.Split(strings.TrimSpace(q.Get("sort")), ",") {
			key, dir, _ := strings.Cut(part, ":")
			if dir = strings.TrimSpace(dir); dir == "" {
				dir = "desc"
			}
			f.SortKeys = append(f.SortKeys, strings.TrimSpace(key))
			f.SortDirs = append(f.SortDirs, dir)
		}
	} else {
		for _, k := range q["sort_key"] {
			f.SortKeys = append(f.SortKeys, strings.TrimSpace(k))
		}
		for _, d := range q["sort_dir"] {
			f.SortDirs = append(f.SortDirs, strings.TrimSpace(d))
		}
	}
	for k, vs := range q {
		if !slices.Contains(listParams, k) && len(vs) > 0 {
			if f.Properties == nil {
				f.Properties = map[string]string{}
			}
			f.Properties[k] = vs[0]
		}
	}
	return f, nil
}

func ptr[T any](v T) *T { return &v }

// inList reads a filter value, which may be "in:a,b,c" for any of several.
func inList(v string) []string {
	if v == "" {
		return nil
	}
	rest, ok := strings.CutPrefix(v, "in:")
	if !ok {
		return []string{v}
	}
	var out []string
	for _, p := range strings.Split(rest, ",") {
		p = strings.Trim(strings.TrimSpace(p), `"`)
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

var timeFilterRE = regexp.MustCompile(`^(?:(eq|neq|gt|gte|lt|lte):)?(\d{4}-.*)$`)

// timeFilters reads created_at / updated_at filters such as
// "gte:2026-01-01T00:00:00Z".
func timeFilters(q url.Values, key string) ([]TimeFilter, error) {
	var out []TimeFilter
	for _, v := range q[key] {
		m := timeFilterRE.FindStringSubmatch(v)
		if m == nil {
			return nil, fault.Invalidf("Invalid value for %s: %s. Use [operator:]ISO-8601 time, the operator one of eq, neq, gt, gte, lt, lte.", key, v)
		}
		t, err := time.Parse(time.RFC3339, m[2])
		if err != nil {
			return nil, fault.Invalidf("Invalid time in %s filter: %s", key, m[2])
		}
		op := m[1]
		if op == "" {
			op = "eq"
		}
		out = append(out, TimeFilter{Op: op, T: t})
	}
	return out, nil
}

// getImage is GET /v2/images/{id}.
func (a *apiHandler) getImage(w http.ResponseWriter, r *http.Request) {
	img, err := a.s.GetImage(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, imageView(img))
}

// updateImage is PATCH /v2/images/{id}.
func (a *apiHandler) updateImage(w http.ResponseWriter, r *http.Request) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != patchV21 && mt != patchV20 {
		w.Header().Set("Accept-Patch", patchV20+", "+patchV21)
		failStatus(w, http.StatusUnsupportedMediaType, "Image PATCH expects Content-Type one of: "+patchV20+", "+patchV21)
		return
	}
	var raw []any
	if err := decodeJSON(r, &raw); err != nil {
		a.fail(w, r, err)
		return
	}
	if raw == nil {
		a.fail(w, r, fault.Invalidf("Request body must be a JSON array of operation objects."))
		return
	}
	changes := make([]Change, 0, len(raw))
	for _, item := range raw {
		op, ok := item.(map[string]any)
		if !ok {
			a.fail(w, r, fault.Invalidf("Operations must be JSON objects."))
			return
		}
		ch, err := parseChange(op, mt == patchV20)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		changes = append(changes, ch)
	}
	img, err := a.s.UpdateImage(r.Context(), chi.URLParam(r, "id"), changes)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, imageView(img))
}

// parseChange reads one patch operation in either media type's syntax.
func parseChange(raw map[string]any, draft4 bool) (Change, error) {
	ops := []string{"add", "remove", "replace"}
	var op, path string
	if draft4 {
		for _, o := range ops {
			if p, ok := raw[o]; ok {
				if op != "" {
					return Change{}, fault.Invalidf(`Operation objects must contain only one member named "add", "remove", or "replace".`)
				}
				s, ok := p.(string)
				if !ok {
					return Change{}, fault.Invalidf("Pointer must be a string.")
				}
				op, path = o, s
			}
		}
		if op == "" {
			return Change{}, fault.Invalidf(`Operation objects must contain exactly one member named "add", "remove", or "replace".`)
		}
	} else {
		o, ok := raw["op"]
		if !ok {
			return Change{}, fault.Invalidf("Unable to find `op` in JSON Schema change. It must be one of the following: add, remove, replace.")
		}
		op, _ = o.(string)
		if !slices.Contains(ops, op) {
			return Change{}, fault.Invalidf("Invalid operation: `%v`. It must be one of the following: add, remove, replace.", o)
		}
		p, ok := raw["path"]
		if !ok {
			return Change{}, fault.Invalidf("Unable to find 'path' in JSON Schema change")
		}
		if path, ok = p.(string); !ok {
			return Change{}, fault.Invalidf("Pointer must be a string.")
		}
	}
	parts, err := decodePointer(path)
	if err != nil {
		return Change{}, err
	}
	if parts[0] == "locations" {
		return Change{}, fault.Forbiddenf("It's not allowed to update locations if locations are invisible.")
	}
	if len(parts) != 1 {
		return Change{}, fault.Invalidf("Invalid JSON pointer for this resource: '/%s'", strings.Join(parts, "/"))
	}
	ch := Change{Op: op, Path: parts[0], Draft4: draft4}
	if op != "remove" {
		v, ok := raw["value"]
		if !ok {
			return Change{}, fault.Invalidf(`Operation "%s" requires a member named "value".`, op)
		}
		ch.Value = v
	}
	return ch, nil
}

// decodePointer parses the limited JSON pointers Glance accepts.
func decodePointer(p string) ([]string, error) {
	switch {
	case !strings.HasPrefix(p, "/"):
		return nil, fault.Invalidf("Pointer `%s` does not start with \"/\".", truncate(p, 100))
	case len(p) > 1 && strings.HasSuffix(p, "/"):
		return nil, fault.Invalidf("Pointer `%s` end with \"/\".", truncate(p, 100))
	case strings.Contains(p[1:], "//"):
		return nil, fault.Invalidf("Pointer `%s` contains adjacent \"/\".", truncate(p, 100))
	}
	for i := 0; i < len(p); i++ {
		if p[i] == '~' && (i+1 >= len(p) || (p[i+1] != '0' && p[i+1] != '1')) {
			return nil, fault.Invalidf("Pointer `%s` contains \"~\" not part of a recognized escape sequence.", truncate(p, 100))
		}
	}
	parts := strings.Split(p[1:], "/")
	for i, s := range parts {
		s = strings.TrimSpace(strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~"))
		if s == "" {
			return nil, fault.Invalidf("Pointer `%s` does not contains valid token.", truncate(p, 100))
		}
		parts[i] = s
	}
	return parts, nil
}

// deleteImage is DELETE /v2/images/{id}.
func (a *apiHandler) deleteImage(w http.ResponseWriter, r *http.Request) {
	if err := a.s.DeleteImage(r.Context(), chi.URLParam(r, "id")); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// action is POST /v2/images/{id}/actions/{deactivate,reactivate}.
func (a *apiHandler) action(w http.ResponseWriter, r *http.Request) {
	var err error
	switch chi.URLParam(r, "action") {
	case "deactivate":
		err = a.s.Deactivate(r.Context(), chi.URLParam(r, "id"))
	case "reactivate":
		err = a.s.Reactivate(r.Context(), chi.URLParam(r, "id"))
	default:
		err = fault.NotFoundf("The resource could not be found.")
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// addTag is PUT /v2/images/{id}/tags/{tag}.
func (a *apiHandler) addTag(w http.ResponseWriter, r *http.Request) {
	if err := a.s.AddTag(r.Context(), chi.URLParam(r, "id"), tagParam(r)); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// deleteTag is DELETE /v2/images/{id}/tags/{tag}.
func (a *apiHandler) deleteTag(w http.ResponseWriter, r *http.Request) {
	if err := a.s.DeleteTag(r.Context(), chi.URLParam(r, "id"), tagParam(r)); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// tagParam is the tag in the path, percent-decoded: chi routes on the raw
// path (and so leaves parameters escaped) only when the request has one.
func tagParam(r *http.Request) string {
	t := chi.URLParam(r, "tag")
	if r.URL.RawPath == "" {
		return t
	}
	if u, err := url.PathUnescape(t); err == nil {
		return u
	}
	return t
}
