package libvirt_test

// Integration tests against a real libvirtd. They skip with a reason when
// the host cannot run them (not root, no libvirtd, no qemu) unless CI=true,
// where a skip would hide a regression and they fail instead. When the
// socket is absent they start virtlogd and libvirtd themselves (hosts
// without systemd).

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/nimbus-cloud/nimbus/agents/agentapi"
	"github.com/nimbus-cloud/nimbus/agents/libvirt"
	"github.com/nimbus-cloud/nimbus/backend/hosts"
	"github.com/nimbus-cloud/nimbus/backend/image/tinyimage"
	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
	"github.com/nimbus-cloud/nimbus/backend/platform/db"
	"github.com/nimbus-cloud/nimbus/migrations"
)

// requireLibvirt skips (or, under CI=true, fails) unless libvirtd can be
// used, starting it when its socket is missing.
func requireLibvirt(t *testing.T) {
	t.Helper()
	skip := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true, libvirt integration test cannot run: "+format, args...)
		}
		t.Skipf("libvirt integration test skipped: "+format, args...)
	}
	if os.Geteuid() != 0 {
		skip("needs root (libvirtd's system socket, qemu)")
	}
	for _, tool := range []string{"libvirtd", "virtlogd", "virsh", "qemu-img", "qemu-system-x86_64", "genisoimage"} {
		if _, err := exec.LookPath(tool); err != nil {
			skip("%s not installed (apt-get install libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils genisoimage)", tool)
		}
	}
	dial := func() error {
		c, err := net.DialTimeout("unix", libvirt.DefaultSocket, 5*time.Second)
		if err == nil {
			c.Close()
		}
		return err
	}
	if dial() == nil {
		return
	}
	// No socket, or a stale one: start the daemons (they daemonise and
	// outlive the test, as a system service would).
	for _, daemon := range []string{"virtlogd", "libvirtd"} {
		if out, err := exec.Command(daemon, "-d").CombinedOutput(); err != nil {
			skip("cannot start %s: %v: %s", daemon, err, out)
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := dial()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			skip("libvirtd unreachable at %s after starting it: %v", libvirt.DefaultSocket, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// guestImage is the image the tests boot: the tiny image when it builds
// here, otherwise an empty qcow2 that only runs the firmware (enough for
// lifecycle tests, not for the console or the KVM probe).
var guestImage struct {
	once sync.Once
	path string
	tiny bool
	why  string
	dir  string
}

func testImage(t *testing.T) (path string, tiny bool) {
	t.Helper()
	guestImage.once.Do(func() {
		dir, err := os.MkdirTemp("", "nimbus-libvirt-image-")
		if err != nil {
			t.Fatal(err)
		}
		guestImage.dir = dir
		_ = os.Chmod(dir, 0o755)
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		start := time.Now()
		p := filepath.Join(dir, "tiny.qcow2")
		if _, err := tinyimage.Build(ctx, tinyimage.Options{OutputPath: p, CacheDir: os.Getenv("NIMBUS_TINYIMAGE_CACHE")}); err == nil {
			guestImage.path, guestImage.tiny = p, true
			guestImage.why = "tiny image built in " + time.Since(start).Round(time.Second).String()
			return
		} else {
			guestImage.why = "tiny image unavailable (" + err.Error() + "); booting an empty disk"
		}
		p = filepath.Join(dir, "blank.qcow2")
		if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", p, "64M").CombinedOutput(); err != nil {
			t.Fatalf("qemu-img create: %v: %s", err, out)
		}
		guestImage.path = p
	})
	t.Log(guestImage.why)
	return guestImage.path, guestImage.tiny
}

func TestMain(m *testing.M) {
	code := m.Run()
	if guestImage.dir != "" {
		os.RemoveAll(guestImage.dir)
	}
	os.Exit(code)
}

// stateDir is a state directory qemu (running as its own user) can reach:
// t.TempDir's parents are private to root.
func stateDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "nimbus-libvirt-test-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// syncBuffer is a log sink read while the driver writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestLibvirtVirtTypeAutoFallsBack(t *testing.T) {
	requireLibvirt(t)
	img, tiny := testImage(t)
	if !tiny {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true: the KVM probe needs the tiny image (a real kernel); firmware alone runs on broken KVM hosts")
		}
		t.Skip("the KVM probe needs the tiny image (a real kernel); firmware alone runs even where KVM is broken")
	}
	if _, err := os.Stat("/dev/kvm"); err != nil {
		t.Skip("no /dev/kvm: auto falls back without booting anything, nothing to probe")
	}
	logs := &syncBuffer{}
	dir := stateDir(t)
	start := time.Now()
	drv, err := libvirt.New(context.Background(), libvirt.Config{
		StateDir: dir, VirtType: libvirt.VirtAuto, ProbeImage: img, ProbeFormat: "qcow2",
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer drv.Close()
	t.Logf("probe took %s: %s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(logs.String()))
	// This machine's /dev/kvm is a nested PVM host that crashes real
	// kernels: the probe must notice and fall back, with a warning.
	if drv.VirtType() != libvirt.VirtQEMU {
		t.Fatalf("virt_type auto chose %q on this host, want qemu", drv.VirtType())
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "falling back to qemu") {
		t.Fatalf("no fallback warning logged: %s", logs.String())
	}
	// The probe leaves no domain or file behind, and caches its verdict.
	if out, _ := exec.Command("virsh", "-c", "qemu:///system", "list", "--all", "--name").Output(); strings.Contains(string(out), "nimbus-probe-") {
		t.Fatalf("probe domain left behind: %s", out)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "probe-") {
			t.Fatalf("probe files left behind: %s", e.Name())
		}
	}
	drv.Close()
	logs2 := &syncBuffer{}
	start = time.Now()
	drv2, err := libvirt.New(context.Background(), libvirt.Config{StateDir: dir, ProbeImage: img,
		Logger: slog.New(slog.NewTextHandler(logs2, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer drv2.Close()
	if drv2.VirtType() != libvirt.VirtQEMU || time.Since(start) > 2*time.Second || !strings.Contains(logs2.String(), "cached") {
		t.Fatalf("second start: %s after %s, logs %s", drv2.VirtType(), time.Since(start), logs2.String())
	}
}

// controller is the control-plane side for the agent under test: a real
// host registry serving the test image from memory.
type controller struct {
	reg    *hosts.Registry
	url    string
	mu     sync.Mutex
	ops    map[string]agentapi.Operation
	images map[string][]byte
}

func (c *controller) Heartbeat(context.Context, hosts.Host, agentapi.Heartbeat) ([]string, error) {
	return nil, nil
}
func (c *controller) Events(context.Context, hosts.Host, []agentapi.Event) error { return nil }
func (c *controller) Operation(_ context.Context, _ hosts.Host, op agentapi.Operation) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ops[op.ID] = op
	return nil
}
func (c *controller) OpenImage(_ context.Context, id string) (io.ReadCloser, int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.images[id]
	return io.NopCloser(bytes.NewReader(b)), int64(len(b)), nil
}
func (c *controller) UploadImage(_ context.Context, id string, r io.Reader, _ int64) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.images[id] = b
	return nil
}

func (c *controller) wait(t *testing.T, id string, within time.Duration) agentapi.Operation {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		c.mu.Lock()
		op, ok := c.ops[id]
		c.mu.Unlock()
		if ok {
			return op
		}
		if time.Now().After(deadline) {
			t.Fatalf("operation %s: no outcome within %s", id, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func newController(t *testing.T) *controller {
	t.Helper()
	d, err := db.Open(filepath.Join(t.TempDir(), "nimbus.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.Migrate(context.Background(), migrations.FS); err != nil {
		t.Fatal(err)
	}
	c := &controller{ops: map[string]agentapi.Operation{}, images: map[string][]byte{}}
	c.reg, err = hosts.New(context.Background(), d, hosts.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	c.reg.Subscribe(c)
	c.reg.SetImageSource(c)
	r := chi.NewRouter()
	r.Mount("/agents", c.reg.Handler())
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	c.url = srv.URL
	return c
}

func (c *controller) token(t *testing.T) string {
	ctx := auth.WithCredentials(context.Background(), &auth.Credentials{UserID: "admin", System: true, Roles: []string{"admin"}})
	tok, err := c.reg.CreateJoinToken(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// addImage stores an image and returns its agentapi description.
func (c *controller) addImage(t *testing.T, id, path string) agentapi.Image {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha512.Sum512(b)
	c.mu.Lock()
	c.images[id] = b
	c.mu.Unlock()
	return agentapi.Image{ID: id, DiskFormat: "qcow2", Size: int64(len(b)), Checksum: hex.EncodeToString(sum[:])}
}

func virsh(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("virsh", append([]string{"-c", "qemu:///system"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("virsh %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func qemuImgInfo(t *testing.T, path string) map[string]any {
	t.Helper()
	out, err := exec.Command("qemu-img", "info", "-U", "-f", "qcow2", "--output=json", path).Output()
	if err != nil {
		t.Fatalf("qemu-img info %s: %v", path, err)
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
