package image

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

func TestCreateImage(t *testing.T) {
	e := newEnv(t)
	img := e.create(e.demo, Image{Name: "cirros", DiskFormat: "qcow2", ContainerFormat: "bare", MinDisk: 1, MinRAM: 64,
		Tags: []string{"a", "b", "a"}, Properties: map[string]string{"os_distro": "cirros"}})
	if img.Status != StatusQueued || img.Visibility != VisibilityShared || img.Owner != e.demoProject ||
		!uuidRE.MatchString(img.ID) || img.Size != nil || img.Checksum != "" || img.CreatedAt.IsZero() {
		t.Errorf("created %+v", img)
	}
	if !slices.Equal(img.Tags, []string{"a", "b"}) || img.Properties["os_distro"] != "cirros" {
		t.Errorf("tags %v properties %v", img.Tags, img.Properties)
	}

	const fixedID = "0b3a3d4a-5b56-4f1a-9c0e-1f2e3d4c5b6a"
	cases := []struct {
		name string
		ctx  string // "demo" or "admin"
		in   Image
		kind fault.Kind // 0: success (Internal is never expected here)
	}{
		{"client-chosen id", "demo", Image{ID: fixedID, Name: "x"}, 0},
		{"duplicate id", "demo", Image{ID: fixedID, Name: "x"}, fault.Conflict},
		{"malformed id", "demo", Image{ID: "not-a-uuid"}, fault.Invalid},
		{"bad visibility", "demo", Image{Visibility: "world"}, fault.Invalid},
		{"bad disk format", "demo", Image{DiskFormat: "ploop"}, fault.Invalid},
		{"bad container format", "demo", Image{ContainerFormat: "zip"}, fault.Invalid},
		{"negative min_disk", "demo", Image{MinDisk: -1}, fault.Invalid},
		{"long name", "demo", Image{Name: string(make([]byte, 256))}, fault.Invalid},
		{"reserved property", "demo", Image{Properties: map[string]string{"os_glance_x": "1"}}, fault.Forbidden},
		{"reserved name", "demo", Image{Properties: map[string]string{"deleted": "1"}}, fault.Forbidden},
		{"public needs admin", "demo", Image{Visibility: VisibilityPublic}, fault.Forbidden},
		{"community for members", "demo", Image{Visibility: VisibilityCommunity}, 0},
		{"other owner needs admin", "demo", Image{Owner: e.boot.AdminProject}, fault.Forbidden},
		{"admin makes public", "admin", Image{Visibility: VisibilityPublic, Name: "pub"}, 0},
		{"admin sets owner", "admin", Image{Owner: e.demoProject, Name: "given"}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := e.demo
			if tc.ctx == "admin" {
				ctx = e.admin
			}
			_, err := e.s.CreateImage(ctx, tc.in)
			if tc.kind == 0 {
				ok(t, err)
				return
			}
			wantKind(t, err, tc.kind)
		})
	}
	// An ID stays taken after its image is deleted.
	ok(t, e.s.DeleteImage(e.demo, fixedID))
	_, err := e.s.CreateImage(e.demo, Image{ID: fixedID})
	wantKind(t, err, fault.Conflict)
	if _, err := e.s.CreateImage(t.Context(), Image{}); !fault.Is(err, fault.Unauthorized) {
		t.Errorf("no credentials: %v", err)
	}
}

func TestImageQuota(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.ImageQuota = 2 })
	e.create(e.demo, Image{Name: "1"})
	second := e.create(e.demo, Image{Name: "2"})
	_, err := e.s.CreateImage(e.demo, Image{Name: "3"})
	wantKind(t, err, fault.TooLarge)
	// Another project has its own count; deleting frees a place.
	e.create(e.admin, Image{Name: "admin's"})
	ok(t, e.s.DeleteImage(e.demo, second.ID))
	e.create(e.demo, Image{Name: "3"})
}

