package image

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// testImages makes the disk images the upload tests use, with qemu-img.
func testImages(t *testing.T) string {
	t.Helper()
	requireQemu(t)
	dir := t.TempDir()
	q := func(args ...string) { qemuImg(t, dir, args...) }
	q("create", "-f", "qcow2", "good.qcow2", "10M")
	q("create", "-f", "qcow2", "base.qcow2", "1M")
	q("create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "backed.qcow2")
	q("create", "-f", "qcow2", "-o", "data_file=ext.raw", "datafile.qcow2", "1M")
	q("create", "-f", "vmdk", "sparse.vmdk", "2M")
	q("create", "-f", "vmdk", "-o", "subformat=streamOptimized", "stream.vmdk", "2M")
	q("create", "-f", "vmdk", "-o", "subformat=monolithicFlat", "flat.vmdk", "1M")
	q("create", "-f", "vpc", "dynamic.vhd", "3M")
	q("create", "-f", "vpc", "-o", "subformat=fixed", "fixed.vhd", "3M")
	q("create", "-f", "vhdx", "disk.vhdx", "4M")
	q("create", "-f", "vdi", "disk.vdi", "5M")
	raw := make([]byte, 1<<20)
	_, _ = rand.Read(raw)
	write(t, dir, "random.raw", raw)
	iso := make([]byte, 40<<10)
	copy(iso[0x8000:], "\x01CD001\x01")
	write(t, dir, "disk.iso", iso)
	write(t, dir, "hostpath.vmdk", []byte("# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n"+
		"createType=\"monolithicFlat\"\n\n# Extent description\nRW 2048 FLAT \"/etc/passwd\" 0\n"))
	return dir
}

func write(t *testing.T, dir, name string, b []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestUploadAccepted(t *testing.T) {
	dir := testImages(t)
	e := newEnv(t)
	cases := []struct {
		file, format string
		vsize        int64 // -1: the file size
	}{
		{"good.qcow2", "qcow2", 10 << 20},
		{"random.raw", "raw", -1},
		{"disk.iso", "iso", -1},
		{"disk.iso", "raw", -1}, // an ISO is raw to qemu
		{"sparse.vmdk", "vmdk", 2 << 20},
		{"stream.vmdk", "vmdk", 2 << 20},
		{"dynamic.vhd", "vhd", -1}, // qemu rounds to its CHS geometry; checked below
		{"fixed.vhd", "vhd", -1},
		{"disk.vhdx", "vhdx", 4 << 20},
		{"disk.vdi", "vdi", 5 << 20},
	}
	for _, tc := range cases {
		t.Run(tc.file+" as "+tc.format, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(dir, tc.file))
			ok(t, err)
			img, err := e.uploadFile(e.demo, tc.file, tc.format, filepath.Join(dir, tc.file))
			ok(t, err)
			md := md5.Sum(data)
			sh := sha512.Sum512(data)
			if img.Status != StatusActive || img.Size == nil || *img.Size != int64(len(data)) ||
				img.Checksum != hex.EncodeToString(md[:]) || img.HashAlgo != "sha512" ||
				img.HashValue != hex.EncodeToString(sh[:]) || img.VirtualSize == nil {
				t.Fatalf("uploaded %+v", img)
			}
			switch {
			case tc.vsize > 0 && *img.VirtualSize != tc.vsize:
				t.Errorf("virtual size %d, want %d", *img.VirtualSize, tc.vsize)
			case tc.vsize < 0 && tc.format != "vhd" && *img.VirtualSize != int64(len(data)):
				t.Errorf("virtual size %d, want the data size %d", *img.VirtualSize, len(data))
			case *img.VirtualSize <= 0:
				t.Errorf("virtual size %d", *img.VirtualSize)
			}
			rc, got, err := e.s.OpenContent(e.demo, img.ID)
			ok(t, err)
			defer rc.Close()
			back, _ := io.ReadAll(rc)
			if !bytes.Equal(back, data) || got.ID != img.ID {
				t.Error("downloaded data differs")
			}
			if _, err := os.Stat(filepath.Join(e.s.contentDir, img.HashValue)); err != nil {
				t.Errorf("content not stored by its sha512: %v", err)
			}
		})
	}
}

