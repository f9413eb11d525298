package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/nimbus-cloud/nimbus/backend/compute"
	"github.com/nimbus-cloud/nimbus/backend/network"
)

// TestLaunchOffersNetworks: the launch dialog lists the project's and
// shared networks (never external ones), preselects the only one and the
// default security group, and a launch passes the chosen networks on.
func TestLaunchOffersNetworks(t *testing.T) {
	e := newAdminPagesEnv(t)
	pa := e.createProject("proj-a")
	e.createMember("alice", "alice-Secret-1", pa)
	actx := e.userCtx("alice", "alice-Secret-1", pa.ID)
	pub := e.externalNetwork("public", "203.0.113.0/24")
	n, err := e.nets.CreateNetwork(actx, network.NetworkCreate{Name: "alice-net"})
	if err != nil {
		t.Fatal(err)
	}
	alice := e.client()
	alice.login("alice", "alice-Secret-1")

	r := alice.get("/project/instances/new", hx, hxTargetModal)
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, `name="network" value="`+n.ID+`" checked`, "alice-net", `name="security_group" value="default" checked`)
	wantNotContains(t, r, pub.ID)

	// A second network: nothing is preselected any more.
	n2, err := e.nets.CreateNetwork(actx, network.NetworkCreate{Name: "alice-net-2"})
	if err != nil {
		t.Fatal(err)
	}
	r = alice.get("/project/instances/new", hx, hxTargetModal)
	wantContains(t, r, `name="network" value="`+n2.ID+`"`)
	wantNotContains(t, r, `value="`+n.ID+`" checked`)

	// This environment's compute has no network service behind it (the
	// wiring lives in cmd/nimbus; the e2e tests boot on real networks), so
	// a launch that carries networks is refused, in the form; one without
	// a network checked boots with none.
	r = alice.post("/project/instances", url.Values{"name": {"web"}, "count": {"1"}, "image": {e.imageID},
		"flavor": {e.tiny}, "network": {n2.ID}, "security_group": {"default"}}, hx)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, "Networking is not available", `name="network" value="`+n2.ID+`" checked`)
	r = alice.post("/project/instances", url.Values{"name": {"plain"}, "count": {"1"}, "image": {e.imageID},
		"flavor": {e.tiny}}, hx)
	wantStatus(t, r, http.StatusNoContent)
	if srv := e.serverNamed("plain"); srv == nil {
		t.Fatal("no server plain")
	}
}

// TestInstanceFloatingIP: the instance's Floating IP dialog allocates from
// a pool onto the instance's port, lists what is associated, and
// disassociates; another project's instance is not found.
func TestInstanceFloatingIP(t *testing.T) {
	e := newAdminPagesEnv(t)
	pa, pb := e.createProject("proj-a"), e.createProject("proj-b")
	e.createMember("alice", "alice-Secret-1", pa)
	e.createMember("bob", "bob-Secret-1", pb)
	actx := e.userCtx("alice", "alice-Secret-1", pa.ID)
	pub := e.externalNetwork("public", "203.0.113.0/24")
	n, err := e.nets.CreateNetwork(actx, network.NetworkCreate{Name: "alice-net"})
	if err != nil {
		t.Fatal(err)
	}
	sn, err := e.nets.CreateSubnet(actx, network.SubnetCreate{NetworkID: n.ID, CIDR: "10.0.0.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := e.nets.CreateRouter(actx, network.RouterCreate{Name: "r", Gateway: &network.GatewayRequest{NetworkID: pub.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.nets.AddRouterInterface(actx, rt.ID, sn.ID, ""); err != nil {
		t.Fatal(err)
	}
	id := e.boot(actx, "vm")
	// The instance's port, as compute makes it.
	port, err := e.nets.CreatePort(e.adminCtx(), network.PortCreate{NetworkID: n.ID, ProjectID: pa.ID, DeviceID: id,
		DeviceOwner: "compute:nova"})
	if err != nil {
		t.Fatal(err)
	}
	fixed := port.FixedIPs[0].IPAddress
	alice, bob := e.client(), e.client()
	alice.login("alice", "alice-Secret-1")
	bob.login("bob", "bob-Secret-1")

	// The row offers the action; the dialog shows the port and the pool.
	r := alice.get("/project/instances")
	wantContains(t, r, "/project/instances/"+id+"/floating-ip")
	path := "/project/instances/" + id + "/floating-ip"
	r = alice.get(path, hx, hxTargetModal)
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, "Allocate a new address from public", `value="new:`+pub.ID+`"`, fixed)

	// Nothing chosen: refused in the form.
	r = alice.post(path, url.Values{"floating_ip": {""}}, hx)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, "Choose an address or a pool.")

	r = alice.post(path, url.Values{"floating_ip": {"new:" + pub.ID}, "port": {port.ID}, "back": {"/project/instances"}}, hx)
	wantStatus(t, r, http.StatusNoContent)
	if msg := toastOf(t, r)["message"]; !strings.Contains(msg, "is associated with") {
		t.Fatalf("toast %q", msg)
	}
	fips, _, err := e.nets.ListFloatingIPs(actx, network.ListOptions{})
	if err != nil || len(fips) != 1 || fips[0].PortID != port.ID || fips[0].FixedIPAddress != fixed {
		t.Fatalf("floating IPs %+v, %v", fips, err)
	}

	// The instance's page lists the interface with both addresses.
	r = alice.get("/project/instances/" + id)
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, `id="interface-`+port.ID+`"`, ">alice-net</a>", fixed, fips[0].FloatingIPAddress, port.MACAddress)
	other := e.boot(actx, "isolated")
	wantContains(t, alice.get("/project/instances/"+other), "No network interface")

	// The dialog now lists it as associated; disassociating keeps it allocated.
	r = alice.get(path, hx, hxTargetModal)
	wantContains(t, r, fips[0].FloatingIPAddress+" → "+fixed, "Disassociate")
	r = alice.post(path+"/disassociate", url.Values{"floating_ip": {fips[0].ID}, "back": {"/project/instances"}}, hx)
	wantStatus(t, r, http.StatusNoContent)
	fips, _, _ = e.nets.ListFloatingIPs(actx, network.ListOptions{})
	if len(fips) != 1 || fips[0].PortID != "" {
		t.Fatalf("after disassociate: %+v", fips)
	}
	// A free address is offered next time.
	r = alice.get(path, hx, hxTargetModal)
	wantContains(t, r, `value="`+fips[0].ID+`"`)

	// Bob cannot reach alice's instance through the dialog.
	r = bob.get(path, hx, hxTargetModal)
	wantStatus(t, r, http.StatusNotFound)
}