func TestListImages(t *testing.T) {
	e := newEnv(t)
	otherProject, other := e.tenant("other", "member")
	a := e.create(e.demo, Image{Name: "alpha", DiskFormat: "qcow2", ContainerFormat: "bare", Tags: []string{"x", "y"},
		Properties: map[string]string{"os_distro": "debian"}})
	b := e.create(e.demo, Image{Name: "beta", DiskFormat: "raw", ContainerFormat: "bare", Tags: []string{"x"}, Protected: true})
	c := e.create(e.demo, Image{Name: "gamma", DiskFormat: "iso", ContainerFormat: "bare", Visibility: VisibilityPrivate})
	hidden := e.create(e.demo, Image{Name: "hidden", Hidden: true})
	pub := e.create(e.admin, Image{Name: "public", Visibility: VisibilityPublic})
	comm := e.create(other, Image{Name: "community", Visibility: VisibilityCommunity})
	priv := e.create(other, Image{Name: "their-private", Visibility: VisibilityPrivate})
	shared := e.create(other, Image{Name: "their-shared"})
	pending := e.create(other, Image{Name: "their-pending"})
	_, err := e.s.AddMember(other, shared.ID, e.demoProject)
	ok(t, err)
	_, err = e.s.UpdateMember(e.demo, shared.ID, e.demoProject, MemberAccepted)
	ok(t, err)
	_, err = e.s.AddMember(other, pending.ID, e.demoProject)
	ok(t, err)
	_ = otherProject

	ids := func(imgs []Image) []string {
		var out []string
		for _, i := range imgs {
			out = append(out, i.ID)
		}
		return out
	}
	cases := []struct {
		name string
		f    ListFilter
		want []*Image // in order
	}{
		{"default: own, public, accepted shared; newest first", ListFilter{}, []*Image{shared, pub, c, b, a}},
		{"oldest first", ListFilter{SortDirs: []string{"asc"}}, []*Image{a, b, c, pub, shared}},
		{"by name", ListFilter{SortKeys: []string{"name"}, SortDirs: []string{"asc"}}, []*Image{a, b, c, pub, shared}},
		{"name filter", ListFilter{Names: []string{"beta"}}, []*Image{b}},
		{"name in", ListFilter{Names: []string{"alpha", "gamma"}, SortDirs: []string{"asc"}}, []*Image{a, c}},
		{"tag x", ListFilter{Tags: []string{"x"}}, []*Image{b, a}},
		{"tags x and y", ListFilter{Tags: []string{"x", "y"}}, []*Image{a}},
		{"disk format", ListFilter{DiskFormats: []string{"iso"}}, []*Image{c}},
		{"container format", ListFilter{ContainerFormats: []string{"bare"}, SortDirs: []string{"asc"}}, []*Image{a, b, c}},
		{"protected", ListFilter{Protected: ptr(true)}, []*Image{b}},
		{"custom property", ListFilter{Properties: map[string]string{"os_distro": "debian"}}, []*Image{a}},
		{"hidden only", ListFilter{Hidden: true}, []*Image{hidden}},
		{"owner", ListFilter{Owner: e.boot.AdminProject}, []*Image{pub}},
		{"visibility public", ListFilter{Visibility: VisibilityPublic}, []*Image{pub}},
		{"visibility private", ListFilter{Visibility: VisibilityPrivate}, []*Image{c}},
		{"visibility community", ListFilter{Visibility: VisibilityCommunity}, []*Image{comm}},
		{"visibility shared", ListFilter{Visibility: VisibilityShared}, []*Image{shared, b, a}},
		{"visibility all", ListFilter{Visibility: "all"}, []*Image{shared, comm, pub, c, b, a}},
		{"member_status pending", ListFilter{MemberStatus: MemberPending, Owner: pending.Owner}, []*Image{pending}},
		{"member_status all", ListFilter{MemberStatus: "all", Visibility: VisibilityShared, Owner: pending.Owner}, []*Image{pending, shared}},
		{"status", ListFilter{Statuses: []string{StatusActive}}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := e.s.ListImages(e.demo, tc.f)
			ok(t, err)
			var want []string
			for _, w := range tc.want {
				want = append(want, w.ID)
			}
			if !slices.Equal(ids(got), want) {
				t.Errorf("got %v\nwant %v", names(got), namesOf(tc.want))
			}
		})
	}
	// Another project's private image is never listed for demo; admin sees all.
	all, _, err := e.s.ListImages(e.admin, ListFilter{Limit: 100})
	ok(t, err)
	if !slices.Contains(ids(all), priv.ID) || len(all) != 8 {
		t.Errorf("admin list %v", names(all))
	}

	t.Run("pagination", func(t *testing.T) {
		var seen []string
		f := ListFilter{Limit: 2, SortKeys: []string{"name"}, SortDirs: []string{"asc"}}
		pages := 0
		for {
			page, more, err := e.s.ListImages(e.demo, f)
			ok(t, err)
			pages++
			seen = append(seen, ids(page)...)
			if !more {
				break
			}
			f.Marker = page[len(page)-1].ID
		}
		if want := []string{a.ID, b.ID, c.ID, pub.ID, shared.ID}; !slices.Equal(seen, want) || pages != 3 {
			t.Errorf("paged %v over %d pages", seen, pages)
		}
	})
	t.Run("bad input", func(t *testing.T) {
		for _, f := range []ListFilter{
			{SortKeys: []string{"owner"}},
			{SortDirs: []string{"up"}},
			{SortKeys: []string{"name", "id", "size"}, SortDirs: []string{"asc", "desc"}},
			{Visibility: "world"},
			{MemberStatus: "maybe"},
			{Marker: priv.ID}, // not visible to demo
			{Marker: "no-such-image"},
			{Limit: -1},
		} {
			_, _, err := e.s.ListImages(e.demo, f)
			wantKind(t, err, fault.Invalid)
		}
	})
}

