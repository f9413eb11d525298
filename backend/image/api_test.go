package image

// Tests of the Glance v2 REST API through httptest, mounted at /image beside
// the identity API at /identity exactly as the web server mounts them.

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/nimbus-cloud/nimbus/backend/identity"
	"github.com/nimbus-cloud/nimbus/backend/platform/rest"
)

// apiEnv is a running identity and image API.
type apiEnv struct {
	*env
	srv   *httptest.Server
	base  string // <srv>/image
	admin string // tokens
	demo  string
}

func newAPIEnv(t *testing.T, tweak ...func(*Config)) *apiEnv {
	t.Helper()
	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	e := newEnvAt(t, srv.URL, tweak...)
	r := chi.NewRouter()
	r.Mount("/identity", rest.WithRequestID(identity.NewAPI(e.ids, srv.URL+"/identity")))
	r.Mount("/image", rest.WithRequestID(NewAPI(e.s, srv.URL+"/image")))
	h = r
	return &apiEnv{env: e, srv: srv, base: srv.URL + "/image",
		admin: e.token(e.boot.AdminUserID, testAdminPassword, e.boot.AdminProject),
		demo:  e.token(e.demoUser, testDemoPassword, e.demoProject)}
}

// apiResp is a response with its decoded JSON body.
type apiResp struct {
	t      *testing.T
	status int
	header http.Header
	raw    []byte
	body   map[string]any
	req    string
}

func (r *apiResp) want(status int) *apiResp {
	r.t.Helper()
	if r.status != status {
		r.t.Fatalf("%s: status %d, want %d; body %s", r.req, r.status, status, r.raw)
	}
	return r
}

// wantFault checks Glance's fault body with the given status.
func (r *apiResp) wantFault(status int) *apiResp {
	r.t.Helper()
	r.want(status)
	if r.body["code"] != strconv.Itoa(status)+" "+http.StatusText(status) ||
		r.body["title"] != http.StatusText(status) || r.body["message"] == "" {
		r.t.Fatalf("%s: malformed fault body: %s", r.req, r.raw)
	}
	return r
}

func (r *apiResp) list(key string) []map[string]any {
	r.t.Helper()
	arr, ok := r.body[key].([]any)
	if !ok {
		r.t.Fatalf("%s: no list %q in %s", r.req, key, r.raw)
	}
	out := make([]map[string]any, 0, len(arr))
	for _, x := range arr {
		out = append(out, x.(map[string]any))
	}
	return out
}

// do sends a request; path is relative to <srv>/image unless absolute. A
// string or []byte body is sent as is, anything else as JSON.
func (e *apiEnv) do(method, path, token string, body any, headers ...string) *apiResp {
	e.t.Helper()
	var rd io.Reader
	ctype := ""
	switch b := body.(type) {
	case nil:
	case string:
		rd, ctype = strings.NewReader(b), "application/json"
	case []byte:
		rd, ctype = bytes.NewReader(b), "application/octet-stream"
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd, ctype = bytes.NewReader(buf), "application/json"
	}
	u := path
	if !strings.HasPrefix(path, "http") {
		u = e.base + path
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := &apiResp{t: e.t.(*testing.T), status: res.StatusCode, header: res.Header, raw: raw, req: method + " " + path}
	if len(raw) > 0 && strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		_ = json.Unmarshal(raw, &r.body)
	}
	return r
}

var glanceTimeRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)

func TestAPIVersions(t *testing.T) {
	e := newAPIEnv(t)
	for path, status := range map[string]int{"": 300, "/": 300, "/versions": 200} {
		res := e.do("GET", path, "", nil).want(status)
		vs := res.list("versions")
		if len(vs) < 2 || vs[0]["id"] != "v2.16" || vs[0]["status"] != "CURRENT" {
			t.Fatalf("versions %s", res.raw)
		}
		link := vs[0]["links"].([]any)[0].(map[string]any)
		if link["rel"] != "self" || link["href"] != e.base+"/v2/" {
			t.Errorf("version link %v", link)
		}
		if res.header.Get("X-Openstack-Request-Id") == "" {
			t.Error("no request ID")
		}
	}
}