// TestLaunchImportsKeyPair: a public key pasted into the launch dialog is
// imported as a key pair and used for the instance; a bad key stops the
// launch in the form with nothing built.
func TestLaunchImportsKeyPair(t *testing.T) {
	e := newComputeEnv(t)
	pa := e.createProject("proj-a")
	e.createMember("alice", "alice-Secret-1", pa)
	actx := e.userCtx("alice", "alice-Secret-1", pa.ID)
	// A real public key, from a generated pair that is then deleted.
	gen, err := e.comp.CreateKeypair(actx, compute.KeypairCreate{Name: "gen"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.comp.DeleteKeypair(actx, "", "gen"); err != nil {
		t.Fatal(err)
	}
	alice := e.client()
	alice.login("alice", "alice-Secret-1")
	form := func(name, keyName, key string) url.Values {
		return url.Values{"name": {name}, "count": {"1"}, "image": {e.imageID}, "flavor": {e.tiny},
			"new_key_name": {keyName}, "new_public_key": {key}}
	}

	r := alice.post("/project/instances", form("bad", "desk", "ssh-rsa nope"), hx)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, "Keypair data is invalid", `<details class="field" open>`, "ssh-rsa nope")
	r = alice.post("/project/instances", form("bad", "", gen.PublicKey), hx)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, "Name the key pair to import.")
	if srv := e.serverNamed("bad"); srv != nil {
		t.Fatalf("a refused launch built %+v", srv)
	}

	r = alice.post("/project/instances", form("keyed", "desk", gen.PublicKey), hx)
	wantStatus(t, r, http.StatusNoContent)
	srv := e.serverNamed("keyed")
	if srv == nil || srv.KeyName != "desk" {
		t.Fatalf("server %+v", srv)
	}
	if kp, err := e.comp.GetKeypair(actx, "", "desk"); err != nil || kp.PublicKey != gen.PublicKey {
		t.Fatalf("imported key pair %+v, %v", kp, err)
	}
}

// TestLaunchCreatesKeyPair: "Create a key pair" in the launch dialog makes
// the key pair, answers the dialog's key block with it chosen and its
// private key (no-store), and refuses a missing or taken name in the block.
func TestLaunchCreatesKeyPair(t *testing.T) {
	e := newComputeEnv(t)
	pa := e.createProject("proj-a")
	e.createMember("alice", "alice-Secret-1", pa)
	actx := e.userCtx("alice", "alice-Secret-1", pa.ID)
	alice := e.client()
	alice.login("alice", "alice-Secret-1")
	wantContains(t, alice.get("/project/instances/new", hxTargetModal), `id="launch-keypair"`, `name="create_key_name"`,
		`hx-post="/project/instances/new/keypair"`)
	// The whole launch form is posted with the button.
	form := url.Values{"name": {"vm"}, "count": {"1"}, "image": {e.imageID}, "flavor": {e.tiny}}
	with := func(name string) url.Values {
		v := url.Values{"create_key_name": {name}}
		for k, vs := range form {
			v[k] = vs
		}
		return v
	}

	r := alice.post("/project/instances/new/keypair", with(""), hx)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, `id="launch-keypair"`, "Name the key pair to create.")

	r = alice.post("/project/instances/new/keypair", with("desk"), hx)
	wantStatus(t, r, http.StatusOK)
	if r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("Cache-Control %q", r.header.Get("Cache-Control"))
	}
	kp, err := e.comp.GetKeypair(actx, "", "desk")
	if err != nil {
		t.Fatal(err)
	}
	wantContains(t, r, `<option value="desk" selected>`, "PRIVATE KEY-----", `data-file="desk.pem"`, "data-autodownload")
	wantNotContains(t, r, `name="create_key_name"`)
	if isFullPage(r.body) || strings.Contains(r.body, `id="launch-form"`) {
		t.Fatal("the answer is more than the key pair block")
	}

	r = alice.post("/project/instances/new/keypair", with("desk"), hx)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, "already exists")
	if again, err := e.comp.GetKeypair(actx, "", "desk"); err != nil || again.PublicKey != kp.PublicKey {
		t.Fatalf("the taken name changed the key pair: %+v %v", again, err)
	}

	// Launching with it uses it.
	form.Set("key_name", "desk")
	wantStatus(t, alice.post("/project/instances", form, hx), http.StatusNoContent)
	if srv := e.serverNamed("vm"); srv == nil || srv.KeyName != "desk" {
		t.Fatalf("server %+v", srv)
	}
}