func names(imgs []Image) []string {
	var out []string
	for _, i := range imgs {
		out = append(out, i.Name)
	}
	return out
}

func namesOf(imgs []*Image) []string {
	var out []string
	for _, i := range imgs {
		out = append(out, i.Name)
	}
	return out
}

func TestUpdateImage(t *testing.T) {
	e := newEnv(t)
	img := e.create(e.demo, Image{Name: "orig", DiskFormat: "raw", ContainerFormat: "bare",
		Properties: map[string]string{"os_distro": "debian"}})
	num := func(s string) any { return json.Number(s) }
	cases := []struct {
		name    string
		changes []Change
		kind    fault.Kind
		check   func(t *testing.T, got *Image)
	}{
		{"replace name", []Change{{Op: "replace", Path: "name", Value: "renamed"}}, 0,
			func(t *testing.T, got *Image) {
				if got.Name != "renamed" {
					t.Errorf("name %q", got.Name)
				}
			}},
		{"several base attributes", []Change{
			{Op: "replace", Path: "min_disk", Value: num("2")},
			{Op: "replace", Path: "min_ram", Value: float64(128)},
			{Op: "replace", Path: "protected", Value: true},
			{Op: "replace", Path: "os_hidden", Value: true},
			{Op: "replace", Path: "tags", Value: []any{"t1", "t2"}},
			{Op: "replace", Path: "visibility", Value: VisibilityPrivate},
		}, 0, func(t *testing.T, got *Image) {
			if got.MinDisk != 2 || got.MinRAM != 128 || !got.Protected || !got.Hidden ||
				!slices.Equal(got.Tags, []string{"t1", "t2"}) || got.Visibility != VisibilityPrivate {
				t.Errorf("got %+v", got)
			}
		}},
		{"add custom property", []Change{{Op: "add", Path: "hw_disk_bus", Value: "virtio"}}, 0,
			func(t *testing.T, got *Image) {
				if got.Properties["hw_disk_bus"] != "virtio" {
					t.Errorf("properties %v", got.Properties)
				}
			}},
		{"add overwrites in v2.1", []Change{{Op: "add", Path: "os_distro", Value: "ubuntu"}}, 0,
			func(t *testing.T, got *Image) {
				if got.Properties["os_distro"] != "ubuntu" {
					t.Errorf("properties %v", got.Properties)
				}
			}},
		{"add existing in v2.0", []Change{{Op: "add", Path: "os_distro", Value: "x", Draft4: true}}, fault.Conflict, nil},
		{"replace missing property", []Change{{Op: "replace", Path: "nope", Value: "x"}}, fault.Conflict, nil},
		{"remove property", []Change{{Op: "remove", Path: "os_distro"}}, 0,
			func(t *testing.T, got *Image) {
				if _, has := got.Properties["os_distro"]; has {
					t.Errorf("properties %v", got.Properties)
				}
			}},
		{"remove missing property", []Change{{Op: "remove", Path: "os_distro"}}, fault.Conflict, nil},
		{"remove base attribute", []Change{{Op: "remove", Path: "name"}}, fault.Forbidden, nil},
		{"read-only status", []Change{{Op: "replace", Path: "status", Value: "active"}}, fault.Forbidden, nil},
		{"read-only checksum", []Change{{Op: "replace", Path: "checksum", Value: "x"}}, fault.Forbidden, nil},
		{"read-only id", []Change{{Op: "replace", Path: "id", Value: "x"}}, fault.Forbidden, nil},
		{"read-only size", []Change{{Op: "add", Path: "size", Value: num("1")}}, fault.Forbidden, nil},
		{"reserved", []Change{{Op: "add", Path: "os_glance_import", Value: "x"}}, fault.Forbidden, nil},
		{"wrong type", []Change{{Op: "replace", Path: "min_disk", Value: "big"}}, fault.Invalid, nil},
		{"fraction", []Change{{Op: "replace", Path: "min_ram", Value: num("1.5")}}, fault.Invalid, nil},
		{"custom non-string", []Change{{Op: "add", Path: "cpus", Value: num("2")}}, fault.Invalid, nil},
		{"bad visibility", []Change{{Op: "replace", Path: "visibility", Value: "world"}}, fault.Invalid, nil},
		{"publicize needs admin", []Change{{Op: "replace", Path: "visibility", Value: VisibilityPublic}}, fault.Forbidden, nil},
		{"owner needs admin", []Change{{Op: "replace", Path: "owner", Value: e.boot.AdminProject}}, fault.Forbidden, nil},
		{"all or nothing", []Change{{Op: "replace", Path: "name", Value: "half"}, {Op: "replace", Path: "status", Value: "x"}}, fault.Forbidden,
			nil},
		{"disk format while queued", []Change{{Op: "replace", Path: "disk_format", Value: "qcow2"}}, 0, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := e.s.UpdateImage(e.demo, img.ID, tc.changes)
			if tc.kind != 0 {
				wantKind(t, err, tc.kind)
				return
			}
			ok(t, err)
			if tc.check != nil {
				tc.check(t, got)
			}
		})
	}
	if got, _ := e.s.GetImage(e.demo, img.ID); got.Name == "half" {
		t.Error("a failed patch was partly applied")
	}
	// Admins may publicize and reassign.
	got, err := e.s.UpdateImage(e.admin, img.ID, []Change{
		{Op: "replace", Path: "visibility", Value: VisibilityPublic},
		{Op: "replace", Path: "owner", Value: e.boot.AdminProject},
	})
	ok(t, err)
	if got.Visibility != VisibilityPublic || got.Owner != e.boot.AdminProject {
		t.Errorf("admin update %+v", got)
	}
}