func TestUploadRejected(t *testing.T) {
	dir := testImages(t)
	cases := []struct {
		name, file, format, msg string
	}{
		{"qcow2 with a backing file", "backed.qcow2", "qcow2", "backing file"},
		{"qcow2 with a backing file declared raw", "backed.qcow2", "raw", "backing file"},
		{"qcow2 with an external data file", "datafile.qcow2", "qcow2", "external data file"},
		{"declared raw but qcow2", "good.qcow2", "raw", "not raw"},
		{"declared qcow2 but raw", "random.raw", "qcow2", "not qcow2"},
		{"declared vmdk but qcow2", "good.qcow2", "vmdk", "not vmdk"},
		{"declared iso but raw", "random.raw", "iso", "not iso"},
		{"VMDK descriptor naming a host path", "hostpath.vmdk", "vmdk", "/etc/passwd"},
		{"VMDK descriptor naming a host path declared raw", "hostpath.vmdk", "raw", "/etc/passwd"},
		{"VMDK descriptor naming a flat extent", "flat.vmdk", "vmdk", "flat-flat.vmdk"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			img, err := e.uploadFile(e.demo, tc.name, tc.format, filepath.Join(dir, tc.file))
			wantKind(t, err, fault.Invalid)
			if !strings.Contains(fault.Message(err), tc.msg) {
				t.Errorf("message %q does not mention %q", fault.Message(err), tc.msg)
			}
			if img != nil {
				t.Errorf("got an image with the error: %+v", img)
			}
			imgs, _, err := e.s.ListImages(e.demo, ListFilter{Names: []string{tc.name}})
			ok(t, err)
			if len(imgs) != 1 || imgs[0].Status != StatusKilled || imgs[0].Size != nil || imgs[0].Checksum != "" {
				t.Errorf("after rejection: %+v", imgs)
			}
			if files := e.storedFiles(); len(files) != 0 {
				t.Errorf("files left on disk: %v", files)
			}
			_, _, err = e.s.OpenContent(e.demo, imgs[0].ID)
			if !errors.Is(err, ErrNoData) {
				t.Errorf("download of a killed image: %v", err)
			}
		})
	}
}

func TestUploadVirtualSizeLimit(t *testing.T) {
	dir := testImages(t)
	e := newEnv(t, func(c *Config) { c.MaxVirtualBytes = 1 << 20 })
	_, err := e.uploadFile(e.demo, "big", "qcow2", filepath.Join(dir, "good.qcow2"))
	wantKind(t, err, fault.Invalid)
	if !strings.Contains(fault.Message(err), "virtual size") {
		t.Errorf("message %q", fault.Message(err))
	}
}

func TestUploadSizeCap(t *testing.T) {
	requireQemu(t)
	e := newEnv(t, func(c *Config) { c.MaxImageBytes = 1 << 20 })
	big := bytes.Repeat([]byte{1}, 1<<20+1)
	for _, size := range []int64{-1, int64(len(big))} {
		img := e.create(e.demo, Image{Name: "big", DiskFormat: "raw", ContainerFormat: "bare"})
		_, err := e.s.Upload(e.demo, img.ID, bytes.NewReader(big), size)
		wantKind(t, err, fault.TooLarge)
		got, err := e.s.GetImage(e.demo, img.ID)
		ok(t, err)
		if got.Status != StatusKilled {
			t.Errorf("size %d: status %s, want killed", size, got.Status)
		}
	}
	if files := e.storedFiles(); len(files) != 0 {
		t.Errorf("files left on disk: %v", files)
	}
	// Exactly at the cap is fine.
	img := e.create(e.demo, Image{Name: "fits", DiskFormat: "raw", ContainerFormat: "bare"})
	_, err := e.s.Upload(e.demo, img.ID, bytes.NewReader(big[:1<<20]), -1)
	ok(t, err)
}

func TestUploadBytesQuota(t *testing.T) {
	requireQemu(t)
	e := newEnv(t, func(c *Config) { c.ImageBytesQuota = 3 << 19 }) // 1.5 MiB
	data := func(b byte) []byte { return bytes.Repeat([]byte{b}, 1<<20) }
	first := e.create(e.demo, Image{Name: "1", DiskFormat: "raw", ContainerFormat: "bare"})
	_, err := e.s.Upload(e.demo, first.ID, bytes.NewReader(data(1)), 1<<20)
	ok(t, err)
	for _, size := range []int64{1 << 20, -1} { // declared, then found at the end
		second := e.create(e.demo, Image{Name: "2", DiskFormat: "raw", ContainerFormat: "bare"})
		_, err = e.s.Upload(e.demo, second.ID, bytes.NewReader(data(2)), size)
		wantKind(t, err, fault.TooLarge)
		got, err := e.s.GetImage(e.demo, second.ID)
		ok(t, err)
		if got.Status != StatusQueued {
			t.Errorf("over quota: status %s, want queued", got.Status)
		}
	}
	// Other projects are not affected.
	adm := e.create(e.admin, Image{Name: "a", DiskFormat: "raw", ContainerFormat: "bare"})
	_, err = e.s.Upload(e.admin, adm.ID, bytes.NewReader(data(3)), -1)
	ok(t, err)
}

