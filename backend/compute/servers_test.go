package compute_test

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/nimbus-cloud/nimbus/agents/agentapi"
	"github.com/nimbus-cloud/nimbus/backend/compute"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// action posts a server action and checks its status.
func (e *env) action(u user, id string, body any, status int, headers ...string) *resp {
	e.t.Helper()
	return e.do("POST", "/servers/"+id+"/action", u.Token, body, headers...).want(status)
}

func TestServerLifecycle(t *testing.T) {
	e := newEnv(t)
	ag := e.agent("node1", 8, 16384, 200)
	line, _ := ed25519Line(t)
	e.do("POST", "/os-keypairs", e.alice.Token, map[string]any{"keypair": map[string]any{"name": "k", "public_key": line}}).want(http.StatusOK)

	ud := base64.StdEncoding.EncodeToString([]byte("#!/bin/sh\necho hi\n"))
	id := e.boot(e.alice, "web 1", "1", map[string]any{"key_name": "k", "user_data": ud, "config_drive": true,
		"metadata": map[string]any{"role": "web"}, "networks": "none", "availability_zone": "nova"}, microversion("2.37")...)
	srv := e.waitStatus(e.alice, id, "ACTIVE")
	if srv.PowerState != agentapi.PowerRunning || srv.Node != "node1" || srv.LaunchedAt == nil || srv.Hostname != "web-1" {
		t.Fatalf("active server %+v", srv)
	}
	spec, ok := ag.Fake.Spec(id)
	if !ok || spec.VCPUs != 1 || spec.MemoryMB != 128 || spec.RootGB != 1 || spec.Image.ID != e.image || spec.ConfigDrive == nil {
		t.Fatalf("agent spec %+v", spec)
	}
	if md := string(spec.ConfigDrive.Files["openstack/latest/meta_data.json"]); !strings.Contains(md, line) || !strings.Contains(md, `"role":"web"`) {
		t.Fatalf("config drive metadata %s", md)
	}
	if string(spec.ConfigDrive.Files["openstack/latest/user_data"]) != "#!/bin/sh\necho hi\n" {
		t.Fatalf("config drive user data %q", spec.ConfigDrive.Files["openstack/latest/user_data"])
	}

	// The API view: admin-only attributes for the admin only.
	r := e.do("GET", "/servers/"+id, e.alice.Token, nil, microversion("2.79")...).want(http.StatusOK)
	s := r.obj("server")
	if s["status"] != "ACTIVE" || s["OS-EXT-STS:vm_state"] != "active" || s["OS-EXT-STS:power_state"] != 1.0 ||
		s["key_name"] != "k" || s["locked"] != false || s["OS-EXT-SRV-ATTR:host"] != nil || s["host_status"] != nil ||
		s["flavor"].(map[string]any)["original_name"] != "m1.tiny" || s["hostId"] == "" {
		t.Fatalf("server as member %v", s)
	}
	r = e.do("GET", "/servers/"+id, e.admin.Token, nil, microversion("2.79")...).want(http.StatusOK)
	s = r.obj("server")
	if s["OS-EXT-SRV-ATTR:host"] != "node1" || s["host_status"] != "UP" || s["OS-EXT-SRV-ATTR:user_data"] != ud {
		t.Fatalf("server as admin %v", s)
	}

	steps := []struct {
		name   string
		body   any
		status int
		want   string
	}{
		{"stop", map[string]any{"os-stop": nil}, http.StatusAccepted, "SHUTOFF"},
		{"start", map[string]any{"os-start": nil}, http.StatusAccepted, "ACTIVE"},
		{"soft reboot", map[string]any{"reboot": map[string]any{"type": "SOFT"}}, http.StatusAccepted, "ACTIVE"},
		{"hard reboot", map[string]any{"reboot": map[string]any{"type": "hard"}}, http.StatusAccepted, "ACTIVE"},
		{"pause", map[string]any{"pause": nil}, http.StatusAccepted, "PAUSED"},
		{"unpause", map[string]any{"unpause": nil}, http.StatusAccepted, "ACTIVE"},
		{"suspend", map[string]any{"suspend": nil}, http.StatusAccepted, "SUSPENDED"},
		{"resume", map[string]any{"resume": nil}, http.StatusAccepted, "ACTIVE"},
		{"resize", map[string]any{"resize": map[string]any{"flavorRef": "2"}}, http.StatusAccepted, "VERIFY_RESIZE"},
		{"confirm", map[string]any{"confirmResize": nil}, http.StatusNoContent, "ACTIVE"},
		{"resize again", map[string]any{"resize": map[string]any{"flavorRef": "3"}}, http.StatusAccepted, "VERIFY_RESIZE"},
		{"revert", map[string]any{"revertResize": nil}, http.StatusAccepted, "ACTIVE"},
	}
	for _, st := range steps {
		e.action(e.alice, id, st.body, st.status)
		srv = e.waitStatus(e.alice, id, st.want)
		t.Logf("%s: %s", st.name, srv.Status())
	}
	if srv.Flavor.Name != "m1.small" || srv.OldFlavor != nil {
		t.Fatalf("after confirm then revert: flavor %+v old %+v", srv.Flavor, srv.OldFlavor)
	}
	if spec, _ := ag.Fake.Spec(id); spec.MemoryMB != 2048 {
		t.Fatalf("agent spec after revert %+v", spec)
	}
	allocs, err := e.svc.Scheduler().Allocations(e.admin.Ctx)
	if err != nil || len(allocs) != 1 || allocs[0].MemoryMB != 2048 || allocs[0].DiskGB != 20 {
		t.Fatalf("allocations after resize round trip %+v %v", allocs, err)
	}

	// State checks answer 409 with Nova's message.
	r = e.action(e.alice, id, map[string]any{"os-start": nil}, http.StatusConflict)
	if want := "Cannot 'start' instance " + id + " while it is in vm_state active"; r.faultMsg() != want {
		t.Fatalf("conflict message %q, want %q", r.faultMsg(), want)
	}
	e.action(e.alice, id, map[string]any{"confirmResize": nil}, http.StatusConflict)
	e.action(e.alice, id, map[string]any{"resize": map[string]any{"flavorRef": "2"}}, http.StatusBadRequest) // same flavor
	e.action(e.alice, id, map[string]any{"resize": map[string]any{"flavorRef": "1"}}, http.StatusBadRequest) // disk down
	e.action(e.alice, id, map[string]any{"reboot": map[string]any{"type": "gentle"}}, http.StatusBadRequest)
	e.action(e.alice, id, map[string]any{"frobnicate": nil}, http.StatusNotFound)

	// Lock: the owner's actions are refused, the admin's are not.
	e.action(e.alice, id, map[string]any{"lock": map[string]any{"locked_reason": "maintenance"}}, http.StatusAccepted, microversion("2.73")...)
	r = e.action(e.alice, id, map[string]any{"os-stop": nil}, http.StatusConflict)
	if r.faultMsg() != "Instance "+id+" is locked" {
		t.Fatalf("locked message %q", r.faultMsg())
	}
	e.do("DELETE", "/servers/"+id, e.alice.Token, nil).want(http.StatusConflict)
	r = e.do("GET", "/servers/"+id, e.alice.Token, nil, microversion("2.73")...).want(http.StatusOK)
	if s := r.obj("server"); s["locked"] != true || s["locked_reason"] != "maintenance" {
		t.Fatalf("locked view %v", s)
	}
	e.action(e.admin, id, map[string]any{"os-stop": nil}, http.StatusAccepted)
	e.waitStatus(e.alice, id, "SHUTOFF")
	e.action(e.alice, id, map[string]any{"unlock": nil}, http.StatusAccepted)
	e.action(e.alice, id, map[string]any{"os-start": nil}, http.StatusAccepted)
	e.waitStatus(e.alice, id, "ACTIVE")

	// Rebuild from another image keeps the server and changes its image.
	img2 := e.images.add(compute.ImageInfo{ID: "debian", Name: "debian", Size: 300 << 20})
	r = e.action(e.alice, id, map[string]any{"rebuild": map[string]any{"imageRef": img2, "name": "web-rebuilt"}}, http.StatusAccepted)
	if s := r.obj("server"); s["status"] != "REBUILD" || s["adminPass"] == "" || s["name"] != "web-rebuilt" {
		t.Fatalf("rebuild answer %v", s)
	}
	srv = e.waitStatus(e.alice, id, "ACTIVE")
	if srv.ImageRef != img2 {
		t.Fatalf("image after rebuild %s", srv.ImageRef)
	}
	if spec, _ := ag.Fake.Spec(id); spec.Image.ID != img2 {
		t.Fatalf("agent image after rebuild %+v", spec.Image)
	}

	// Snapshot: a queued image owned by the project, Location at 2.1.
	r = e.action(e.alice, id, map[string]any{"createImage": map[string]any{"name": "snap", "metadata": map[string]any{"k": "v"}}}, http.StatusAccepted)
	loc := r.header.Get("Location")
	imgID := loc[strings.LastIndex(loc, "/")+1:]
	im, ok := e.images.get(imgID)
	if !ok || im.Name != "snap" || im.Properties["instance_uuid"] != id || im.Properties["k"] != "v" || im.Properties["image_type"] != "snapshot" {
		t.Fatalf("snapshot image %q %+v", loc, im)
	}
	e.waitStatus(e.alice, id, "ACTIVE")
	r = e.action(e.alice, id, map[string]any{"createImage": map[string]any{"name": "snap2"}}, http.StatusAccepted, microversion("2.45")...)
	if r.body["image_id"] == nil {
		t.Fatalf("createImage at 2.45 %s", r.raw)
	}
	e.waitStatus(e.alice, id, "ACTIVE")

	// Console output and a VNC console token, single use.
	r = e.action(e.alice, id, map[string]any{"os-getConsoleOutput": map[string]any{"length": 1}}, http.StatusOK)
	if r.body["output"] != "nimbus-guest: ready\n" {
		t.Fatalf("console output %q", r.body["output"])
	}
	r = e.do("POST", "/servers/"+id+"/remote-consoles", e.alice.Token,
		map[string]any{"remote_console": map[string]any{"protocol": "vnc", "type": "novnc"}}, microversion("2.6")...).want(http.StatusOK)
	u := r.obj("remote_console")["url"].(string)
	if !strings.HasPrefix(u, e.srv.URL+"/console/vnc_lite.html?path=") {
		t.Fatalf("console URL %s", u)
	}
	pu, _ := url.Parse(u)
	path := pu.Query().Get("path")
	tok := path[strings.Index(path, "token=")+len("token="):]
	tgt, err := e.svc.ConsumeConsoleToken(e.admin.Ctx, tok)
	if err != nil || tgt.InstanceUUID != id || tgt.HostID != ag.ID {
		t.Fatalf("consume token: %+v %v", tgt, err)
	}
	if _, err := e.svc.ConsumeConsoleToken(e.admin.Ctx, tok); !fault.Is(err, fault.Unauthorized) {
		t.Fatalf("second use of a console token: %v", err)
	}
	r = e.action(e.alice, id, map[string]any{"os-getVNCConsole": map[string]any{"type": "novnc"}}, http.StatusOK)
	if r.obj("console")["type"] != "novnc" {
		t.Fatalf("legacy console %s", r.raw)
	}
	e.do("POST", "/servers/"+id+"/remote-consoles", e.alice.Token,
		map[string]any{"remote_console": map[string]any{"protocol": "spice", "type": "spice-html5"}}, microversion("2.6")...).want(http.StatusBadRequest)

	// Metadata.
	e.do("POST", "/servers/"+id+"/metadata", e.alice.Token, map[string]any{"metadata": map[string]any{"a": "1"}}).want(http.StatusOK)
	e.do("PUT", "/servers/"+id+"/metadata/b", e.alice.Token, map[string]any{"meta": map[string]any{"b": "2"}}).want(http.StatusOK)
	r = e.do("GET", "/servers/"+id+"/metadata", e.alice.Token, nil).want(http.StatusOK)
	if md := r.obj("metadata"); len(md) != 3 || md["role"] != "web" || md["b"] != "2" {
		t.Fatalf("metadata %v", md)
	}
	e.do("DELETE", "/servers/"+id+"/metadata/a", e.alice.Token, nil).want(http.StatusNoContent)
	e.do("GET", "/servers/"+id+"/metadata/a", e.alice.Token, nil).want(http.StatusNotFound)
	r = e.do("PUT", "/servers/"+id+"/metadata", e.alice.Token, map[string]any{"metadata": map[string]any{"only": "this"}}).want(http.StatusOK)
	if md := r.obj("metadata"); len(md) != 1 {
		t.Fatalf("replaced metadata %v", md)
	}

	// Update the name.
	r = e.do("PUT", "/servers/"+id, e.alice.Token, map[string]any{"server": map[string]any{"name": "renamed"}}).want(http.StatusOK)
	if r.obj("server")["name"] != "renamed" {
		t.Fatalf("rename %s", r.raw)
	}

	// The action log: every action with its events, newest first.
	r = e.do("GET", "/servers/"+id+"/os-instance-actions", e.alice.Token, nil).want(http.StatusOK)
	acts := r.list("instanceActions")
	if acts[len(acts)-1]["action"] != "create" || acts[0]["action"] != "createImage" {
		t.Fatalf("actions %v", acts)
	}
	var stopReq string
	for _, a := range acts {
		if a["action"] == "stop" {
			stopReq = a["request_id"].(string)
			break
		}
	}
	r = e.do("GET", "/servers/"+id+"/os-instance-actions/"+stopReq, e.alice.Token, nil, microversion("2.62")...).want(http.StatusOK)
	evs := r.obj("instanceAction")["events"].([]any)
	ev := evs[0].(map[string]any)
	if ev["event"] != "compute_stop_instance" || ev["result"] != "Success" || ev["finish_time"] == nil {
		t.Fatalf("stop events %v", evs)
	}
	createReq := acts[len(acts)-1]["request_id"].(string)
	r = e.do("GET", "/servers/"+id+"/os-instance-actions/"+createReq, e.admin.Token, nil, microversion("2.62")...).want(http.StatusOK)
	if evs := r.obj("instanceAction")["events"].([]any); len(evs) != 2 || evs[1].(map[string]any)["host"] != "node1" {
		t.Fatalf("create events %v", evs)
	}

	// Delete: the server disappears, the agent destroys it, claims go.
	e.do("DELETE", "/servers/"+id, e.alice.Token, nil).want(http.StatusNoContent)
	e.waitGone(e.alice, id)
	eventually(t, 10*e.timeUnit(), func() bool { _, ok := ag.Fake.Spec(id); return !ok }, "agent to destroy %s", id)
	if allocs, _ := e.svc.Scheduler().Allocations(e.admin.Ctx); len(allocs) != 0 {
		t.Fatalf("allocations after delete %+v", allocs)
	}
	e.do("GET", "/servers/"+id, e.alice.Token, nil).want(http.StatusNotFound)
	// Admins can still read a deleted server's actions.
	e.do("GET", "/servers/"+id+"/os-instance-actions", e.admin.Token, nil).want(http.StatusOK)
}
