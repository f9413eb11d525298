package web

import (
	"bytes"
	"context"
	"encoding/json"
	"html"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nimbus-cloud/nimbus/agents/agentapi"
	"github.com/nimbus-cloud/nimbus/agents/agenttest"
	"github.com/nimbus-cloud/nimbus/agents/fake"
	"github.com/nimbus-cloud/nimbus/backend/compute"
	"github.com/nimbus-cloud/nimbus/backend/hosts"
	"github.com/nimbus-cloud/nimbus/backend/identity"
	"github.com/nimbus-cloud/nimbus/backend/image"
	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
	"github.com/nimbus-cloud/nimbus/backend/platform/events"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/novnc"
	"github.com/nimbus-cloud/nimbus/views"
)

// testImages is compute's view of the image service, as cmd/nimbus wires it.
type testImages struct{ imgs *image.Service }

func (a testImages) GetImage(ctx context.Context, id string) (*compute.ImageInfo, error) {
	img, err := a.imgs.GetImage(ctx, id)
	if err != nil {
		return nil, err
	}
	return testImageInfo(img), nil
}

func (a testImages) CreateSnapshotImage(ctx context.Context, spec compute.SnapshotSpec) (*compute.ImageInfo, error) {
	img, err := a.imgs.CreateImage(ctx, image.Image{Name: spec.Name, DiskFormat: spec.DiskFormat, ContainerFormat: spec.ContainerFormat,
		MinDisk: int(spec.MinDiskGB), MinRAM: int(spec.MinRAMMB), Properties: spec.Properties})
	if err != nil {
		return nil, err
	}
	return testImageInfo(img), nil
}

func (a testImages) DeleteImage(ctx context.Context, id string) error {
	if _, ok := auth.FromContext(ctx); !ok {
		ctx = systemCtx(ctx)
	}
	return a.imgs.DeleteImage(ctx, id)
}

func testImageInfo(img *image.Image) *compute.ImageInfo {
	info := &compute.ImageInfo{ID: img.ID, Name: img.Name, Status: img.Status, DiskFormat: img.DiskFormat,
		ContainerFormat: img.ContainerFormat, MinDiskGB: int64(img.MinDisk), MinRAMMB: int64(img.MinRAM),
		Checksum: img.Checksum, OSHashAlgo: img.HashAlgo, OSHashValue: img.HashValue, Properties: img.Properties}
	if img.Size != nil {
		info.Size = *img.Size
	}
	if img.VirtualSize != nil {
		info.VirtualSize = *img.VirtualSize
	}
	return info
}

// agentImageSource serves image content to the agent.
type agentImageSource struct{ imgs *image.Service }

func (a agentImageSource) OpenImage(ctx context.Context, id string) (io.ReadCloser, int64, error) {
	rc, img, err := a.imgs.OpenContent(systemCtx(ctx), id)
	if err != nil {
		return nil, 0, err
	}
	size := int64(-1)
	if img.Size != nil {
		size = *img.Size
	}
	return rc, size, nil
}

func (a agentImageSource) UploadImage(ctx context.Context, id string, r io.Reader, size int64) error {
	_, err := a.imgs.Upload(systemCtx(ctx), id, r, size)
	return err
}

// testConsoleTokens and testVNCDialer wire the console proxy as cmd/nimbus does.
type testConsoleTokens struct{ comp *compute.Service }

func (c testConsoleTokens) ConsumeConsoleToken(ctx context.Context, token string) (*novnc.Target, error) {
	t, err := c.comp.ConsumeConsoleToken(ctx, token)
	if err != nil {
		return nil, err
	}
	return &novnc.Target{InstanceUUID: t.InstanceUUID, HostID: t.HostID}, nil
}

type testVNCDialer struct{ reg *hosts.Registry }

func (d testVNCDialer) DialVNC(ctx context.Context, hostID, uuid string) (io.ReadWriteCloser, error) {
	c, err := d.reg.Client(ctx, hostID)
	if err != nil {
		return nil, err
	}
	return c.DialVNC(ctx, uuid)
}

func systemCtx(ctx context.Context) context.Context {
	return auth.WithCredentials(ctx, &auth.Credentials{UserID: "nimbus", UserName: "nimbus", System: true,
		Roles: []string{"admin", "member", "reader"}})
}

// cenv is env with the compute and image services and one agent.
type cenv struct {
	*env
	comp    *compute.Service
	imgs    *image.Service
	reg     *hosts.Registry
	bus     *events.Bus
	imageID string // a public, active qcow2 image
	tiny    string // m1.tiny's ID
}