func TestUploadPreconditions(t *testing.T) {
	requireQemu(t)
	e := newEnv(t)
	data := []byte("hello raw world")
	noFormat := e.create(e.demo, Image{Name: "nf"})
	_, err := e.s.Upload(e.demo, noFormat.ID, bytes.NewReader(data), -1)
	wantKind(t, err, fault.Invalid)
	ovf := e.create(e.demo, Image{Name: "ovf", DiskFormat: "vmdk", ContainerFormat: "ova"})
	_, err = e.s.Upload(e.demo, ovf.ID, bytes.NewReader(data), -1)
	wantKind(t, err, fault.Invalid)

	img := e.create(e.demo, Image{Name: "r", DiskFormat: "raw", ContainerFormat: "bare"})
	// A failing reader puts the image back in the queue.
	_, err = e.s.Upload(e.demo, img.ID, io.MultiReader(bytes.NewReader(data), &failing{}), -1)
	wantKind(t, err, fault.Invalid)
	if got, _ := e.s.GetImage(e.demo, img.ID); got.Status != StatusQueued {
		t.Errorf("after a read error: %s", got.Status)
	}
	// A declared size that does not match.
	_, err = e.s.Upload(e.demo, img.ID, bytes.NewReader(data), 3)
	wantKind(t, err, fault.Invalid)
	up, err := e.s.Upload(e.demo, img.ID, bytes.NewReader(data), int64(len(data)))
	ok(t, err)
	// An active image takes no more data, and its formats are fixed.
	_, err = e.s.Upload(e.demo, img.ID, bytes.NewReader(data), -1)
	wantKind(t, err, fault.Conflict)
	_, err = e.s.UpdateImage(e.demo, up.ID, []Change{{Op: "replace", Path: "disk_format", Value: "qcow2"}})
	wantKind(t, err, fault.Forbidden)

	// Others: a public image is visible but not theirs to upload to; a
	// private one does not exist for them.
	_, other := e.tenant("other", "member")
	pub := e.create(e.admin, Image{Name: "pub", DiskFormat: "raw", ContainerFormat: "bare", Visibility: VisibilityPublic})
	_, err = e.s.Upload(other, pub.ID, bytes.NewReader(data), -1)
	wantKind(t, err, fault.Forbidden)
	priv := e.create(e.demo, Image{Name: "priv", DiskFormat: "raw", ContainerFormat: "bare", Visibility: VisibilityPrivate})
	_, err = e.s.Upload(other, priv.ID, bytes.NewReader(data), -1)
	wantKind(t, err, fault.NotFound)
}

type failing struct{}

func (*failing) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestContentDedupAndDelete(t *testing.T) {
	dir := testImages(t)
	e := newEnv(t)
	path := filepath.Join(dir, "good.qcow2")
	a, err := e.uploadFile(e.demo, "a", "qcow2", path)
	ok(t, err)
	b, err := e.uploadFile(e.admin, "b", "qcow2", path)
	ok(t, err)
	if a.HashValue != b.HashValue {
		t.Fatal("same bytes, different hashes")
	}
	if files := e.storedFiles(); len(files) != 1 {
		t.Fatalf("stored %v, want one shared file", files)
	}
	ok(t, e.s.DeleteImage(e.demo, a.ID))
	if files := e.storedFiles(); len(files) != 1 {
		t.Fatalf("after deleting one of two: %v", files)
	}
	rc, _, err := e.s.OpenContent(e.admin, b.ID)
	ok(t, err)
	rc.Close()
	ok(t, e.s.DeleteImage(e.admin, b.ID))
	if files := e.storedFiles(); len(files) != 0 {
		t.Fatalf("after deleting both: %v", files)
	}
	refs, row, err := e.s.st.contentRefs(context.Background(), b.HashValue)
	ok(t, err)
	if refs != 0 || row {
		t.Errorf("content row left: refs %d row %v", refs, row)
	}
	// The same bytes again are stored again.
	c, err := e.uploadFile(e.demo, "c", "qcow2", path)
	ok(t, err)
	rc, _, err = e.s.OpenContent(e.demo, c.ID)
	ok(t, err)
	rc.Close()
}

