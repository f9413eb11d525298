package tinyimage

import (
	"bytes"
	"compress/gzip"
	"context"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// guestFiles is the initramfs's own content: /init, the boot script and its
// helpers, inittab, the udhcpc hook and the few /etc files busybox and
// dropbear need. guest/ mirrors the initramfs layout.
//
//go:embed guest
var guestFiles embed.FS

// executableGuestFiles need mode 0755; embed.FS does not keep modes.
var executableGuestFiles = map[string]bool{
	"init":                      true,
	"etc/nimbus/boot":           true,
	"etc/udhcpc/default.script": true,
	"etc/acpi/PWRF/00000080":    true,
}

// kernelFiles are the parts of the unpacked kernel package the image uses.
type kernelFiles struct {
	version    string // "6.1.0-56-cloud-amd64"
	vmlinuz    string // host path of boot/vmlinuz-<version>
	modulesDir string // host path of lib/modules/<version>
}

// findKernel locates the one kernel in an unpacked linux-image package.
func findKernel(root string) (*kernelFiles, error) {
	matches, err := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	if err != nil {
		return nil, err
	}
	if len(matches) != 1 {
		return nil, fmt.Errorf("kernel package: want one boot/vmlinuz-*, found %d", len(matches))
	}
	k := &kernelFiles{vmlinuz: matches[0]}
	k.version = strings.TrimPrefix(filepath.Base(matches[0]), "vmlinuz-")
	if !validKernelVersion.MatchString(k.version) {
		return nil, fmt.Errorf("kernel package: version %q has unexpected characters", k.version)
	}
	for _, dir := range []string{"lib/modules", "usr/lib/modules"} {
		p := filepath.Join(root, dir, k.version)
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			k.modulesDir = p
			break
		}
	}
	if k.modulesDir == "" {
		return nil, fmt.Errorf("kernel package: no lib/modules/%s", k.version)
	}
	return k, nil
}

// dropbearBinaries are taken from dropbear-bin: the server, its key tool
// (host keys are made at first boot) and the client, handy for testing
// connectivity between guests.
var dropbearBinaries = []string{"usr/sbin/dropbear", "usr/bin/dropbearkey", "usr/bin/dbclient"}

