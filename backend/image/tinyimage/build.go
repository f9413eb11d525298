// Package tinyimage builds Nimbus's "tiny" guest image: a CirrOS-like qcow2
// assembled only from Debian packages (the cloud kernel, busybox-static and
// dropbear), small enough to boot under TCG in a couple of seconds.
//
// The disk carries nothing but the boot files: an MBR with syslinux's boot
// code, one bootable ext2 partition holding extlinux, the kernel and an
// initramfs. The initramfs is the whole root filesystem. Its init loads the
// virtio/CD-ROM modules the cloud kernel does not build in, brings up the
// first NIC by DHCP, reads OpenStack metadata from a config drive or from
// 169.254.169.254, sets the hostname, installs the SSH keys, runs a user-data
// script, starts dropbear and prints a banner on the serial and VGA consoles.
//
// Building needs root (loop devices and a mount) and the host tools of
// [HostPackages]; Build checks for them and never installs anything itself.
package tinyimage

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// HostPackages are the Debian packages whose tools Build runs on the host:
// extlinux (the installer and its mbr.bin) with syslinux-common, which
// extlinux recommends, e2fsprogs (mkfs.ext2) and qemu-utils (qemu-img). The
// Makefile installs them. apt, dpkg and mount (losetup) are essential on
// Debian and not listed.
var HostPackages = []string{"extlinux", "syslinux-common", "e2fsprogs", "qemu-utils"}

// BootTestPackages are the extra host packages the boot test needs: a TCG
// qemu and an ISO writer for the config drive.
var BootTestPackages = []string{"qemu-system-x86", "genisoimage"}

// DefaultSizeMiB is the virtual disk size when Options.SizeMiB is zero. The
// boot files take about 20 MiB; the rest is free space that qcow2 does not
// store.
const DefaultSizeMiB = 64

// Options configures Build.
type Options struct {
	// OutputPath is where the qcow2 image is written (atomically, through a
	// temporary file in the same directory). Required.
	OutputPath string
	// CacheDir keeps downloaded .deb files between builds. Empty means
	// $XDG_CACHE_HOME/nimbus/tinyimage (or ~/.cache/...).
	CacheDir string
	// WorkDir is scratch space for unpacked packages and the raw disk. Empty
	// means a fresh temporary directory, removed when Build returns; a given
	// WorkDir is left in place for inspection.
	WorkDir string
	// SizeMiB is the virtual disk size; zero means DefaultSizeMiB.
	SizeMiB int
	// Logger receives progress; nil discards it.
	Logger *slog.Logger
}

// Result describes a built image.
type Result struct {
	// Path is the qcow2 file (Options.OutputPath).
	Path string
	// SizeBytes is the size of the qcow2 file on disk.
	SizeBytes int64
	// VirtualSize is the disk size the guest sees, in bytes.
	VirtualSize int64
	// KernelVersion is the kernel release, such as "6.1.0-56-cloud-amd64".
	KernelVersion string
	// Packages are the Debian packages the image was built from.
	Packages []Package
}

// Package names one Debian package that went into the image.
type Package struct {
	Name    string
	Version string
	SHA256  string
}