func TestAPIAuthAndFaults(t *testing.T) {
	e := newAPIEnv(t)
	res := e.do("GET", "/v2/images", "", nil).wantFault(401)
	if got := res.header.Get("WWW-Authenticate"); !strings.Contains(got, "/identity") {
		t.Errorf("WWW-Authenticate %q", got)
	}
	e.do("GET", "/v2/images", "bogus-token", nil).wantFault(401)
	res = e.do("GET", "/v2/images/00000000-0000-4000-8000-000000000000", e.demo, nil).wantFault(404)
	if res.body["code"] != "404 Not Found" {
		t.Errorf("fault code %v", res.body["code"])
	}
	e.do("GET", "/v2/nothing-here", e.demo, nil).wantFault(404)
}

func TestAPIImageLifecycle(t *testing.T) {
	e := newAPIEnv(t)
	res := e.do("POST", "/v2/images", e.demo, map[string]any{
		"name": "cirros", "disk_format": "raw", "container_format": "bare", "min_ram": 64,
		"tags": []string{"small"}, "os_distro": "cirros",
	}).want(201)
	img := res.body
	id := img["id"].(string)
	if res.header.Get("Location") != e.base+"/v2/images/"+id {
		t.Errorf("Location %q", res.header.Get("Location"))
	}
	for _, k := range []string{"id", "name", "status", "visibility", "protected", "checksum", "os_hash_algo", "os_hash_value",
		"size", "virtual_size", "min_disk", "min_ram", "disk_format", "container_format", "owner", "created_at", "updated_at",
		"tags", "self", "file", "schema", "os_hidden"} {
		if _, has := img[k]; !has {
			t.Errorf("image lacks %q: %s", k, res.raw)
		}
	}
	if img["status"] != "queued" || img["visibility"] != "shared" || img["checksum"] != nil || img["size"] != nil ||
		img["os_distro"] != "cirros" || img["self"] != "/v2/images/"+id || img["file"] != "/v2/images/"+id+"/file" ||
		img["schema"] != "/v2/schemas/image" || img["owner"] != e.demoProject || img["min_ram"] != float64(64) ||
		!glanceTimeRE.MatchString(img["created_at"].(string)) {
		t.Errorf("created image %s", res.raw)
	}

	// Create rejections, with Glance's statuses.
	for _, tc := range []struct {
		body   any
		status int
	}{
		{map[string]any{"status": "active"}, 403},
		{map[string]any{"self": "/x"}, 403},
		{map[string]any{"checksum": "x"}, 403},
		{map[string]any{"deleted": "x"}, 403},
		{map[string]any{"min_ram": "lots"}, 400},
		{map[string]any{"protected": "yes"}, 400},
		{map[string]any{"tags": "x"}, 400},
		{map[string]any{"custom": 1}, 400},
		{map[string]any{"id": "nope"}, 400},
		{map[string]any{"disk_format": "exe"}, 400},
		{map[string]any{"visibility": "public"}, 403},
		{"{not json", 400},
		{"[]", 400},
		{"", 400},
	} {
		e.do("POST", "/v2/images", e.demo, tc.body).wantFault(tc.status)
	}

	// Show; another project gets 404 for a private image.
	e.do("GET", "/v2/images/"+id, e.demo, nil).want(200)
	_, _, other := e.tenantToken("other")
	e.do("GET", "/v2/images/"+id, other, nil).wantFault(404)
	e.do("DELETE", "/v2/images/"+id, other, nil).wantFault(404)

	// PATCH.
	patch := func(token, ctype string, body any) *apiResp {
		b, _ := json.Marshal(body)
		return e.do("PATCH", "/v2/images/"+id, token, string(b), "Content-Type", ctype)
	}
	res = patch(e.demo, patchV21, []any{
		map[string]any{"op": "replace", "path": "/name", "value": "renamed"},
		map[string]any{"op": "add", "path": "/hw_disk_bus", "value": "virtio"},
		map[string]any{"op": "remove", "path": "/os_distro"},
		map[string]any{"op": "replace", "path": "/min_disk", "value": 1},
	}).want(200)
	if res.body["name"] != "renamed" || res.body["hw_disk_bus"] != "virtio" || res.body["os_distro"] != nil || res.body["min_disk"] != float64(1) {
		t.Errorf("patched %s", res.raw)
	}
	res = patch(e.demo, patchV20, []any{map[string]any{"replace": "/name", "value": "draft4"}}).want(200)
	if res.body["name"] != "draft4" {
		t.Errorf("v2.0 patch %s", res.raw)
	}
	res = patch(e.demo, "application/json", []any{})
	res.wantFault(415)
	if !strings.Contains(res.header.Get("Accept-Patch"), patchV21) {
		t.Errorf("Accept-Patch %q", res.header.Get("Accept-Patch"))
	}
	for _, tc := range []struct {
		body   any
		status int
	}{
		{[]any{map[string]any{"op": "replace", "path": "/status", "value": "active"}}, 403},
		{[]any{map[string]any{"op": "replace", "path": "/id", "value": "x"}}, 403},
		{[]any{map[string]any{"op": "replace", "path": "/size", "value": 1}}, 403},
		{[]any{map[string]any{"op": "remove", "path": "/name"}}, 403},
		{[]any{map[string]any{"op": "add", "path": "/locations/-", "value": map[string]any{}}}, 403},
		{[]any{map[string]any{"op": "replace", "path": "/nope", "value": "x"}}, 409},
		{[]any{map[string]any{"op": "move", "path": "/name"}}, 400},
		{[]any{map[string]any{"op": "replace", "path": "name", "value": "x"}}, 400},
		{[]any{map[string]any{"op": "replace", "path": "/a/b", "value": "x"}}, 400},
		{[]any{map[string]any{"op": "replace", "path": "/name"}}, 400},
		{[]any{"replace"}, 400},
		{map[string]any{"op": "replace"}, 400},
	} {
		patch(e.demo, patchV21, tc.body).wantFault(tc.status)
	}

	// Tags.
	e.do("PUT", "/v2/images/"+id+"/tags/extra%20tag", e.demo, nil).want(204)
	res = e.do("GET", "/v2/images/"+id, e.demo, nil).want(200)
	if tags := res.body["tags"].([]any); !slices.Contains(tags, any("extra tag")) {
		t.Errorf("tags %v", tags)
	}
	e.do("DELETE", "/v2/images/"+id+"/tags/extra%20tag", e.demo, nil).want(204)
	e.do("DELETE", "/v2/images/"+id+"/tags/extra%20tag", e.demo, nil).wantFault(404)

	// Data: no data yet is 204.
	e.do("GET", "/v2/images/"+id+"/file", e.demo, nil).want(204)

	// Delete, protected first.
	patch(e.demo, patchV21, []any{map[string]any{"op": "replace", "path": "/protected", "value": true}}).want(200)
	e.do("DELETE", "/v2/images/"+id, e.demo, nil).wantFault(403)
	patch(e.demo, patchV21, []any{map[string]any{"op": "replace", "path": "/protected", "value": false}}).want(200)
	e.do("DELETE", "/v2/images/"+id, e.demo, nil).want(204)
	e.do("GET", "/v2/images/"+id, e.demo, nil).wantFault(404)
}