// buildInitramfs assembles the gzip-compressed newc archive.
func buildInitramfs(ctx context.Context, log *slog.Logger, k *kernelFiles, in *inputs) ([]byte, error) {
	t := newFileTree()
	for _, d := range []string{"bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "run", "mnt", "var/log"} {
		t.Dir(d, 0o755)
	}
	t.Dir("tmp", 0o777|fs.ModeSticky)
	t.Dir("root", 0o700)
	// The kernel opens /dev/console for init's stdio before /init can mount
	// devtmpfs, so these two nodes must be in the archive itself.
	t.CharDev("dev/console", 0o600, 5, 1)
	t.CharDev("dev/null", 0o666, 1, 3)

	if err := addBusybox(t, in.busybox.root); err != nil {
		return nil, err
	}
	if err := addDropbear(t, in); err != nil {
		return nil, err
	}
	mods, err := addModules(ctx, log, t, k)
	if err != nil {
		return nil, err
	}
	log.Info("tiny image: kernel modules", "count", len(mods), "modules", strings.Join(mods, " "))
	if err := addGuestFiles(t); err != nil {
		return nil, err
	}

	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := t.WriteTo(zw); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// addBusybox adds the static busybox and /bin/sh; /init creates the other
// applet links at boot with "busybox --install -s", so the build never runs
// a guest binary on the host.
func addBusybox(t *fileTree, root string) error {
	bin := filepath.Join(root, "bin", "busybox")
	needed, interp, err := elfNeeded(bin)
	if err != nil {
		return fmt.Errorf("busybox: %w", err)
	}
	if interp != "" || len(needed) > 0 {
		return fmt.Errorf("busybox from %s is not static (interpreter %q, needs %v)", busyboxPackage, interp, needed)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	t.File("bin/busybox", 0o755, data)
	t.Symlink("bin/sh", "busybox")
	return nil
}

// addDropbear adds dropbear with its shared libraries and loader.
func addDropbear(t *fileTree, in *inputs) error {
	var bins []string
	for _, b := range dropbearBinaries {
		bins = append(bins, filepath.Join(in.dropbear.root, filepath.FromSlash(b)))
	}
	libs, err := resolveSharedLibs(bins, in.libRoots())
	if err != nil {
		return fmt.Errorf("dropbear: %w", err)
	}
	for i, b := range dropbearBinaries {
		data, err := os.ReadFile(bins[i])
		if err != nil {
			return err
		}
		t.File(b, 0o755, data)
	}
	for _, soname := range libs.sonames() {
		data, err := os.ReadFile(libs.libs[soname])
		if err != nil {
			return err
		}
		t.File(path.Join(guestLibDir, soname), 0o755, data)
	}
	if libs.interp != "" {
		// The loader is also libc's DT_NEEDED entry, so it is already in
		// guestLibDir; link the PT_INTERP path to it instead of a copy.
		inLibDir := "/" + path.Join(guestLibDir, path.Base(libs.interp))
		if path.Clean(libs.interp) != inLibDir {
			t.Symlink(libs.interp, inLibDir)
		}
	}
	return nil
}

// addModules copies the needed kernel modules (uncompressed), a modules.dep
// for busybox modprobe, and etc/nimbus/modules: the load order for /init.
func addModules(ctx context.Context, log *slog.Logger, t *fileTree, k *kernelFiles) ([]string, error) {
	ms, err := loadModuleSet(ctx, k.modulesDir)
	if err != nil {
		return nil, err
	}
	order, err := resolveModules(ms, requiredModules, optionalModules)
	if err != nil {
		return nil, err
	}
	base := path.Join("lib/modules", k.version)
	guestPath := map[string]string{} // module name -> path relative to base
	var list strings.Builder
	for _, name := range order {
		rel := ms.files[name]
		data, err := readModule(ctx, filepath.Join(k.modulesDir, filepath.FromSlash(rel)))
		if err != nil {
			return nil, err
		}
		guestPath[name] = uncompressedName(rel)
		t.File(path.Join(base, guestPath[name]), 0o644, data)
		fmt.Fprintf(&list, "%s\n", path.Join(base, guestPath[name]))
	}
	var dep strings.Builder
	for _, name := range order {
		closure, err := moduleClosure(ms, name)
		if err != nil {
			return nil, err
		}
		var deps []string
		for _, d := range closure {
			if p, ok := guestPath[d]; ok {
				deps = append(deps, p)
			}
		}
		fmt.Fprintf(&dep, "%s: %s\n", guestPath[name], strings.Join(deps, " "))
	}
	t.File(path.Join(base, "modules.dep"), 0o644, []byte(dep.String()))
	t.File("etc/nimbus/modules", 0o644, []byte(list.String()))
	log.Debug("tiny image: module load order", "order", order)
	return order, nil
}

// moduleClosure lists everything name depends on, nearest first, as depmod
// writes it in modules.dep.
func moduleClosure(ms *moduleSet, name string) ([]string, error) {
	order, err := resolveModules(ms, []string{name}, nil)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(order))
	for i := len(order) - 2; i >= 0; i-- { // drop name itself, last in order
		out = append(out, order[i])
	}
	return out, nil
}

// addGuestFiles copies the embedded guest/ tree into the archive.
func addGuestFiles(t *fileTree) error {
	return fs.WalkDir(guestFiles, "guest", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := guestFiles.ReadFile(p)
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(p, "guest/")
		mode := fs.FileMode(0o644)
		if executableGuestFiles[rel] {
			mode = 0o755
		}
		t.File(rel, mode, data)
		return nil
	})
}