// qcow2 makes a small qcow2 file with qemu-img.
func qcow2(t testing.TB) []byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.qcow2")
	if out, err := exec.Command("qemu-img", "create", "-f", "qcow2", p, "16M").CombinedOutput(); err != nil {
		t.Skipf("qemu-img: %v %s", err, out)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newComputeEnv(t testing.TB) *cenv {
	t.Helper()
	ctx := context.Background()
	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	d, pol, ids, boot := newTestBase(t, srv.URL, compute.PolicyRules(), image.PolicyRules())
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	imgs, err := image.New(ctx, d, image.Config{DataDir: t.TempDir(), Policy: pol, Tokens: ids})
	if err != nil {
		t.Fatal(err)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	bus := events.New()
	hctx, stopHosts := context.WithCancel(ctx)
	t.Cleanup(stopHosts)
	reg, err := hosts.New(hctx, d, hosts.Config{DownAfter: 3 * time.Second, HeartbeatInterval: 100 * time.Millisecond,
		Policy: pol, Logger: log, HTTPClient: &http.Client{Timeout: 10 * time.Second, Transport: transport}, Events: bus})
	if err != nil {
		t.Fatal(err)
	}
	reg.SetImageSource(agentImageSource{imgs})
	comp, err := compute.New(ctx, d, compute.Config{Policy: pol, Hosts: reg, Images: testImages{imgs}, Tokens: ids,
		PublicURL: srv.URL, ReconcileInterval: -1, Logger: log, Events: bus})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { comp.Close() })
	if err := comp.EnsureDefaultFlavors(ctx); err != nil {
		t.Fatal(err)
	}
	console := novnc.New(novnc.Config{Tokens: testConsoleTokens{comp}, Dialer: testVNCDialer{reg}, AllowedOrigins: []string{srv.URL}})
	ws, err := New(Config{
		Identity: ids, DB: d, Compute: comp, Images: imgs, Logger: log, Events: bus,
		APIs: []Mount{{Prefix: "/agents", Handler: reg.Handler()}, {Prefix: "/console", Handler: console.Handler()}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	h = ws
	e := &env{t: t, db: d, id: ids, web: ws, srv: srv, boot: boot}
	e.member = e.roleID("member")
	ce := &cenv{env: e, comp: comp, imgs: imgs, reg: reg, bus: bus}

	// One agent with the fake driver.
	tok, err := reg.CreateJoinToken(e.adminCtx(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	agenttest.Start(t, srv.URL, tok, agenttest.Options{Hostname: "node-1", Fake: fake.Config{
		Inventory: agentapi.Inventory{VCPUs: 16, MemoryMB: 32768, DiskGB: 500, HypervisorType: "QEMU",
			HypervisorVersion: 8002000, VirtType: "kvm", CPUInfo: `{"arch": "x86_64"}`, HostIP: "127.0.0.1"}}})
	t.Cleanup(transport.CloseIdleConnections)
	comp.Scheduler().Invalidate()

	// A public image, uploaded by the admin.
	actx := e.adminCtx()
	im, err := imgs.CreateImage(actx, image.Image{Name: "cirros", Visibility: "public", DiskFormat: "qcow2", ContainerFormat: "bare"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := imgs.Upload(actx, im.ID, bytes.NewReader(qcow2(t)), -1); err != nil {
		t.Fatal(err)
	}
	ce.imageID = im.ID
	fls, err := comp.ListFlavors(actx, compute.FlavorFilter{Name: "m1.tiny"})
	if err != nil || len(fls) == 0 {
		t.Fatalf("m1.tiny: %v %v", fls, err)
	}
	ce.tiny = fls[0].ID
	return ce
}

// launch starts an m1.tiny instance without networks as ctx's user.
func (e *cenv) launch(ctx context.Context, name string) string {
	e.t.Helper()
	res, err := e.comp.CreateServers(ctx, compute.ServerCreate{Name: name, ImageRef: e.imageID, FlavorRef: e.tiny,
		MinCount: 1, MaxCount: 1, Networks: compute.NetworksNone})
	if err != nil {
		e.t.Fatal(err)
	}
	return res.Servers[0].ID
}

// bootActive launches an instance and waits until it runs.
func (e *cenv) bootActive(ctx context.Context, name string) string {
	e.t.Helper()
	id := e.launch(ctx, name)
	e.waitStatus(id, "ACTIVE")
	return id
}

// userCtx authenticates name on project and returns its credentials.
func (e *cenv) userCtx(name, password, projectID string) context.Context {
	e.t.Helper()
	ti, err := e.id.Authenticate(context.Background(), identity.AuthRequest{
		Methods:  []string{identity.MethodPassword},
		Password: &identity.PasswordAuth{UserName: name, DomainName: "Default", Password: password},
		Scope:    identity.Scope{ProjectID: projectID},
	})
	if err != nil {
		e.t.Fatalf("authenticate %s: %v", name, err)
	}
	return auth.WithCredentials(context.Background(), &ti.Credentials)
}

// grant gives user the named role on project.
func (e *cenv) grant(u *identity.User, p *identity.Project, role string) {
	e.t.Helper()
	if err := e.id.Grant(e.adminCtx(), identity.Assignment{ActorType: identity.ActorUser, ActorID: u.ID,
		TargetType: identity.TargetProject, TargetID: p.ID, RoleID: e.roleID(role)}); err != nil {
		e.t.Fatal(err)
	}
}

// serverNamed finds a server by name in any project.
func (e *cenv) serverNamed(name string) *compute.Server {
	e.t.Helper()
	ss, err := e.comp.ListServers(e.adminCtx(), compute.ServerFilter{AllTenants: true, Name: "^" + name + "$"})
	if err != nil {
		e.t.Fatal(err)
	}
	if len(ss) == 0 {
		return nil
	}
	return &ss[0]
}

// waitStatus waits until server id is status with no task running.
func (e *cenv) waitStatus(id, status string) {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s, err := e.comp.GetServer(e.adminCtx(), id)
		if err == nil && s.Status() == status && s.TaskState == "" {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("server %s never became %s (last %+v, %v)", id, status, s, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *cenv) waitGone(id string) {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := e.comp.GetServer(e.adminCtx(), id)
		if fault.Is(err, fault.NotFound) {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("server %s never went away (%v)", id, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func hxTarget2(target string) opt {
	return func(r *http.Request) {
		hx(r)
		r.Header.Set("HX-Target", target)
	}
}

func toastOf(t *testing.T, r resp) map[string]string {
	t.Helper()
	var trig map[string]map[string]string
	if err := json.Unmarshal([]byte(r.header.Get("HX-Trigger")), &trig); err != nil {
		t.Fatalf("HX-Trigger %q: %v", r.header.Get("HX-Trigger"), err)
	}
	return trig["nimbus:toast"]
}

func TestInstancesLifecycle(t *testing.T) {
	e := newComputeEnv(t)
	pa, pb := e.createProject("proj-a"), e.createProject("proj-b")
	e.createMember("alice", "alice-Secret-1", pa)
	e.createMember("bob", "bob-Secret-1", pb)
	alice, bob := e.client(), e.client()
	alice.login("alice", "alice-Secret-1")
	bob.login("bob", "bob-Secret-1")

	// Empty state, full page and fragment; the nav lists the new pages.
	r := alice.get("/project/instances")
	wantStatus(t, r, http.StatusOK)
	if !isFullPage(r.body) {
		t.Fatal("not a full page")
	}
	wantContains(t, r, "Launch your first instance", `href="/project/images"`, `href="/project/key-pairs"`)
	wantNotContains(t, r, `href="/admin/hypervisors"`)
	r = alice.get("/project/instances", hx)
	wantStatus(t, r, http.StatusOK)
	if isFullPage(r.body) {
		t.Fatal("htmx answer is a full page")
	}
	wantContains(t, r, "Launch your first instance")

	// The launch dialog: images, flavors, the quota line and the network note.
	r = alice.get("/project/instances/new", hxTargetModal)
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, `id="launch-form"`, "cirros", "m1.tiny", "Instances", "left", "without networks")
	r = alice.get("/project/instances/new?image=" + e.imageID)
	wantStatus(t, r, http.StatusOK)
	if !isFullPage(r.body) {
		t.Fatal("plain launch form is not a full page")
	}
	wantContains(t, r, `value="`+e.imageID+`" selected`)

	// Validation is inline.
	r = alice.post("/project/instances", url.Values{"name": {""}, "count": {"0"}}, hxTarget2("launch-form"))
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, "Enter a name for the instance.", "Enter a number from 1 to 50.", "Choose an image.", "Choose a flavor.")
	if isFullPage(r.body) {
		t.Fatal("htmx validation answer is a full page")
	}

	// Launch; the instance appears and becomes ACTIVE.
	r = alice.post("/project/instances", url.Values{"name": {"web-1"}, "count": {"1"}, "image": {e.imageID},
		"flavor": {e.tiny}, "user_data": {"#cloud-config\n"}}, hxTarget2("launch-form"))
	wantHXDone(t, r, "/project/instances", "web-1")
	srv := e.serverNamed("web-1")
	if srv == nil || srv.ProjectID != pa.ID || srv.Networks != compute.NetworksNone {
		t.Fatalf("server %+v", srv)
	}
	e.waitStatus(srv.ID, "ACTIVE")
	r = alice.get("/project/instances")
	wantContains(t, r, `id="instance-`+srv.ID+`"`, "web-1", "cirros", "m1.tiny", "status-active", "/project/instances/"+srv.ID+"/stop")
	wantNotContains(t, r, "/project/instances/"+srv.ID+"/start")
	// Filter and sort keep working.
	wantContains(t, alice.get("/project/instances?q=web&sort=name&dir=asc"), "web-1")
	wantNotContains(t, alice.get("/project/instances?q=nomatch"), `id="instance-`+srv.ID+`"`)

	// Another project's member sees neither the row nor the page.
	wantNotContains(t, bob.get("/project/instances"), "web-1")
	wantStatus(t, bob.get("/project/instances/"+srv.ID), http.StatusNotFound)
	wantStatus(t, bob.post("/project/instances/"+srv.ID+"/stop", nil), http.StatusNotFound)

	// Stop from the row: confirmation first, then the row comes back.
	r = alice.get("/project/instances/"+srv.ID+"/stop?back=/project/instances", hxTargetModal)
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, "Stop instance", "web-1")
	r = alice.post("/project/instances/"+srv.ID+"/stop", url.Values{"back": {"/project/instances"}}, hxTarget2("instance-"+srv.ID))
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, `<tr id="instance-`+srv.ID+`"`)
	if toastOf(t, r)["level"] != "success" {
		t.Fatalf("toast %v", toastOf(t, r))
	}
	e.waitStatus(srv.ID, "SHUTOFF")
	r = alice.get("/project/instances")
	wantContains(t, r, "/project/instances/"+srv.ID+"/start", "status-shutoff")
	wantNotContains(t, r, "/project/instances/"+srv.ID+"/stop")
	// Start from the row, plain post: back to the list.
	r = alice.post("/project/instances/"+srv.ID+"/start", url.Values{"back": {"/project/instances"}})
	wantRedirect(t, r, "/project/instances")
	e.waitStatus(srv.ID, "ACTIVE")

	// A settled row does not poll; its fragment is the row alone.
	r = alice.get("/project/instances/"+srv.ID+"/row?back=/project/instances", hx)
	wantStatus(t, r, http.StatusOK)
	if !strings.HasPrefix(strings.TrimSpace(r.body), `<tr id="instance-`+srv.ID+`"`) {
		t.Fatalf("row fragment:\n%s", r.body)
	}
	wantNotContains(t, r, "every 3s")
	wantStatus(t, bob.get("/project/instances/"+srv.ID+"/row", hx), http.StatusOK) // empty: nothing to show
	wantNotContains(t, bob.get("/project/instances/"+srv.ID+"/row", hx), "web-1")

	// Detail page and its tabs.
	r = alice.get("/project/instances/" + srv.ID)
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, "web-1", srv.ID, "m1.tiny", "Console log", "Action log")
	wantNotContains(t, r, "node-1") // the host is for admins
	r = alice.get("/project/instances/"+srv.ID+"?tab=log", hx)
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, `hx-trigger="every 3s"`, `id="console-log"`)
	r = alice.get("/project/instances/"+srv.ID+"/log", hx)
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, `id="console-log"`)
	r = alice.get("/project/instances/" + srv.ID + "?tab=console")
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, "<iframe", "vnc_lite.html", `allow="fullscreen"`)
	src := regexp.MustCompile(`<iframe class="console-frame" src="([^"]+)"`).FindStringSubmatch(r.body)
	if src == nil || !strings.HasPrefix(html.UnescapeString(src[1]), e.srv.URL+"/console/vnc_lite.html?") {
		t.Fatalf("console frame %v", src)
	}
	if res, err := http.Get(html.UnescapeString(src[1])); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("console page: %v %v", res, err)
	} else {
		res.Body.Close()
	}
	r = alice.get("/project/instances/"+srv.ID+"?tab=actions", hx)
	wantContains(t, r, "create", "start", "stop")
	// An admin sees the host.
	admin := e.adminClient()
	wantContains(t, admin.get("/project/instances/"+srv.ID), "node-1")

	// Bulk stop asks first, then stops.
	r = alice.post("/project/instances/bulk", url.Values{"action": {"stop"}, "id": {srv.ID}}, hxTargetModal)
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, "Stop instances", `name="confirmed" value="true"`)
	r = alice.post("/project/instances/bulk", url.Values{"action": {"stop"}, "id": {srv.ID}, "confirmed": {"true"}}, hx)
	wantHXDone(t, r, "/project/instances", "Stopping 1 instance.")
	e.waitStatus(srv.ID, "SHUTOFF")
	r = alice.post("/project/instances/bulk", url.Values{"action": {"start"}, "id": {srv.ID}})
	wantRedirect(t, r, "/project/instances")
	e.waitStatus(srv.ID, "ACTIVE")

	// Delete: confirmation, then gone.
	r = alice.get("/project/instances/"+srv.ID+"/delete", hxTargetModal)
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, "Delete instance", "cannot be undone")
	r = alice.post("/project/instances/"+srv.ID+"/delete", url.Values{"back": {"/project/instances"}}, hx)
	wantHXDone(t, r, "/project/instances", "Deleting the instance.")
	e.waitGone(srv.ID)
	// Deleting again: the confirmation comes back with the service's 404.
	r = alice.post("/project/instances/"+srv.ID+"/delete", nil, hx)
	wantStatus(t, r, http.StatusNotFound)
	wantContains(t, r, "alert-error")

	// CSRF still guards the new forms.
	r = alice.post("/project/instances", url.Values{"name": {"x"}, "csrf_token": {"wrong"}})
	wantStatus(t, r, http.StatusForbidden)
	r = alice.post("/project/instances/bulk", url.Values{"action": {"start"}, "csrf_token": {""}})
	wantStatus(t, r, http.StatusForbidden)
}

func TestInstancesReaderAndAdmin(t *testing.T) {
	e := newComputeEnv(t)
	pa := e.createProject("proj-a")
	e.createMember("alice", "alice-Secret-1", pa)
	e.createReader("rita", "rita-Secret-1", pa)

	actx := e.userCtx("alice", "alice-Secret-1", pa.ID)
	id := e.bootActive(actx, "db-1")

	// The reader sees the instance but no action.
	rita := e.client()
	rita.login("rita", "rita-Secret-1")
	r := rita.get("/project/instances")
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, `id="instance-`+id+`"`, "db-1")
	wantNotContains(t, r, "/project/instances/"+id+"/stop", "Launch instance", `id="instances-bulk"`, "row-menu")
	wantNotContains(t, rita.get("/project/instances/"+id), "/project/instances/"+id+"/stop")
	// A forged post is refused by the service: a 403 page, or a toast.
	refusal := e.comp.StopServer(e.userCtx("rita", "rita-Secret-1", pa.ID), id)
	if !fault.Is(refusal, fault.Forbidden) {
		t.Fatalf("reader stop: %v", refusal)
	}
	r = rita.post("/project/instances/"+id+"/stop", url.Values{"back": {"/project/instances"}})
	wantStatus(t, r, http.StatusForbidden)
	wantContains(t, r, "Not allowed", html.EscapeString(fault.Message(refusal)))
	if !isFullPage(r.body) {
		t.Fatal("forged plain post: not a page")
	}
	r = rita.post("/project/instances/"+id+"/stop", nil, hxTarget2("instance-"+id))
	wantStatus(t, r, http.StatusForbidden)
	if toastOf(t, r)["level"] != "error" {
		t.Fatalf("toast %v", toastOf(t, r))
	}
	r = rita.post("/project/instances/"+id+"/delete", nil, hxTargetModal)
	wantStatus(t, r, http.StatusForbidden)
	wantContains(t, r, "alert-error")
	r = rita.post("/project/instances", url.Values{"name": {"x"}, "count": {"1"}, "image": {e.imageID}, "flavor": {e.tiny}}, hxTarget2("launch-form"))
	wantStatus(t, r, http.StatusForbidden)
	wantContains(t, r, "alert-error")
	e.waitStatus(id, "ACTIVE")

	// Admin pages: 403 for members, content for admins.
	alice := e.client()
	alice.login("alice", "alice-Secret-1")

	// Paging by marker.
	for _, n := range []string{"db-2", "db-3"} {
		if _, err := e.comp.CreateServers(actx, compute.ServerCreate{Name: n, ImageRef: e.imageID, FlavorRef: e.tiny,
			MinCount: 1, MaxCount: 1, Networks: compute.NetworksNone}); err != nil {
			t.Fatal(err)
		}
	}
	r = alice.get("/project/instances?sort=name&dir=asc&limit=2")
	wantContains(t, r, ">db-1<", ">db-2<", "Next page")
	wantNotContains(t, r, ">db-3<", "First page")
	m := regexp.MustCompile(`href="(/project/instances\?[^"]*marker=[^"]*)"`).FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("no next link:\n%s", r.body)
	}
	r = alice.get(html.UnescapeString(m[1]), hx)
	wantContains(t, r, ">db-3<", "First page")
	wantNotContains(t, r, ">db-1<", "Next page")
	for _, n := range []string{"db-2", "db-3"} {
		s := e.serverNamed(n)
		e.waitStatus(s.ID, "ACTIVE")
	}
	for _, p := range []string{"/admin/hypervisors", "/admin/instances", "/admin/flavors", "/admin/services", "/admin/flavors/new"} {
		wantStatus(t, alice.get(p), http.StatusForbidden)
		wantStatus(t, alice.get(p, hx), http.StatusForbidden)
	}
	wantStatus(t, alice.post("/admin/flavors", url.Values{"name": {"x"}, "vcpus": {"1"}, "ram": {"1"}, "disk": {"1"}}), http.StatusForbidden)

	admin := e.adminClient()
	r = admin.get("/admin/hypervisors")
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, "node-1", "<meter", "Up")
	wantStatus(t, admin.get("/admin/hypervisors", hx), http.StatusOK)
	r = admin.get("/admin/instances")
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, `id="instance-`+id+`"`, "db-1", "proj-a", "node-1", "/project/instances/"+id+"/stop")
	wantStatus(t, admin.get("/admin/instances", hx), http.StatusOK)
	// An admin's row action from the admin list returns the admin row.
	r = admin.post("/project/instances/"+id+"/lock", url.Values{"back": {"/admin/instances"}}, hxTarget2("instance-"+id))
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, "Locked", "proj-a")
	// The owner cannot delete an admin-locked instance: not offered.
	wantNotContains(t, alice.get("/project/instances"), "/project/instances/"+id+"/delete")

	// Flavors: list, create, delete.
	r = admin.get("/admin/flavors")
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, "m1.tiny", "m1.small")
	r = admin.post("/admin/flavors", url.Values{"name": {"c1.custom"}, "vcpus": {"2"}, "ram": {"1024"}, "disk": {"5"}, "public": {"true"}}, hx)
	wantHXDone(t, r, "/admin/flavors", "c1.custom")
	r = admin.post("/admin/flavors", url.Values{"name": {"bad"}, "vcpus": {"0"}, "ram": {"x"}, "disk": {"1"}}, hx)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, "field-error")
	fls, _ := e.comp.ListFlavors(e.adminCtx(), compute.FlavorFilter{Name: "c1.custom"})
	if len(fls) != 1 {
		t.Fatalf("flavors %v", fls)
	}
	wantContains(t, admin.get("/admin/flavors/"+fls[0].ID+"/delete", hxTargetModal), "Delete flavor")
	wantRedirect(t, admin.post("/admin/flavors/"+fls[0].ID+"/delete", nil), "/admin/flavors")

	// Services: disable, then enable.
	cs, err := e.comp.ListComputeServices(e.adminCtx(), "")
	if err != nil || len(cs) != 1 {
		t.Fatalf("services %v %v", cs, err)
	}
	r = admin.get("/admin/services")
	wantContains(t, r, "node-1", "/admin/services/"+cs[0].ID+"/disable")
	wantHXDone(t, admin.post("/admin/services/"+cs[0].ID+"/disable", nil, hx), "/admin/services", "disabled")
	wantContains(t, admin.get("/admin/services"), "/admin/services/"+cs[0].ID+"/enable", "Disabled")
	wantRedirect(t, admin.post("/admin/services/"+cs[0].ID+"/enable", nil), "/admin/services")
}