// tenantToken makes a project with a member user and returns the project
// ID, the user ID and a token.
func (e *apiEnv) tenantToken(name string) (string, string, string) {
	e.t.Helper()
	p, err := e.ids.CreateProject(e.env.admin, identity.Project{Name: name, DomainID: identity.DefaultDomainID, Enabled: true})
	ok(e.t, err)
	u, err := e.ids.CreateUser(e.env.admin, identity.User{Name: name + "-user", DomainID: identity.DefaultDomainID, Enabled: true}, name+"-pw")
	ok(e.t, err)
	ok(e.t, e.ids.Grant(e.env.admin, identity.Assignment{ActorType: identity.ActorUser, ActorID: u.ID,
		TargetType: identity.TargetProject, TargetID: p.ID, RoleID: e.roles["member"]}))
	return p.ID, u.ID, e.token(u.ID, name+"-pw", p.ID)
}

func TestAPIList(t *testing.T) {
	e := newAPIEnv(t)
	var ids []string
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		res := e.do("POST", "/v2/images", e.demo, map[string]any{"name": n, "tags": []string{"t-" + n, "all"}}).want(201)
		ids = append(ids, res.body["id"].(string))
	}
	res := e.do("GET", "/v2/images", e.demo, nil).want(200)
	if res.body["schema"] != "/v2/schemas/images" || res.body["first"] != "/v2/images" || res.body["next"] != nil {
		t.Errorf("list envelope %s", res.raw)
	}
	if len(res.list("images")) != 5 || res.list("images")[0]["name"] != "e" {
		t.Errorf("default order: %s", res.raw)
	}
	// Follow next links as clients do.
	var seen []string
	next := "/v2/images?limit=2&sort=name:asc"
	for pages := 0; next != ""; pages++ {
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
		res = e.do("GET", e.srv.URL+"/image"+next, e.demo, nil).want(200)
		for _, img := range res.list("images") {
			seen = append(seen, img["name"].(string))
		}
		next, _ = res.body["next"].(string)
		if next != "" && !strings.Contains(next, "marker=") {
			t.Fatalf("next link %q", next)
		}
	}
	if !slices.Equal(seen, []string{"a", "b", "c", "d", "e"}) {
		t.Errorf("paged %v", seen)
	}
	res = e.do("GET", "/v2/images?sort_key=name&sort_dir=desc&tag=all&tag=t-b", e.demo, nil).want(200)
	if imgs := res.list("images"); len(imgs) != 1 || imgs[0]["id"] != ids[1] {
		t.Errorf("tag filter: %s", res.raw)
	}
	res = e.do("GET", "/v2/images?name=in:a,c&sort=name:asc", e.demo, nil).want(200)
	if imgs := res.list("images"); len(imgs) != 2 || imgs[0]["name"] != "a" || imgs[1]["name"] != "c" {
		t.Errorf("name in: %s", res.raw)
	}
	for _, q := range []string{"sort_key=owner", "sort_dir=sideways", "sort=name&sort_key=id", "limit=x", "limit=-1",
		"visibility=world", "member_status=x", "os_hidden=maybe", "protected=2", "marker=nope", "changes-since=2020-01-01",
		"created_at=yesterday"} {
		e.do("GET", "/v2/images?"+q, e.demo, nil).wantFault(400)
	}
	res = e.do("GET", "/v2/images?created_at=gte:2000-01-01T00:00:00Z", e.demo, nil).want(200)
	if len(res.list("images")) != 5 {
		t.Errorf("created_at filter: %s", res.raw)
	}
}

