package compute_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nimbus-cloud/nimbus/agents/agenttest"
	"github.com/nimbus-cloud/nimbus/agents/fake"
	"github.com/nimbus-cloud/nimbus/backend/compute"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

func TestCreateServerBadInput(t *testing.T) {
	e := newEnvWith(t, envOptions{quotas: compute.QuotaLimits{compute.QuotaCores: 2, compute.QuotaMetadataItems: 2}})
	e.agent("node1", 8, 16384, 200)
	big := e.images.add(compute.ImageInfo{ID: "big", Name: "big", Size: 2 << 30})
	hungry := e.images.add(compute.ImageInfo{ID: "hungry", Name: "hungry", Size: 1 << 20, MinRAMMB: 4096})
	queued := e.images.add(compute.ImageInfo{ID: "queued", Name: "queued", Status: "queued"})
	server := func(kv ...any) map[string]any {
		s := map[string]any{"name": "s", "imageRef": e.image, "flavorRef": "1"}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(s, kv[i].(string))
				continue
			}
			s[kv[i].(string)] = kv[i+1]
		}
		return map[string]any{"server": s}
	}
	cases := []struct {
		name    string
		body    any
		headers []string
		status  int
		msg     string
	}{
		{"unknown flavor", server("flavorRef", "nope"), nil, 400, "Flavor nope could not be found."},
		{"unknown image", server("imageRef", "nope"), nil, 400, "Can not find requested image"},
		{"image not active", server("imageRef", queued), nil, 400, "Image queued is not active."},
		{"image larger than flavor disk", server("imageRef", big), nil, 400, "Flavor's disk is too small for requested image."},
		{"image needs more RAM", server("imageRef", hungry), nil, 400, "Flavor's memory is too small for requested image."},
		{"no name", server("name", nil), nil, 400, "'name' is a required property"},
		{"no flavor", server("flavorRef", nil), nil, 400, "'flavorRef' is a required property"},
		{"bad user data", server("user_data", "***"), nil, 400, "User data needs to be valid base 64."},
		{"user data too large", server("user_data", strings.Repeat("QUFB", 20000)), nil, 400, "User data too large."},
		{"unknown key", server("key_name", "nope"), nil, 400, "Invalid key_name provided."},
		{"unknown zone", server("availability_zone", "mars"), nil, 400, "The requested availability zone is not available"},
		{"forced host for members", server("availability_zone", "nova:node1"), nil, 403, "Policy doesn't allow"},
		{"min over max", server("min_count", 3, "max_count", 2), nil, 400, "min_count must be <= max_count"},
		{"networks required at 2.37", server(), microversion("2.37"), 400, "'networks' is a required property"},
		{"bad networks", server("networks", "some"), nil, 400, "networks"},
		{"too much metadata", server("metadata", map[string]any{"a": "1", "b": "2", "c": "3"}), nil, 403, "Quota exceeded for metadata_items"},
		{"cores quota", server("flavorRef", "3", "min_count", 2), nil, 403, "Quota exceeded for cores: Requested 4, but already used 0 of 2 cores"},
		{"malformed json", `{"server": {"name": `, nil, 400, "Malformed"},
		{"not an object", `[1, 2]`, nil, 400, ""},
		{"unsupported microversion", server(), microversion("2.200"), 406, "Version 2.200 is not supported by the API. Minimum is 2.1 and maximum is 2.79."},
		{"malformed microversion", server(), microversion("two"), 400, "API Version String two is of invalid format."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.do("POST", "/servers", e.alice.Token, c.body, c.headers...).want(c.status)
			if !strings.Contains(r.faultMsg(), c.msg) {
				t.Fatalf("message %q, want it to contain %q", r.faultMsg(), c.msg)
			}
		})
	}
	// Nova's exact cores message when only cores run out.
	e.boot(e.alice, "two-cores", "3", nil)
	r := e.do("POST", "/servers", e.alice.Token, server("flavorRef", "1")).want(http.StatusForbidden)
	if want := "Quota exceeded for cores: Requested 1, but already used 2 of 2 cores"; r.faultMsg() != want {
		t.Fatalf("quota message %q, want %q", r.faultMsg(), want)
	}
	if srvs, _ := e.svc.ListServers(e.alice.Ctx, compute.ServerFilter{}); len(srvs) != 1 {
		t.Fatalf("failed creates left servers behind: %d", len(srvs))
	}
}