func TestKeyPairs(t *testing.T) {
	e := newComputeEnv(t)
	pa := e.createProject("proj-a")
	e.createMember("alice", "alice-Secret-1", pa)
	c := e.client()
	c.login("alice", "alice-Secret-1")

	r := c.get("/project/key-pairs")
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, "No key pairs yet")
	wantStatus(t, c.get("/project/key-pairs", hx), http.StatusOK)
	r = c.get("/project/key-pairs/new", hxTargetModal)
	wantContains(t, r, "data-download", "Create and download")

	// Create: the private key comes back once, as a download.
	r = c.post("/project/key-pairs", url.Values{"name": {"laptop"}})
	wantStatus(t, r, http.StatusOK)
	if cd := r.header.Get("Content-Disposition"); cd != `attachment; filename="laptop.pem"` {
		t.Fatalf("Content-Disposition %q", cd)
	}
	wantContains(t, r, "PRIVATE KEY")
	kp, err := e.comp.GetKeypair(e.userCtx("alice", "alice-Secret-1", pa.ID), "", "laptop")
	if err != nil || kp.PrivateKey != "" {
		t.Fatalf("stored key pair %+v %v", kp, err)
	}
	// Again: a conflict in the form, no key.
	r = c.post("/project/key-pairs", url.Values{"name": {"laptop"}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantNotContains(t, r, "PRIVATE KEY")
	wantContains(t, r, "alert-error")
	wantContains(t, c.get("/project/key-pairs"), "laptop", kp.Fingerprint)

	// Import a public key.
	r = c.post("/project/key-pairs/import", url.Values{"name": {"desk"}, "public_key": {kp.PublicKey}}, hx)
	wantHXDone(t, r, "/project/key-pairs", "desk")
	r = c.post("/project/key-pairs/import", url.Values{"name": {"bad"}, "public_key": {"ssh-rsa nope"}}, hx)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, "alert-error")

	// The launch form offers them.
	wantContains(t, c.get("/project/instances/new", hxTargetModal), `value="laptop"`, `value="desk"`)

	// Delete with confirmation.
	wantContains(t, c.get("/project/key-pairs/desk/delete", hxTargetModal), "Delete key pair", "desk")
	wantRedirect(t, c.post("/project/key-pairs/desk/delete", nil), "/project/key-pairs")
	wantNotContains(t, c.get("/project/key-pairs"), ">desk<")

	// CSRF.
	wantStatus(t, c.post("/project/key-pairs", url.Values{"name": {"x"}, "csrf_token": {"forged"}}), http.StatusForbidden)
}