func TestVisibility(t *testing.T) {
	e := newEnv(t)
	_, other := e.tenant("other", "member")
	readerProject, reader := e.tenant("readers", "reader")
	_ = readerProject
	priv := e.create(other, Image{Name: "p", Visibility: VisibilityPrivate})
	shared := e.create(other, Image{Name: "s"})
	comm := e.create(other, Image{Name: "c", Visibility: VisibilityCommunity})
	pub := e.create(e.admin, Image{Name: "pub", Visibility: VisibilityPublic})

	// Another project's private and unshared images answer 404, like a
	// missing one, for every action.
	for _, id := range []string{priv.ID, shared.ID} {
		_, err := e.s.GetImage(e.demo, id)
		wantKind(t, err, fault.NotFound)
		_, err = e.s.UpdateImage(e.demo, id, []Change{{Op: "replace", Path: "name", Value: "x"}})
		wantKind(t, err, fault.NotFound)
		wantKind(t, e.s.DeleteImage(e.demo, id), fault.NotFound)
		wantKind(t, e.s.AddTag(e.demo, id, "t"), fault.NotFound)
		_, _, err = e.s.OpenContent(e.demo, id)
		wantKind(t, err, fault.NotFound)
		_, err = e.s.ListMembers(e.demo, id)
		wantKind(t, err, fault.NotFound)
	}
	// Public and community images are visible but not changeable.
	for _, id := range []string{comm.ID, pub.ID} {
		_, err := e.s.GetImage(e.demo, id)
		ok(t, err)
		_, err = e.s.UpdateImage(e.demo, id, []Change{{Op: "replace", Path: "name", Value: "x"}})
		wantKind(t, err, fault.Forbidden)
		wantKind(t, e.s.DeleteImage(e.demo, id), fault.Forbidden)
	}
	// Admin sees the private image.
	_, err := e.s.GetImage(e.admin, priv.ID)
	ok(t, err)
	// A reader sees but cannot create.
	_, err = e.s.GetImage(reader, pub.ID)
	ok(t, err)
	_, err = e.s.CreateImage(reader, Image{Name: "r"})
	wantKind(t, err, fault.Forbidden)

	// Sharing: a pending member sees the image directly but not listed;
	// accepted lists it; rejected hides it from the default list again.
	_, err = e.s.AddMember(other, shared.ID, e.demoProject)
	ok(t, err)
	_, err = e.s.GetImage(e.demo, shared.ID)
	ok(t, err)
	listed := func(f ListFilter) bool {
		imgs, _, err := e.s.ListImages(e.demo, f)
		ok(t, err)
		return slices.ContainsFunc(imgs, func(i Image) bool { return i.ID == shared.ID })
	}
	if listed(ListFilter{}) || !listed(ListFilter{MemberStatus: MemberPending}) {
		t.Error("a pending shared image must be listed only with member_status=pending")
	}
	_, err = e.s.UpdateMember(e.demo, shared.ID, e.demoProject, MemberAccepted)
	ok(t, err)
	if !listed(ListFilter{}) {
		t.Error("an accepted shared image is listed")
	}
	_, err = e.s.UpdateMember(e.demo, shared.ID, e.demoProject, MemberRejected)
	ok(t, err)
	if listed(ListFilter{}) || !listed(ListFilter{MemberStatus: MemberRejected}) {
		t.Error("a rejected shared image is listed only with member_status=rejected")
	}
	// A member may not change the image.
	_, err = e.s.UpdateImage(e.demo, shared.ID, []Change{{Op: "replace", Path: "name", Value: "x"}})
	wantKind(t, err, fault.Forbidden)
	// Making it private hides it from members again.
	_, err = e.s.UpdateImage(other, shared.ID, []Change{{Op: "replace", Path: "visibility", Value: VisibilityPrivate}})
	ok(t, err)
	_, err = e.s.GetImage(e.demo, shared.ID)
	wantKind(t, err, fault.NotFound)
}