func TestDeactivateReactivate(t *testing.T) {
	requireQemu(t)
	e := newEnv(t)
	img := e.create(e.demo, Image{Name: "d", DiskFormat: "raw", ContainerFormat: "bare"})
	_, err := e.s.Upload(e.demo, img.ID, strings.NewReader("some data"), -1)
	ok(t, err)
	wantKind(t, e.s.Deactivate(e.demo, img.ID), fault.Forbidden) // admin only
	ok(t, e.s.Deactivate(e.admin, img.ID))
	ok(t, e.s.Deactivate(e.admin, img.ID)) // no-op
	got, err := e.s.GetImage(e.demo, img.ID)
	ok(t, err)
	if got.Status != StatusDeactivated {
		t.Errorf("status %s", got.Status)
	}
	_, _, err = e.s.OpenContent(e.demo, img.ID)
	wantKind(t, err, fault.Forbidden)
	rc, _, err := e.s.OpenContent(e.admin, img.ID)
	ok(t, err)
	rc.Close()
	ok(t, e.s.Reactivate(e.admin, img.ID))
	rc, _, err = e.s.OpenContent(e.demo, img.ID)
	ok(t, err)
	rc.Close()
}

func TestRegisterFile(t *testing.T) {
	dir := testImages(t)
	e := newEnv(t, func(c *Config) { c.ImageQuota = -1 })
	spec := Image{Name: "tiny", Owner: e.boot.AdminProject, Visibility: VisibilityPublic, DiskFormat: "qcow2",
		ContainerFormat: "bare", Properties: map[string]string{"os_distro": "nimbus"}}
	first, err := e.s.RegisterFile(context.Background(), spec, filepath.Join(dir, "good.qcow2"))
	ok(t, err)
	if first.Status != StatusActive || first.Visibility != VisibilityPublic || first.Owner != e.boot.AdminProject ||
		first.Properties["os_distro"] != "nimbus" {
		t.Fatalf("registered %+v", first)
	}
	again, err := e.s.RegisterFile(context.Background(), spec, filepath.Join(dir, "good.qcow2"))
	ok(t, err)
	if again.ID != first.ID {
		t.Errorf("registering again made a new image %s", again.ID)
	}
	// Everyone can use it.
	rc, _, err := e.s.OpenContent(e.demo, first.ID)
	ok(t, err)
	rc.Close()
	// Unsafe data is refused here too.
	_, err = e.s.RegisterFile(context.Background(), Image{Name: "bad", Owner: e.boot.AdminProject, DiskFormat: "qcow2",
		ContainerFormat: "bare"}, filepath.Join(dir, "backed.qcow2"))
	wantKind(t, err, fault.Invalid)
}

// gatedReader returns its data, then blocks until released.
type gatedReader struct {
	data    []byte
	started chan struct{}
	release chan struct{}
}

func (g *gatedReader) Read(p []byte) (int, error) {
	if len(g.data) > 0 {
		n := copy(p, g.data)
		g.data = g.data[n:]
		return n, nil
	}
	if g.started != nil {
		close(g.started)
		g.started = nil
		<-g.release
	}
	return 0, io.EOF
}

// An image deleted while its data streams in ends deleted, with nothing
// kept on disk.
func TestUploadDeletedMeanwhile(t *testing.T) {
	requireQemu(t)
	e := newEnv(t)
	img := e.create(e.demo, Image{Name: "racy", DiskFormat: "raw", ContainerFormat: "bare"})
	g := &gatedReader{data: []byte("some bytes"), started: make(chan struct{}), release: make(chan struct{})}
	started := g.started
	done := make(chan error, 1)
	go func() {
		_, err := e.s.Upload(e.demo, img.ID, g, -1)
		done <- err
	}()
	<-started
	got, err := e.s.GetImage(e.demo, img.ID)
	ok(t, err)
	if got.Status != StatusSaving {
		t.Errorf("status while uploading: %s", got.Status)
	}
	ok(t, e.s.DeleteImage(e.demo, img.ID))
	close(g.release)
	wantKind(t, <-done, fault.NotFound)
	if files := e.storedFiles(); len(files) != 0 {
		t.Errorf("files left: %v", files)
	}
}

// Parallel creates never take a project past its image quota.
func TestImageQuotaParallel(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.ImageQuota = 5 })
	errs := make(chan error, 20)
	for range 20 {
		go func() {
			_, err := e.s.CreateImage(e.demo, Image{Name: "p"})
			errs <- err
		}()
	}
	created := 0
	for range 20 {
		err := <-errs
		switch {
		case err == nil:
			created++
		case !fault.Is(err, fault.TooLarge):
			t.Errorf("unexpected error %v", err)
		}
	}
	if created != 5 {
		t.Errorf("created %d images, quota 5", created)
	}
}