// multipartUpload builds the upload form; the file comes last.
func multipartUpload(t *testing.T, csrf string, fields map[string]string, data []byte) (io.Reader, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if csrf != "" {
		_ = mw.WriteField("csrf_token", csrf)
	}
	for _, k := range []string{"name", "disk_format", "visibility"} {
		if v, ok := fields[k]; ok {
			_ = mw.WriteField(k, v)
		}
	}
	fw, err := mw.CreateFormFile("file", "disk.qcow2")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = fw.Write(data)
	_ = mw.Close()
	return &buf, mw.FormDataContentType()
}

func TestImages(t *testing.T) {
	e := newComputeEnv(t)
	pa := e.createProject("proj-a")
	e.createMember("alice", "alice-Secret-1", pa)
	c := e.client()
	c.login("alice", "alice-Secret-1")
	disk := qcow2(t)

	r := c.get("/project/images")
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, "cirros", "public", "qcow2", "/project/instances/new?image="+e.imageID)
	wantNotContains(t, r, "/project/images/"+e.imageID+"/delete") // not hers
	wantStatus(t, c.get("/project/images", hx), http.StatusOK)
	r = c.get("/project/images/new", hxTargetModal)
	wantContains(t, r, `enctype="multipart/form-data"`, "upload-progress", `value="private"`)
	wantNotContains(t, r, `value="public"`)

	// Upload without the CSRF token: refused before anything is stored.
	body, ct := multipartUpload(t, "", map[string]string{"name": "nope", "disk_format": "qcow2", "visibility": "private"}, disk)
	r = c.do(http.MethodPost, "/project/images", body, header("Content-Type", ct))
	wantStatus(t, r, http.StatusForbidden)

	// A plain upload with the form's token.
	body, ct = multipartUpload(t, c.csrf, map[string]string{"name": "mine", "disk_format": "qcow2", "visibility": "private"}, disk)
	r = c.do(http.MethodPost, "/project/images", body, header("Content-Type", ct))
	wantRedirect(t, r, "/project/images")
	r = c.get("/project/images")
	wantContains(t, r, "mine", "status-active", "private")

	// An htmx upload (token in the header) of data that is not qcow2 fails
	// inline and leaves nothing behind.
	body, ct = multipartUpload(t, "", map[string]string{"name": "junk", "disk_format": "qcow2", "visibility": "private"}, []byte("not an image"))
	r = c.do(http.MethodPost, "/project/images", body, header("Content-Type", ct), header("X-CSRF-Token", c.csrf), hxTarget2("image-upload"))
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, "alert-error")
	// Public needs admin.
	body, ct = multipartUpload(t, "", map[string]string{"name": "pub", "disk_format": "qcow2", "visibility": "public"}, disk)
	r = c.do(http.MethodPost, "/project/images", body, header("Content-Type", ct), header("X-CSRF-Token", c.csrf), hxTarget2("image-upload"))
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, "Only administrators")

	actx := e.userCtx("alice", "alice-Secret-1", pa.ID)
	imgs, _, err := e.imgs.ListImages(actx, image.ListFilter{Owner: pa.ID})
	if err != nil || len(imgs) != 1 || imgs[0].Name != "mine" || imgs[0].Status != "active" {
		t.Fatalf("images %+v %v", imgs, err)
	}
	id := imgs[0].ID

	// Edit, then delete with confirmation.
	wantContains(t, c.get("/project/images/"+id+"/edit", hxTargetModal), "Edit image", "mine")
	wantHXDone(t, c.post("/project/images/"+id, url.Values{"name": {"mine2"}, "visibility": {"shared"}}, hx), "/project/images", "mine2")
	r = c.post("/project/images/"+id, url.Values{"name": {"mine2"}, "visibility": {"public"}}, hx)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	// The Launch button preselects the image.
	wantContains(t, c.get("/project/instances/new?image="+id, hxTargetModal), `value="`+id+`" selected`)
	wantContains(t, c.get("/project/images/"+id+"/delete", hxTargetModal), "Delete image", "mine2")
	wantHXDone(t, c.post("/project/images/"+id+"/delete", nil, hx), "/project/images", "Image deleted.")
	if _, err := e.imgs.GetImage(actx, id); !fault.Is(err, fault.NotFound) {
		t.Fatalf("image still there: %v", err)
	}
	// Another project's image answers 404.
	wantStatus(t, c.get("/project/images/"+e.imageID+"/delete"), http.StatusOK) // public: visible
	wantStatus(t, c.post("/project/images/"+e.imageID+"/delete", nil), http.StatusForbidden)
}

