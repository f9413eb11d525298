package compute_test

// Compatibility tests: gophercloud v2, a stock OpenStack client, against
// the API mounted at /compute and found through the identity catalog.

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/hypervisors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/keypairs"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servergroups"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/services"
)

func (e *env) gophercloud(t *testing.T, username, password, project string) *gophercloud.ServiceClient {
	t.Helper()
	ctx := context.Background()
	provider, err := openstack.AuthenticatedClient(ctx, gophercloud.AuthOptions{
		IdentityEndpoint: e.srv.URL + "/identity/v3", Username: username, Password: password,
		DomainName: "Default", TenantName: project,
	})
	if err != nil {
		t.Fatalf("gophercloud authentication: %v", err)
	}
	client, err := openstack.NewComputeV2(provider, gophercloud.EndpointOpts{Region: "RegionOne"})
	if err != nil {
		t.Fatalf("compute client from the catalog: %v", err)
	}
	if client.Endpoint != e.srv.URL+"/compute/v2.1/" {
		t.Fatalf("compute endpoint %q", client.Endpoint)
	}
	return client
}

func TestCompatGophercloud(t *testing.T) {
	e := newEnv(t)
	e.agent("node1", 8, 16384, 200)
	ctx := context.Background()
	c := e.gophercloud(t, "alice", "alice-password", "alice-project")

	// Flavors.
	pages, err := flavors.ListDetail(c, flavors.ListOpts{}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := flavors.ExtractFlavors(pages)
	if err != nil || len(fs) != 4 {
		t.Fatalf("flavors %+v %v", fs, err)
	}
	tiny, err := flavors.Get(ctx, c, "1").Extract()
	if err != nil || tiny.Name != "m1.tiny" || tiny.RAM != 128 || tiny.Disk != 1 || tiny.VCPUs != 1 {
		t.Fatalf("flavor 1: %+v %v", tiny, err)
	}

	// Key pairs: generate one, import one.
	kp, err := keypairs.Create(ctx, c, keypairs.CreateOpts{Name: "gen"}).Extract()
	if err != nil || kp.PrivateKey == "" || kp.Fingerprint == "" {
		t.Fatalf("generated key pair %+v %v", kp, err)
	}
	line, fp := ed25519Line(t)
	imp, err := keypairs.Create(ctx, c, keypairs.CreateOpts{Name: "imported", PublicKey: line}).Extract()
	if err != nil || imp.Fingerprint != fp {
		t.Fatalf("imported key pair %+v %v", imp, err)
	}
	kpages, err := keypairs.List(c, nil).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if kps, _ := keypairs.ExtractKeyPairs(kpages); len(kps) != 2 {
		t.Fatalf("key pairs %+v", kps)
	}

	// Servers: create with a key, wait for ACTIVE, list, update, delete.
	created, err := servers.Create(ctx, c, keypairs.CreateOptsExt{
		CreateOptsBuilder: servers.CreateOpts{Name: "gc-server", ImageRef: e.image, FlavorRef: "1",
			Metadata: map[string]string{"from": "gophercloud"}, UserData: []byte("#!/bin/sh\n")},
		KeyName: "imported",
	}, nil).Extract()
	if err != nil {
		t.Fatalf("create server: %v", err)
	}
	if created.AdminPass == "" {
		t.Fatalf("no admin password in %+v", created)
	}
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := servers.WaitForStatus(wctx, c, created.ID, "ACTIVE"); err != nil {
		t.Fatalf("wait for ACTIVE: %v", err)
	}
	srv, err := servers.Get(ctx, c, created.ID).Extract()
	if err != nil || srv.Name != "gc-server" || srv.KeyName != "imported" || srv.Metadata["from"] != "gophercloud" ||
		srv.Flavor["id"] != "1" || srv.Image["id"] != e.image || srv.LaunchedAt.IsZero() || srv.TenantID != e.alice.ProjectID {
		t.Fatalf("server %+v %v", srv, err)
	}
	spages, err := servers.List(c, servers.ListOpts{Name: "gc-"}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ss, err := servers.ExtractServers(spages); err != nil || len(ss) != 1 || ss[0].ID != created.ID {
		t.Fatalf("list %+v %v", ss, err)
	}
	upd, err := servers.Update(ctx, c, created.ID, servers.UpdateOpts{Name: "gc-renamed"}).Extract()
	if err != nil || upd.Name != "gc-renamed" {
		t.Fatalf("update %+v %v", upd, err)
	}
	if err := servers.Reboot(ctx, c, created.ID, servers.RebootOpts{Type: servers.SoftReboot}).ExtractErr(); err != nil {
		t.Fatalf("reboot: %v", err)
	}
	e.waitStatus(e.alice, created.ID, "ACTIVE")
	md, err := servers.Metadata(ctx, c, created.ID).Extract()
	if err != nil || md["from"] != "gophercloud" {
		t.Fatalf("metadata %v %v", md, err)
	}

	// At the newest microversion: the embedded flavor and server groups.
	c.Microversion = "2.79"
	srv, err = servers.Get(ctx, c, created.ID).Extract()
	if err != nil || srv.Flavor["original_name"] != "m1.tiny" {
		t.Fatalf("server at 2.79 %+v %v", srv.Flavor, err)
	}
	sg, err := servergroups.Create(ctx, c, servergroups.CreateOpts{Name: "g", Policy: "anti-affinity"}).Extract()
	if err != nil || sg.Policy == nil || *sg.Policy != "anti-affinity" {
		t.Fatalf("server group %+v %v", sg, err)
	}
	c.Microversion = ""

	if err := servers.Delete(ctx, c, created.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	e.waitGone(e.alice, created.ID)
	_, err = servers.Get(ctx, c, created.ID).Extract()
	if !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("get deleted server: %v", err)
	}
	if err := keypairs.Delete(ctx, c, "gen", nil).ExtractErr(); err != nil {
		t.Fatal(err)
	}

	// Admin views.
	ac := e.gophercloud(t, "admin", testAdminPassword, "admin")
	hpages, err := hypervisors.List(ac, nil).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hs, err := hypervisors.ExtractHypervisors(hpages)
	if err != nil || len(hs) != 1 || hs[0].HypervisorHostname != "node1" || hs[0].VCPUs != 8 {
		t.Fatalf("hypervisors %+v %v", hs, err)
	}
	svpages, err := services.List(ac, nil).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	svcs, err := services.ExtractServices(svpages)
	if err != nil || len(svcs) != 1 || svcs[0].Binary != "nova-compute" || svcs[0].State != "up" {
		t.Fatalf("services %+v %v", svcs, err)
	}
	// A member may not list hypervisors.
	_, err = hypervisors.List(c, nil).AllPages(ctx)
	var ue gophercloud.ErrUnexpectedResponseCode
	if !errors.As(err, &ue) || ue.Actual != http.StatusForbidden {
		t.Fatalf("member lists hypervisors: %v", err)
	}
}