func TestMembers(t *testing.T) {
	e := newEnv(t)
	thirdProject, third := e.tenant("third", "member")
	img := e.create(e.demo, Image{Name: "s"})
	priv := e.create(e.demo, Image{Name: "p", Visibility: VisibilityPrivate})

	_, err := e.s.AddMember(e.demo, priv.ID, thirdProject)
	wantKind(t, err, fault.Forbidden) // only shared images have members
	m, err := e.s.AddMember(e.demo, img.ID, thirdProject)
	ok(t, err)
	if m.Status != MemberPending || m.MemberID != thirdProject || m.ImageID != img.ID {
		t.Errorf("member %+v", m)
	}
	_, err = e.s.AddMember(e.demo, img.ID, thirdProject)
	wantKind(t, err, fault.Conflict)
	_, err = e.s.AddMember(e.demo, img.ID, "")
	wantKind(t, err, fault.Invalid)
	_, err = e.s.AddMember(e.demo, img.ID, e.boot.AdminProject)
	ok(t, err)

	// The owner sees every member; a member only itself.
	all, err := e.s.ListMembers(e.demo, img.ID)
	ok(t, err)
	own, err := e.s.ListMembers(third, img.ID)
	ok(t, err)
	if len(all) != 2 || len(own) != 1 || own[0].MemberID != thirdProject {
		t.Errorf("owner sees %v, member sees %v", all, own)
	}
	_, err = e.s.GetMember(third, img.ID, e.boot.AdminProject)
	wantKind(t, err, fault.NotFound)
	_, err = e.s.GetMember(third, img.ID, thirdProject)
	ok(t, err)

	// Only the member sets its status; the owner may not accept for it.
	_, err = e.s.UpdateMember(e.demo, img.ID, thirdProject, MemberAccepted)
	wantKind(t, err, fault.Forbidden)
	_, err = e.s.UpdateMember(third, img.ID, thirdProject, "maybe")
	wantKind(t, err, fault.Invalid)
	m, err = e.s.UpdateMember(third, img.ID, thirdProject, MemberAccepted)
	ok(t, err)
	if m.Status != MemberAccepted {
		t.Errorf("status %s", m.Status)
	}
	// A member may not remove memberships; the owner may.
	wantKind(t, e.s.DeleteMember(third, img.ID, thirdProject), fault.Forbidden)
	ok(t, e.s.DeleteMember(e.demo, img.ID, thirdProject))
	wantKind(t, e.s.DeleteMember(e.demo, img.ID, thirdProject), fault.NotFound)
	_, err = e.s.GetImage(third, img.ID)
	wantKind(t, err, fault.NotFound)
}