// TestComputeAbsent: without the services the pages and links are gone.
func TestComputeAbsent(t *testing.T) {
	e := newEnv(t)
	c := e.adminClient()
	r := c.get("/project/overview")
	wantNotContains(t, r, `href="/project/instances"`, `href="/admin/hypervisors"`, `href="/project/images"`)
	wantStatus(t, c.get("/project/instances"), http.StatusNotFound)
	wantStatus(t, c.get("/project/images"), http.StatusNotFound)
}

// A row in transition polls itself until it settles.
func TestInstanceRowPolls(t *testing.T) {
	row := views.InstanceRow{ID: "abc", Name: "n", Status: "ACTIVE", TaskState: "powering-off", Back: views.InstancesURL}
	var b bytes.Buffer
	if err := views.InstanceRowView(row, false).Render(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`hx-get="/project/instances/abc/row?back=%2Fproject%2Finstances"`, `hx-trigger="every 3s"`, `id="instance-abc"`} {
		if !strings.Contains(b.String(), want) {
			t.Fatalf("row lacks %q:\n%s", want, b.String())
		}
	}
	row.TaskState = ""
	b.Reset()
	_ = views.InstanceRowView(row, false).Render(context.Background(), &b)
	if strings.Contains(b.String(), "every 3s") {
		t.Fatalf("settled row polls:\n%s", b.String())
	}
}