func TestAPIData(t *testing.T) {
	requireQemu(t)
	e := newAPIEnv(t)
	res := e.do("POST", "/v2/images", e.demo, map[string]any{"name": "d", "disk_format": "raw", "container_format": "bare"}).want(201)
	id := res.body["id"].(string)
	data := []byte("0123456789abcdefghij")
	e.do("PUT", "/v2/images/"+id+"/file", e.demo, string(data)).wantFault(415) // JSON content type
	e.do("PUT", "/v2/images/"+id+"/file", e.demo, data).want(204)
	e.do("PUT", "/v2/images/"+id+"/file", e.demo, data).wantFault(409)
	res = e.do("GET", "/v2/images/"+id, e.demo, nil).want(200)
	sum := md5.Sum(data)
	if res.body["status"] != "active" || res.body["size"] != float64(len(data)) || res.body["virtual_size"] != float64(len(data)) ||
		res.body["checksum"] != hex.EncodeToString(sum[:]) || res.body["os_hash_algo"] != "sha512" ||
		len(res.body["os_hash_value"].(string)) != 128 {
		t.Errorf("after upload %s", res.raw)
	}

	res = e.do("GET", "/v2/images/"+id+"/file", e.demo, nil).want(200)
	if !bytes.Equal(res.raw, data) || res.header.Get("Content-MD5") != hex.EncodeToString(sum[:]) ||
		res.header.Get("Content-Length") != "20" || res.header.Get("Content-Type") != "application/octet-stream" {
		t.Errorf("download %q %v", res.raw, res.header)
	}
	for _, tc := range []struct {
		rng, body, crange string
	}{
		{"bytes=0-3", "0123", "bytes 0-3/20"},
		{"bytes=10-", "abcdefghij", "bytes 10-19/20"},
		{"bytes=-4", "ghij", "bytes 16-19/20"},
		{"bytes=18-100", "ij", "bytes 18-19/20"},
	} {
		res = e.do("GET", "/v2/images/"+id+"/file", e.demo, nil, "Range", tc.rng).want(206)
		if string(res.raw) != tc.body || res.header.Get("Content-Range") != tc.crange {
			t.Errorf("Range %s: %q %q", tc.rng, res.raw, res.header.Get("Content-Range"))
		}
	}
	for _, rng := range []string{"bytes=20-", "bytes=5-2", "bytes=0-1,4-5", "lines=1-2", "bytes=x-y"} {
		res = e.do("GET", "/v2/images/"+id+"/file", e.demo, nil, "Range", rng).want(416)
		if res.header.Get("Content-Range") != "bytes */20" {
			t.Errorf("416 Content-Range %q", res.header.Get("Content-Range"))
		}
	}

	// Deactivation: admin only; then only admins download.
	e.do("POST", "/v2/images/"+id+"/actions/deactivate", e.demo, nil).wantFault(403)
	e.do("POST", "/v2/images/"+id+"/actions/deactivate", e.admin, nil).want(204)
	e.do("GET", "/v2/images/"+id+"/file", e.demo, nil).wantFault(403)
	e.do("GET", "/v2/images/"+id+"/file", e.admin, nil).want(200)
	e.do("POST", "/v2/images/"+id+"/actions/reactivate", e.admin, nil).want(204)
	e.do("GET", "/v2/images/"+id+"/file", e.demo, nil).want(200)
	e.do("POST", "/v2/images/"+id+"/actions/explode", e.admin, nil).wantFault(404)

	// A rejected upload: 400 and killed.
	res = e.do("POST", "/v2/images", e.demo, map[string]any{"name": "bad", "disk_format": "qcow2", "container_format": "bare"}).want(201)
	bad := res.body["id"].(string)
	e.do("PUT", "/v2/images/"+bad+"/file", e.demo, []byte("not a qcow2 image at all")).wantFault(400)
	if st := e.do("GET", "/v2/images/"+bad, e.demo, nil).want(200).body["status"]; st != "killed" {
		t.Errorf("status %v", st)
	}
}