func TestOtherProjectsServerIsNotFound(t *testing.T) {
	e := newEnv(t)
	e.agent("node1", 8, 16384, 200)
	id := e.boot(e.alice, "mine", "1", nil)
	e.waitStatus(e.alice, id, "ACTIVE")
	for _, c := range []struct{ method, path string }{
		{"GET", "/servers/" + id},
		{"PUT", "/servers/" + id},
		{"DELETE", "/servers/" + id},
		{"POST", "/servers/" + id + "/action"},
		{"GET", "/servers/" + id + "/metadata"},
		{"GET", "/servers/" + id + "/os-instance-actions"},
	} {
		var body any
		switch c.method {
		case "PUT":
			body = map[string]any{"server": map[string]any{"name": "x"}}
		case "POST":
			body = map[string]any{"os-stop": nil}
		}
		r := e.do(c.method, c.path, e.bob.Token, body).want(http.StatusNotFound)
		if r.faultMsg() != "Instance "+id+" could not be found." || r.body["itemNotFound"] == nil {
			t.Fatalf("%s %s: %s", c.method, c.path, r.raw)
		}
	}
	// Bob's list does not show it, even asking for all tenants.
	r := e.do("GET", "/servers?all_tenants=1", e.bob.Token, nil).want(http.StatusOK)
	if len(r.list("servers")) != 0 {
		t.Fatalf("bob lists %s", r.raw)
	}
	// The admin sees it with all_tenants, and filters by host.
	r = e.do("GET", "/servers/detail?all_tenants=1&host=node1", e.admin.Token, nil).want(http.StatusOK)
	if l := r.list("servers"); len(l) != 1 || l[0]["id"] != id {
		t.Fatalf("admin lists %s", r.raw)
	}
	// No token at all is 401 with the Keystone hint.
	r = e.do("GET", "/servers", "", nil).want(http.StatusUnauthorized)
	if !strings.Contains(r.header.Get("WWW-Authenticate"), "Keystone uri=") {
		t.Fatalf("401 without WWW-Authenticate: %v", r.header)
	}
}

func TestListServersFilters(t *testing.T) {
	e := newEnv(t)
	e.agent("node1", 8, 16384, 200)
	before := time.Now().UTC().Add(-time.Second)
	var ids []string
	for _, n := range []string{"alpha-1", "alpha-2", "beta"} {
		ids = append(ids, e.boot(e.alice, n, "1", nil))
	}
	for _, id := range ids {
		e.waitStatus(e.alice, id, "ACTIVE")
	}
	e.action(e.alice, ids[2], map[string]any{"os-stop": nil}, http.StatusAccepted)
	e.waitStatus(e.alice, ids[2], "SHUTOFF")
	count := func(q string, headers ...string) int {
		return len(e.do("GET", "/servers/detail"+q, e.alice.Token, nil, headers...).want(http.StatusOK).list("servers"))
	}
	checks := []struct {
		q    string
		want int
	}{
		{"", 3}, {"?name=^alpha", 2}, {"?name=eta", 1}, {"?status=SHUTOFF", 1}, {"?status=ACTIVE", 2},
		{"?status=active&status=shutoff", 3}, {"?limit=2", 2}, {"?marker=" + ids[2], 2},
		{"?changes-since=" + before.Format(time.RFC3339), 3},
		{"?changes-since=" + time.Now().UTC().Add(time.Hour).Format(time.RFC3339), 0},
		{"?flavor=1", 3}, {"?flavor=2", 0}, {"?image=" + e.image, 3},
	}
	for _, c := range checks {
		if got := count(c.q); got != c.want {
			t.Errorf("servers%s: %d, want %d", c.q, got, c.want)
		}
	}
	// Newest first by default.
	r := e.do("GET", "/servers", e.alice.Token, nil).want(http.StatusOK)
	if l := r.list("servers"); l[0]["id"] != ids[2] {
		t.Errorf("default order starts with %v, want %s", l[0]["id"], ids[2])
	}
	e.do("GET", "/servers?status=BOGUS", e.alice.Token, nil, microversion("2.38")...).want(http.StatusBadRequest)
	e.do("GET", "/servers?marker=nope", e.alice.Token, nil).want(http.StatusBadRequest)
	e.do("GET", "/servers?sort_key=bogus", e.alice.Token, nil).want(http.StatusBadRequest)
	// A deleted server shows up in changes-since as DELETED.
	e.do("DELETE", "/servers/"+ids[0], e.alice.Token, nil).want(http.StatusNoContent)
	e.waitGone(e.alice, ids[0])
	r = e.do("GET", "/servers/detail?changes-since="+before.Format(time.RFC3339), e.alice.Token, nil).want(http.StatusOK)
	deleted := 0
	for _, s := range r.list("servers") {
		if s["status"] == "DELETED" {
			deleted++
		}
	}
	if deleted != 1 {
		t.Fatalf("deleted servers in changes-since: %d", deleted)
	}
}