func TestSafeBack(t *testing.T) {
	for in, want := range map[string]string{
		"/project/instances":            "/project/instances",
		"/admin/instances":              "/admin/instances",
		"/project/instances/abc":        "/project/instances/abc",
		"//evil.example/x":              "/project/instances",
		"https://evil.example/":         "/project/instances",
		"/project/instances//evil.com":  "/project/instances",
		"/project/instances/a?x=1":      "/project/instances",
		"/project/instances/\\evil.com": "/project/instances",
		"":                              "/project/instances",
	} {
		if got := safeBack(in); got != want {
			t.Errorf("safeBack(%q) = %q, want %q", in, got, want)
		}
	}
}

// The launch form says when the chosen flavor is too small for the image.
func TestLaunchFlavorHint(t *testing.T) {
	e := newComputeEnv(t)
	actx := e.adminCtx()
	im, err := e.imgs.CreateImage(actx, image.Image{Name: "big", Visibility: "public", DiskFormat: "qcow2", ContainerFormat: "bare", MinDisk: 5, MinRAM: 1024})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.imgs.Upload(actx, im.ID, bytes.NewReader(qcow2(t)), -1); err != nil {
		t.Fatal(err)
	}
	c := e.adminClient()
	r := c.get("/project/instances/new?image="+im.ID+"&flavor="+e.tiny, hxTarget2("launch-form"))
	wantStatus(t, r, http.StatusOK)
	if isFullPage(r.body) || !strings.HasPrefix(strings.TrimSpace(r.body), "<form") {
		t.Fatalf("re-render is not the form alone:\n%s", r.body)
	}
	wantContains(t, r, "Flavor m1.tiny is too small", "1024 MiB of RAM", "5 GiB disk", "(too small for the image)")
	r = c.post("/project/instances", url.Values{"name": {"x"}, "count": {"1"}, "image": {im.ID}, "flavor": {e.tiny}}, hxTarget2("launch-form"))
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, "Flavor m1.tiny is too small", `aria-invalid="true"`)
}