func TestAPIUploadTooLarge(t *testing.T) {
	requireQemu(t)
	e := newAPIEnv(t, func(c *Config) { c.MaxImageBytes = 1024 })
	res := e.do("POST", "/v2/images", e.demo, map[string]any{"name": "big", "disk_format": "raw", "container_format": "bare"}).want(201)
	id := res.body["id"].(string)
	e.do("PUT", "/v2/images/"+id+"/file", e.demo, bytes.Repeat([]byte("x"), 2048)).wantFault(413)
	if st := e.do("GET", "/v2/images/"+id, e.demo, nil).want(200).body["status"]; st != "killed" {
		t.Errorf("status %v", st)
	}
}

func TestAPIQuota(t *testing.T) {
	e := newAPIEnv(t, func(c *Config) { c.ImageQuota = 1 })
	e.do("POST", "/v2/images", e.demo, map[string]any{"name": "1"}).want(201)
	e.do("POST", "/v2/images", e.demo, map[string]any{"name": "2"}).wantFault(413)
}

func TestAPIMembers(t *testing.T) {
	e := newAPIEnv(t)
	otherProject, _, other := e.tenantToken("other")
	id := e.do("POST", "/v2/images", e.demo, map[string]any{"name": "s"}).want(201).body["id"].(string)
	e.do("GET", "/v2/images/"+id, other, nil).wantFault(404)
	res := e.do("POST", "/v2/images/"+id+"/members", e.demo, map[string]any{"member": otherProject}).want(200)
	if res.body["status"] != "pending" || res.body["member_id"] != otherProject || res.body["image_id"] != id ||
		res.body["schema"] != "/v2/schemas/member" || !glanceTimeRE.MatchString(res.body["created_at"].(string)) {
		t.Errorf("member %s", res.raw)
	}
	e.do("POST", "/v2/images/"+id+"/members", e.demo, map[string]any{"member": otherProject}).wantFault(409)
	e.do("POST", "/v2/images/"+id+"/members", e.demo, map[string]any{}).wantFault(400)
	res = e.do("GET", "/v2/images/"+id+"/members", e.demo, nil).want(200)
	if len(res.list("members")) != 1 || res.body["schema"] != "/v2/schemas/members" {
		t.Errorf("members %s", res.raw)
	}
	e.do("GET", "/v2/images/"+id, other, nil).want(200)
	if imgs := e.do("GET", "/v2/images", other, nil).want(200).list("images"); len(imgs) != 0 {
		t.Errorf("pending shared image listed: %v", imgs)
	}
	if imgs := e.do("GET", "/v2/images?member_status=pending", other, nil).want(200).list("images"); len(imgs) != 1 {
		t.Errorf("member_status=pending: %v", imgs)
	}
	e.do("PUT", "/v2/images/"+id+"/members/"+otherProject, e.demo, map[string]any{"status": "accepted"}).wantFault(403)
	e.do("PUT", "/v2/images/"+id+"/members/"+otherProject, other, map[string]any{"status": "bogus"}).wantFault(400)
	e.do("PUT", "/v2/images/"+id+"/members/"+otherProject, other, map[string]any{}).wantFault(400)
	res = e.do("PUT", "/v2/images/"+id+"/members/"+otherProject, other, map[string]any{"status": "accepted"}).want(200)
	if res.body["status"] != "accepted" {
		t.Errorf("accepted %s", res.raw)
	}
	if imgs := e.do("GET", "/v2/images", other, nil).want(200).list("images"); len(imgs) != 1 {
		t.Errorf("accepted shared image not listed: %v", imgs)
	}
	e.do("GET", "/v2/images/"+id+"/members/"+otherProject, other, nil).want(200)
	e.do("DELETE", "/v2/images/"+id+"/members/"+otherProject, e.demo, nil).want(204)
	e.do("GET", "/v2/images/"+id, other, nil).wantFault(404)
}