// Build downloads the Debian packages, assembles the initramfs and writes a
// bootable compressed qcow2 to opts.OutputPath. It returns fault.Invalid for
// bad options and fault.Unavailable when not run as root or when host tools
// are missing (the message names them and their packages); anything else
// (apt, loop devices, mkfs) is an internal error with the failing step in its
// text. Loop devices, mounts and partial output are always cleaned up.
func Build(ctx context.Context, opts Options) (_ *Result, err error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.OutputPath == "" {
		return nil, fault.Invalidf("tiny image: output path is required")
	}
	if opts.SizeMiB == 0 {
		opts.SizeMiB = DefaultSizeMiB
	}
	if opts.SizeMiB < minSizeMiB || opts.SizeMiB > 4096 {
		return nil, fault.Invalidf("tiny image: size %d MiB is outside %d..4096", opts.SizeMiB, minSizeMiB)
	}
	if os.Geteuid() != 0 {
		return nil, fault.New(fault.Unavailable, "tiny image: building needs root for loop devices and mounts")
	}
	if err := checkHostTools(); err != nil {
		return nil, err
	}
	if opts.CacheDir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return nil, fault.Wrap(fault.Invalid, err, "tiny image: no cache directory given and none found")
		}
		opts.CacheDir = filepath.Join(base, "nimbus", "tinyimage")
	}
	if err := os.MkdirAll(opts.CacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("create cache dir: %w", err)
	}
	if opts.WorkDir == "" {
		dir, err := os.MkdirTemp("", "nimbus-tinyimage-")
		if err != nil {
			return nil, fmt.Errorf("create work dir: %w", err)
		}
		defer os.RemoveAll(dir)
		opts.WorkDir = dir
	} else if err := os.MkdirAll(opts.WorkDir, 0o755); err != nil {
		return nil, fmt.Errorf("create work dir: %w", err)
	}

	start := time.Now()
	log.Info("tiny image: build started", "output", opts.OutputPath, "cache", opts.CacheDir, "size_mib", opts.SizeMiB)

	pkgs, err := fetchInputs(ctx, log, opts.CacheDir, filepath.Join(opts.WorkDir, "pkgs"))
	if err != nil {
		return nil, err
	}
	kernel, err := findKernel(pkgs.kernel.root)
	if err != nil {
		return nil, err
	}
	log.Info("tiny image: kernel", "version", kernel.version, "vmlinuz", kernel.vmlinuz)

	initrd, err := buildInitramfs(ctx, log, kernel, pkgs)
	if err != nil {
		return nil, fmt.Errorf("build initramfs: %w", err)
	}
	log.Info("tiny image: initramfs built", "bytes", len(initrd))

	virtual, err := buildDisk(ctx, log, diskSpec{
		workDir:  opts.WorkDir,
		output:   opts.OutputPath,
		sizeMiB:  opts.SizeMiB,
		kernel:   kernel,
		initrd:   initrd,
		extlinux: extlinuxConfig(kernel.version),
	})
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(opts.OutputPath)
	if err != nil {
		return nil, fmt.Errorf("stat output: %w", err)
	}
	res := &Result{
		Path:          opts.OutputPath,
		SizeBytes:     st.Size(),
		VirtualSize:   virtual,
		KernelVersion: kernel.version,
	}
	for _, p := range pkgs.all() {
		res.Packages = append(res.Packages, Package{Name: p.Name, Version: p.Version, SHA256: p.SHA256})
	}
	log.Info("tiny image: build finished", "path", res.Path, "bytes", res.SizeBytes,
		"virtual_size", res.VirtualSize, "elapsed", time.Since(start).Round(time.Millisecond))
	return res, nil
}

// hostTools maps each tool Build runs to the Debian package providing it.
var hostTools = []struct{ tool, pkg string }{
	{"apt-get", "apt"},
	{"apt-cache", "apt"},
	{"dpkg-deb", "dpkg"},
	{"losetup", "mount"},
	{"mount", "mount"},
	{"umount", "mount"},
	{"mkfs.ext2", "e2fsprogs"},
	{"extlinux", "extlinux"},
	{"qemu-img", "qemu-utils"},
}

// mbrPath is syslinux's MBR boot code, shipped by the extlinux package.
const mbrPath = "/usr/lib/EXTLINUX/mbr.bin"

// checkHostTools reports every missing tool at once so one apt-get fixes all.
func checkHostTools() error {
	var missing, pkgs []string
	seen := map[string]bool{}
	need := func(what, pkg string) {
		missing = append(missing, fmt.Sprintf("%s (package %s)", what, pkg))
		if !seen[pkg] {
			seen[pkg] = true
			pkgs = append(pkgs, pkg)
		}
	}
	for _, t := range hostTools {
		if _, err := lookPath(t.tool); err != nil {
			need(t.tool, t.pkg)
		}
	}
	if _, err := os.Stat(mbrPath); err != nil {
		need(mbrPath, "extlinux")
	}
	if len(missing) == 0 {
		return nil
	}
	return fault.New(fault.Unavailable, "tiny image: missing host tools: %s; install with: apt-get install -y %s",
		strings.Join(missing, ", "), strings.Join(pkgs, " "))
}