// TestResizeAndRebuild: the row offers resize and rebuild on a settled
// instance; the resize dialog lists the other flavors and refuses a missing
// choice or a shrink inline; a resized instance offers confirm and revert,
// which end the resize; rebuild asks for an image, renames the instance and
// rebuilds it.
func TestResizeAndRebuild(t *testing.T) {
	e := newComputeEnv(t)
	pa := e.createProject("proj-a")
	e.createMember("alice", "alice-Secret-1", pa)
	alice := e.client()
	alice.login("alice", "alice-Secret-1")
	actx := e.userCtx("alice", "alice-Secret-1", pa.ID)
	id := e.bootActive(actx, "grow")
	base := "/project/instances/" + id
	wantContains(t, alice.get("/project/instances"), base+"/resize?back=", base+"/rebuild?back=")

	r := alice.get(base+"/resize?back=/project/instances", hxTargetModal)
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, "Resize instance", "Now: <strong>m1.tiny — 1 vCPU, 128 MiB RAM, 1 GiB disk</strong>", "m1.small")
	wantNotContains(t, r, `value="`+e.tiny+`"`)
	r = alice.post(base+"/resize", url.Values{"back": {"/project/instances"}}, hxTargetModal)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, "Choose the flavor to resize to.")

	small, err := e.comp.ListFlavors(e.adminCtx(), compute.FlavorFilter{Name: "m1.small"})
	if err != nil || len(small) != 1 {
		t.Fatalf("m1.small %v %v", small, err)
	}
	r = alice.post(base+"/resize", url.Values{"back": {"/project/instances"}, "flavor": {small[0].ID}}, hxTargetModal)
	wantHXDone(t, r, "/project/instances", "Resizing")
	e.waitStatus(id, "VERIFY_RESIZE")
	list := alice.get("/project/instances")
	wantContains(t, list, base+"/confirm-resize", base+"/revert-resize", "m1.small")
	wantNotContains(t, list, base+"/resize?back=")

	// Revert: back on m1.tiny; resize again and confirm: on m1.small.
	wantRedirect(t, alice.post(base+"/revert-resize", url.Values{"back": {"/project/instances"}}), "/project/instances")
	e.waitStatus(id, "ACTIVE")
	if srv, _ := e.comp.GetServer(actx, id); srv.Flavor.Name != "m1.tiny" {
		t.Fatalf("after revert the flavor is %s", srv.Flavor.Name)
	}
	wantHXDone(t, alice.post(base+"/resize", url.Values{"flavor": {small[0].ID}}, hxTargetModal), "/project/instances", "Resizing")
	e.waitStatus(id, "VERIFY_RESIZE")
	r = alice.post(base+"/confirm-resize", url.Values{"back": {"/project/instances"}}, hxTarget2("instance-"+id))
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, `<tr id="instance-`+id+`"`)
	e.waitStatus(id, "ACTIVE")
	if srv, _ := e.comp.GetServer(actx, id); srv.Flavor.Name != "m1.small" {
		t.Fatalf("after confirm the flavor is %s", srv.Flavor.Name)
	}
	// Back down to m1.tiny would shrink the disk: refused in the dialog.
	r = alice.post(base+"/resize", url.Values{"flavor": {e.tiny}}, hxTargetModal)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, `class="alert alert-error"`, "Unable to resize disk down.")

	// Rebuild: the dialog offers the image, a missing one is refused, then
	// the instance is rebuilt under a new name.
	r = alice.get(base+"/rebuild?back="+url.QueryEscape(base), hxTargetModal)
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, "Rebuild instance", "cirros", `value="`+e.imageID+`" selected`, `value="grow"`, "what was on it is lost")
	r = alice.post(base+"/rebuild", url.Values{"back": {base}, "name": {"grown"}}, hxTargetModal)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, "Choose the image to rebuild from.")
	r = alice.post(base+"/rebuild", url.Values{"back": {base}, "name": {"grown"}, "image": {e.imageID}}, hxTargetModal)
	wantHXDone(t, r, base, "Rebuilding")
	e.waitStatus(id, "ACTIVE")
	srv, err := e.comp.GetServer(actx, id)
	if err != nil || srv.Name != "grown" {
		t.Fatalf("rebuilt server %+v %v", srv, err)
	}
	wantContains(t, alice.get(base+"?tab=actions", hx), "rebuild", "resize", "confirmResize", "revertResize")

	// A reader is offered neither and is refused both.
	e.createReader("carol", "carol-Secret-1", pa)
	carol := e.client()
	carol.login("carol", "carol-Secret-1")
	wantNotContains(t, carol.get("/project/instances"), base+"/resize", base+"/rebuild")
	wantStatus(t, carol.post(base+"/resize", url.Values{"flavor": {e.tiny}}, hxTargetModal), http.StatusForbidden)
	wantStatus(t, carol.post(base+"/rebuild", url.Values{"name": {"x"}, "image": {e.imageID}}, hxTargetModal), http.StatusForbidden)
	if srv, _ := e.comp.GetServer(actx, id); srv.Name != "grown" || srv.Flavor.Name != "m1.small" {
		t.Fatalf("the reader changed the server: %+v", srv)
	}
}