func TestAPISchemas(t *testing.T) {
	e := newAPIEnv(t)
	res := e.do("GET", "/v2/schemas/image", e.demo, nil).want(200)
	props := res.body["properties"].(map[string]any)
	ap := res.body["additionalProperties"].(map[string]any)
	if res.body["name"] != "image" || ap["type"] != "string" || props["os_hash_value"] == nil || props["visibility"] == nil {
		t.Errorf("image schema %s", res.raw)
	}
	vis := props["visibility"].(map[string]any)["enum"].([]any)
	if len(vis) != 4 {
		t.Errorf("visibility enum %v", vis)
	}
	res = e.do("GET", "/v2/schemas/images", e.demo, nil).want(200)
	if res.body["name"] != "images" || res.body["properties"].(map[string]any)["images"] == nil {
		t.Errorf("images schema %s", res.raw)
	}
	e.do("GET", "/v2/schemas/member", e.demo, nil).want(200)
	e.do("GET", "/v2/schemas/members", e.demo, nil).want(200)
	e.do("GET", "/v2/schemas/image", "", nil).wantFault(401)
	res = e.do("GET", "/v2/info/import", e.demo, nil).want(200)
	if res.body["import-methods"] == nil {
		t.Errorf("import info %s", res.raw)
	}
}