func TestBuildTimeoutAndFailures(t *testing.T) {
	e := newEnvWith(t, envOptions{sched: func(c *compute.Config) { c.BuildTimeout = 300 * time.Millisecond }})
	tok, err := e.reg.CreateJoinToken(e.admin.Ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// Every spawn on this host hangs until the agent gives up.
	agenttest.Start(t, e.srv.URL, tok, agenttest.Options{Hostname: "node1", Fake: fake.Config{
		Hook: func(ctx context.Context, op, uuid string) error {
			if op == "spawn" {
				<-ctx.Done()
				return ctx.Err()
			}
			return nil
		}}})
	e.svc.Scheduler().Invalidate()
	res, err := e.svc.CreateServers(e.alice.Ctx, compute.ServerCreate{Name: "hang", ImageRef: e.image, FlavorRef: "1"})
	if err != nil {
		t.Fatal(err)
	}
	id := res.Servers[0].ID
	eventually(t, 5*time.Second, func() bool {
		s, _ := e.svc.GetServer(e.alice.Ctx, id)
		return s != nil && s.TaskState == compute.TaskSpawning
	}, "spawn to start")
	time.Sleep(400 * time.Millisecond)
	if err := e.svc.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := e.waitStatus(e.alice, id, "ERROR")
	if srv.Fault == nil || !strings.Contains(srv.Fault.Message, "timed out") {
		t.Fatalf("fault %+v", srv.Fault)
	}
	if allocs, _ := e.svc.Scheduler().Allocations(e.admin.Ctx); len(allocs) != 0 {
		t.Fatalf("a timed-out build keeps its claim: %+v", allocs)
	}
	// An ERROR server can be deleted.
	if err := e.svc.DeleteServer(e.alice.Ctx, id); err != nil {
		t.Fatal(err)
	}
	e.waitGone(e.alice, id)
}

// TestSpawnFailureReleasesClaim makes the agent fail every spawn: the
// server ends in ERROR with the agent's reason and holds no claim.
func TestSpawnFailureReleasesClaim(t *testing.T) {
	e := newEnv(t)
	tok, err := e.reg.CreateJoinToken(e.admin.Ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	agenttest.Start(t, e.srv.URL, tok, agenttest.Options{Hostname: "node1", Fake: fake.Config{
		Hook: func(ctx context.Context, op, uuid string) error {
			if op == "spawn" {
				return fault.Wrap(fault.Invalid, errors.New("qcow2 header checksum mismatch at /srv/x"), "Disk image is corrupt.")
			}
			return nil
		}}})
	e.svc.Scheduler().Invalidate()
	id := e.boot(e.alice, "doomed", "1", nil)
	srv := e.waitStatus(e.alice, id, "ERROR")
	if srv.Fault == nil || !strings.Contains(srv.Fault.Message, "Disk image is corrupt.") || srv.Fault.Code != 500 {
		t.Fatalf("fault %+v", srv.Fault)
	}
	if allocs, _ := e.svc.Scheduler().Allocations(e.admin.Ctx); len(allocs) != 0 {
		t.Fatalf("a failed spawn keeps its claim: %+v", allocs)
	}
	// The fault shows in the API; its details only to admins.
	r := e.do("GET", "/servers/"+id, e.alice.Token, nil).want(http.StatusOK)
	f := r.obj("server")["fault"].(map[string]any)
	if !strings.Contains(f["message"].(string), "corrupt") || f["details"] != nil {
		t.Fatalf("fault view %v", f)
	}
	// An admin sees the agent's full cause, which the owner does not.
	r = e.do("GET", "/servers/"+id, e.admin.Token, nil).want(http.StatusOK)
	f = r.obj("server")["fault"].(map[string]any)
	if d, _ := f["details"].(string); !strings.Contains(d, "checksum mismatch") {
		t.Fatalf("admin fault view lacks the agent's cause: %v", f)
	}
	r = e.do("GET", "/servers/"+id+"/os-instance-actions", e.alice.Token, nil).want(http.StatusOK)
	if a := r.list("instanceActions")[0]; a["action"] != "create" || a["message"] != "Error" {
		t.Fatalf("create action %v", a)
	}
}
