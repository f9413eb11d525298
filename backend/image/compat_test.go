package image

// Compatibility test: gophercloud v2, a stock OpenStack client, finds the
// image service through the identity catalog and drives the REST API.

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"io"
	"net/http"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imagedata"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/members"
	"github.com/gophercloud/gophercloud/v2/pagination"
)

// compatImageClient authenticates with gophercloud and returns the image v2
// client found through the token's catalog.
func compatImageClient(t *testing.T, e *apiEnv, opts gophercloud.AuthOptions) *gophercloud.ServiceClient {
	t.Helper()
	opts.IdentityEndpoint = e.srv.URL + "/identity/v3"
	provider, err := openstack.AuthenticatedClient(context.Background(), opts)
	if err != nil {
		t.Fatalf("gophercloud authentication: %v", err)
	}
	client, err := openstack.NewImageV2(provider, gophercloud.EndpointOpts{Region: "RegionOne"})
	if err != nil {
		t.Fatalf("image client from the catalog: %v", err)
	}
	return client
}

func TestCompatGophercloud(t *testing.T) {
	requireQemu(t)
	e := newAPIEnv(t)
	ctx := context.Background()
	client := compatImageClient(t, e, gophercloud.AuthOptions{
		Username: "demo", Password: testDemoPassword, DomainName: "Default", TenantName: "demo",
	})
	if client.Endpoint != e.base+"/" {
		t.Errorf("image endpoint %q, want %q", client.Endpoint, e.base+"/")
	}

	// Create.
	shared := images.ImageVisibilityShared
	img, err := images.Create(ctx, client, images.CreateOpts{
		Name: "gopher", DiskFormat: "raw", ContainerFormat: "bare", Visibility: &shared,
		Tags: []string{"compat"}, MinRAM: 32, Properties: map[string]string{"os_distro": "gopher-os"},
	}).Extract()
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if img.Name != "gopher" || img.Status != images.ImageStatusQueued || img.Visibility != shared ||
		img.MinRAMMegabytes != 32 || len(img.Tags) != 1 || img.Properties["os_distro"] != "gopher-os" ||
		img.Owner != e.demoProject || img.CreatedAt.IsZero() {
		t.Errorf("created %+v", img)
	}

	// Upload and download.
	data := bytes.Repeat([]byte("nimbus!"), 4096)
	if err := imagedata.Upload(ctx, client, img.ID, bytes.NewReader(data)).ExtractErr(); err != nil {
		t.Fatalf("upload: %v", err)
	}
	got, err := images.Get(ctx, client, img.ID).Extract()
	if err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum(data)
	if got.Status != images.ImageStatusActive || got.SizeBytes != int64(len(data)) || got.Checksum != hex.EncodeToString(sum[:]) ||
		got.VirtualSize != int64(len(data)) {
		t.Errorf("after upload %+v", got)
	}
	rc, err := imagedata.Download(ctx, client, img.ID).Extract()
	if err != nil {
		t.Fatalf("download: %v", err)
	}
	back, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(back, data) {
		t.Error("downloaded data differs")
	}

	// List, one per page through the next links.
	for _, n := range []string{"second", "third"} {
		if _, err := images.Create(ctx, client, images.CreateOpts{Name: n, Tags: []string{"compat"}}).Extract(); err != nil {
			t.Fatal(err)
		}
	}
	pages, seen := 0, map[string]bool{}
	err = images.List(client, images.ListOpts{Limit: 1, Tags: []string{"compat"}, SortKey: "name", SortDir: "asc"}).EachPage(ctx,
		func(_ context.Context, page pagination.Page) (bool, error) {
			imgs, err := images.ExtractImages(page)
			for _, i := range imgs {
				seen[i.Name] = true
			}
			if len(imgs) > 0 {
				pages++
			}
			return true, err
		})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if len(seen) != 3 || pages != 3 {
		t.Errorf("listed %v over %d pages", seen, pages)
	}
	all, err := images.List(client, images.ListOpts{Name: "gopher"}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if imgs, _ := images.ExtractImages(all); len(imgs) != 1 || imgs[0].ID != img.ID {
		t.Errorf("by name: %+v", imgs)
	}

	// Update.
	upd, err := images.Update(ctx, client, img.ID, images.UpdateOpts{
		images.ReplaceImageName{NewName: "gopher-2"},
		images.ReplaceImageTags{NewTags: []string{"compat", "updated"}},
		images.ReplaceImageMinDisk{NewMinDisk: 1},
		images.UpdateImageProperty{Op: images.AddOp, Name: "hw_disk_bus", Value: "virtio"},
	}).Extract()
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if upd.Name != "gopher-2" || len(upd.Tags) != 2 || upd.MinDiskGigabytes != 1 || upd.Properties["hw_disk_bus"] != "virtio" {
		t.Errorf("updated %+v", upd)
	}
	_, err = images.Update(ctx, client, img.ID, images.UpdateOpts{images.ReplaceImageChecksum{Checksum: "x"}}).Extract()
	if !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
		t.Errorf("replacing the checksum: %v, want 403", err)
	}

	// Members: share with another project, which accepts.
	otherProject, otherUser, _ := e.tenantToken("gopher-friend")
	friend := compatImageClient(t, e, gophercloud.AuthOptions{UserID: otherUser, Password: "gopher-friend-pw", TenantID: otherProject})
	if _, err := images.Get(ctx, friend, img.ID).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Errorf("unshared image seen by another project: %v", err)
	}
	m, err := members.Create(ctx, client, img.ID, otherProject).Extract()
	if err != nil {
		t.Fatalf("add member: %v", err)
	}
	if m.Status != "pending" || m.MemberID != otherProject || m.ImageID != img.ID {
		t.Errorf("member %+v", m)
	}
	mp, err := members.List(client, img.ID).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ms, _ := members.ExtractMembers(mp); len(ms) != 1 {
		t.Errorf("members %+v", ms)
	}
	if _, err := members.Update(ctx, friend, img.ID, otherProject, members.UpdateOpts{Status: "accepted"}).Extract(); err != nil {
		t.Fatalf("accept: %v", err)
	}
	if m, err := members.Get(ctx, friend, img.ID, otherProject).Extract(); err != nil || m.Status != "accepted" {
		t.Errorf("member after accepting: %+v %v", m, err)
	}
	fp, err := images.List(friend, images.ListOpts{}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if imgs, _ := images.ExtractImages(fp); len(imgs) != 1 || imgs[0].ID != img.ID {
		t.Errorf("friend lists %+v", imgs)
	}
	rc, err = imagedata.Download(ctx, friend, img.ID).Extract()
	if err != nil {
		t.Fatalf("friend download: %v", err)
	}
	rc.Close()
	if err := members.Delete(ctx, client, img.ID, otherProject).ExtractErr(); err != nil {
		t.Fatal(err)
	}

	// Delete.
	if err := images.Delete(ctx, client, img.ID).ExtractErr(); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := images.Get(ctx, client, img.ID).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Errorf("get after delete: %v", err)
	}
}