func TestTagsAndActions(t *testing.T) {
	e := newEnv(t)
	img := e.create(e.demo, Image{Name: "t"})
	ok(t, e.s.AddTag(e.demo, img.ID, "one"))
	ok(t, e.s.AddTag(e.demo, img.ID, "one")) // no-op
	ok(t, e.s.AddTag(e.demo, img.ID, "two"))
	wantKind(t, e.s.AddTag(e.demo, img.ID, ""), fault.Invalid)
	got, err := e.s.GetImage(e.demo, img.ID)
	ok(t, err)
	if !slices.Equal(got.Tags, []string{"one", "two"}) {
		t.Errorf("tags %v", got.Tags)
	}
	ok(t, e.s.DeleteTag(e.demo, img.ID, "one"))
	wantKind(t, e.s.DeleteTag(e.demo, img.ID, "one"), fault.NotFound)

	// Deactivation is for admins, and only of an active image.
	wantKind(t, e.s.Deactivate(e.demo, img.ID), fault.Forbidden)
	wantKind(t, e.s.Deactivate(e.admin, img.ID), fault.Forbidden) // queued

	// Protected images cannot be deleted.
	_, err = e.s.UpdateImage(e.demo, img.ID, []Change{{Op: "replace", Path: "protected", Value: true}})
	ok(t, err)
	wantKind(t, e.s.DeleteImage(e.demo, img.ID), fault.Forbidden)
	_, err = e.s.UpdateImage(e.demo, img.ID, []Change{{Op: "replace", Path: "protected", Value: false}})
	ok(t, err)
	ok(t, e.s.DeleteImage(e.demo, img.ID))
	_, err = e.s.GetImage(e.demo, img.ID)
	wantKind(t, err, fault.NotFound)
}