// TestFlavorAccess: a private flavor is shared with a project from its
// access dialog, which the project's member can then launch with, and taken
// back; a member can neither open the dialog nor change it.
func TestFlavorAccess(t *testing.T) {
	e := newComputeEnv(t)
	pa := e.createProject("proj-a")
	e.createProject("proj-b")
	e.createMember("alice", "alice-Secret-1", pa)
	admin, alice := e.adminClient(), e.client()
	alice.login("alice", "alice-Secret-1")
	actx := e.userCtx("alice", "alice-Secret-1", pa.ID)
	fl, err := e.comp.CreateFlavor(e.adminCtx(), compute.Flavor{Name: "gold", VCPUs: 1, MemoryMB: 128, RootGB: 1})
	if err != nil {
		t.Fatal(err)
	}
	visible := func() bool {
		fs, err := e.comp.ListFlavors(actx, compute.FlavorFilter{})
		if err != nil {
			t.Fatal(err)
		}
		return slices.ContainsFunc(fs, func(f compute.Flavor) bool { return f.ID == fl.ID })
	}
	dialog := "/admin/flavors/" + fl.ID + "/access"
	list := admin.get("/admin/flavors")
	wantContains(t, list, "No, 0 projects", `href="`+dialog+`"`)

	r := admin.get(dialog, hxTargetModal)
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, `id="flavor-access"`, "gold", "No project yet", ">proj-a</option>", ">proj-b</option>")
	r = admin.post(dialog, url.Values{}, hx)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, "Choose the project to share the flavor with.")
	if visible() {
		t.Fatal("alice sees the private flavor before it is shared")
	}

	r = admin.post(dialog, url.Values{"project": {pa.ID}}, hx)
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, `<span class="break">proj-a</span>`, "Remove proj-a")
	wantNotContains(t, r, ">proj-a</option>")
	if !visible() {
		t.Fatal("alice does not see the flavor shared with her project")
	}
	wantContains(t, admin.get("/admin/flavors"), "No, 1 project")
	// Sharing twice is refused in the dialog.
	r = admin.post(dialog, url.Values{"project": {pa.ID}}, hx)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, `class="alert alert-error"`)

	// A member may not look or change.
	wantStatus(t, alice.get(dialog, hxTargetModal), http.StatusForbidden)
	wantStatus(t, alice.post(dialog+"/remove", url.Values{"project": {pa.ID}}, hx), http.StatusForbidden)
	if !visible() {
		t.Fatal("the member's removal took effect")
	}

	r = admin.post(dialog+"/remove", url.Values{"project": {pa.ID}}, hx)
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, "No project yet")
	if visible() {
		t.Fatal("alice still sees the flavor after its access was removed")
	}
	// A public flavor has no access list.
	wantStatus(t, admin.get("/admin/flavors/"+e.tiny+"/access", hxTargetModal), http.StatusNotFound)
}
