package tinyimage

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// The disk is a raw file with an MBR (syslinux's boot code) and one bootable
// ext2 partition at 1 MiB holding extlinux, the kernel and the initramfs;
// it is converted to a compressed qcow2 at the end. ext2 because extlinux
// reads it (and ext3/4 with fewer features) and the kernel never mounts it.
//
// There is no udev on the build hosts, so partition device nodes of a
// partitioned loop device (losetup -P) never appear; the partition is
// attached on its own with losetup --offset/--sizelimit instead.

const (
	sectorSize     = 512
	partStartLBA   = 2048 // 1 MiB, the usual alignment
	minSizeMiB     = 24   // kernel (~14 MiB) + initramfs + ext2 overhead
	mib            = 1 << 20
	diskSignature  = 0x4e494d42 // "NIMB"; fixed so builds are reproducible
	partitionLabel = "nimbus-boot"
)

// kernelCmdline sends the console to the serial port (the console log) and
// to the VGA text console (VNC); with two console= the last one, ttyS0, is
// /dev/console for init.
const kernelCmdline = "console=tty0 console=ttyS0,115200n8 quiet"

// validKernelVersion guards the version string that ends up in extlinux.conf
// and in paths; it comes from a file name inside the kernel package.
var validKernelVersion = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]*$`)

// extlinuxConfig boots the kernel at once: PROMPT 0 and TIMEOUT 0 mean no
// menu and no wait. SERIAL must be the file's first directive; it mirrors
// the bootloader's own messages to ttyS0.
func extlinuxConfig(version string) string {
	return fmt.Sprintf(`SERIAL 0 115200
# Nimbus tiny guest: no menu, no timeout.
DEFAULT nimbus
PROMPT 0
TIMEOUT 0
LABEL nimbus
  LINUX /boot/vmlinuz-%[1]s
  INITRD /boot/initrd.img-%[1]s
  APPEND %[2]s
`, version, kernelCmdline)
}

type diskSpec struct {
	workDir  string
	output   string
	sizeMiB  int
	kernel   *kernelFiles
	initrd   []byte
	extlinux string
}

// buildDisk writes spec.output and returns its virtual size.
func buildDisk(ctx context.Context, log *slog.Logger, spec diskSpec) (_ int64, err error) {
	if !validKernelVersion.MatchString(spec.kernel.version) {
		return 0, fmt.Errorf("kernel version %q: unexpected characters", spec.kernel.version)
	}
	size := int64(spec.sizeMiB) * mib
	partOffset := int64(partStartLBA) * sectorSize
	partSize := size - partOffset
	kst, err := os.Stat(spec.kernel.vmlinuz)
	if err != nil {
		return 0, err
	}
	// ext2 metadata takes a few percent; leave room for it and ldlinux.
	if need := kst.Size() + int64(len(spec.initrd)) + 2*mib; need > partSize*9/10 {
		return 0, fault.Invalidf("tiny image: %d MiB is too small for %d MiB of boot files", spec.sizeMiB, need/mib+1)
	}

	rv := newReverter(log)
	defer func() {
		if err != nil {
			_ = rv.Revert(ctx) // logged by the reverter; err says what failed first
		}
	}()

	raw := filepath.Join(spec.workDir, "disk.raw")
	if err := createRaw(raw, size); err != nil {
		return 0, err
	}
	rv.Add("remove raw disk", func(context.Context) error { return os.Remove(raw) })

	start := time.Now()
	if err := populatePartition(ctx, log, raw, partOffset, partSize, spec); err != nil {
		return 0, err
	}
	log.Info("tiny image: boot partition written", "elapsed", time.Since(start).Round(time.Millisecond))

	// A temporary name in the output's directory makes the final rename
	// atomic: a reader never sees a half-written image.
	tmpFile, err := os.CreateTemp(filepath.Dir(spec.output), "."+filepath.Base(spec.output)+".tmp-")
	if err != nil {
		return 0, fmt.Errorf("create output: %w", err)
	}
	tmp := tmpFile.Name()
	tmpFile.Close()
	rv.Add("remove temporary output", func(context.Context) error { return os.Remove(tmp) })
	if _, err := runCmd(ctx, log, "", "qemu-img", "convert", "-f", "raw", "-O", "qcow2", "-c", raw, tmp); err != nil {
		return 0, fmt.Errorf("convert to qcow2: %w", err)
	}
	info, err := qemuImgInfo(ctx, log, tmp)
	if err != nil {
		return 0, err
	}
	if info.Format != "qcow2" || info.BackingFilename != "" || info.VirtualSize != size {
		return 0, fmt.Errorf("converted image: format %q, backing %q, virtual size %d; want qcow2, none, %d",
			info.Format, info.BackingFilename, info.VirtualSize, size)
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		return 0, err
	}
	if err := os.Rename(tmp, spec.output); err != nil {
		return 0, fmt.Errorf("move image into place: %w", err)
	}
	rv.Success()
	if err := os.Remove(raw); err != nil {
		log.Warn("tiny image: remove raw disk", "err", err)
	}
	return size, nil
}

// createRaw creates a sparse raw disk with an MBR whose one partition, type
// Linux and bootable, runs from partStartLBA to the end.
func createRaw(raw string, size int64) error {
	mbrCode, err := os.ReadFile(mbrPath)
	if err != nil {
		return fmt.Errorf("read syslinux MBR: %w", err)
	}
	f, err := os.OpenFile(raw, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("create raw disk: %w", err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("size raw disk: %w", err)
	}
	mbr, err := buildMBR(mbrCode, size/sectorSize)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(mbr, 0); err != nil {
		return fmt.Errorf("write MBR: %w", err)
	}
	return f.Close()
}

// buildMBR returns sector 0: boot code, disk signature, one partition entry
// and the 0x55AA signature.
func buildMBR(bootCode []byte, totalSectors int64) ([]byte, error) {
	if len(bootCode) > 440 {
		return nil, fmt.Errorf("MBR boot code is %d bytes, at most 440 fit", len(bootCode))
	}
	if totalSectors <= partStartLBA || totalSectors > 1<<32 {
		return nil, fmt.Errorf("disk of %d sectors cannot hold an MBR partition at %d", totalSectors, partStartLBA)
	}
	mbr := make([]byte, sectorSize)
	copy(mbr, bootCode)
	binary.LittleEndian.PutUint32(mbr[440:], diskSignature)
	e := mbr[446:462]
	e[0] = 0x80 // bootable: syslinux's mbr.bin boots the active partition
	first := chs(partStartLBA)
	copy(e[1:4], first[:])
	e[4] = 0x83 // Linux
	last := chs(totalSectors - 1)
	copy(e[5:8], last[:])
	binary.LittleEndian.PutUint32(e[8:], partStartLBA)
	binary.LittleEndian.PutUint32(e[12:], uint32(totalSectors-partStartLBA))
	mbr[510], mbr[511] = 0x55, 0xAA
	return mbr, nil
}

// chs encodes an LBA in the legacy cylinder/head/sector form with the usual
// 255 heads and 63 sectors per track; BIOSes and syslinux use LBA (EDD)
// anyway, but the fields should be consistent.
func chs(lba int64) [3]byte {
	const heads, sectors = 255, 63
	c := lba / (heads * sectors)
	if c > 1023 {
		return [3]byte{0xFE, 0xFF, 0xFF}
	}
	h := (lba / sectors) % heads
	s := lba%sectors + 1
	return [3]byte{byte(h), byte(s) | byte((c>>2)&0xC0), byte(c)}
}

// populatePartition makes the file system and installs the boot files and
// extlinux. The loop device and the mount are released before it returns,
// whatever happens.
func populatePartition(ctx context.Context, log *slog.Logger, raw string, offset, size int64, spec diskSpec) (err error) {
	rv := newReverter(log)
	defer func() {
		if rerr := rv.Revert(ctx); rerr != nil && err == nil {
			err = rerr
		}
	}()

	out, err := runCmd(ctx, log, "", "losetup", "--find", "--show",
		"--offset", strconv.FormatInt(offset, 10), "--sizelimit", strconv.FormatInt(size, 10), raw)
	if err != nil {
		return fmt.Errorf("attach partition: %w", err)
	}
	loop := strings.TrimSpace(out)
	if !strings.HasPrefix(loop, "/dev/loop") {
		return fmt.Errorf("attach partition: losetup printed %q", loop)
	}
	rv.Add("detach "+loop, func(ctx context.Context) error {
		_, err := runCmd(ctx, log, "", "losetup", "--detach", loop)
		return err
	})
	log.Debug("tiny image: partition attached", "loop", loop)

	if _, err := runCmd(ctx, log, "", "mkfs.ext2", "-q", "-F", "-L", partitionLabel, "-m", "0", loop); err != nil {
		return fmt.Errorf("make file system: %w", err)
	}
	mnt := filepath.Join(spec.workDir, "mnt")
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		return err
	}
	if _, err := runCmd(ctx, log, "", "mount", "-t", "ext2", "-o", "nosuid,nodev,noexec", loop, mnt); err != nil {
		return fmt.Errorf("mount partition: %w", err)
	}
	rv.Add("unmount "+mnt, func(ctx context.Context) error { return unmount(ctx, log, mnt) })

	v := spec.kernel.version
	extDir := filepath.Join(mnt, "boot", "extlinux")
	if err := os.MkdirAll(extDir, 0o755); err != nil {
		return err
	}
	if err := copyFile(spec.kernel.vmlinuz, filepath.Join(mnt, "boot", "vmlinuz-"+v)); err != nil {
		return fmt.Errorf("copy kernel: %w", err)
	}
	if err := os.WriteFile(filepath.Join(mnt, "boot", "initrd.img-"+v), spec.initrd, 0o644); err != nil {
		return fmt.Errorf("write initramfs: %w", err)
	}
	if err := os.WriteFile(filepath.Join(extDir, "extlinux.conf"), []byte(spec.extlinux), 0o644); err != nil {
		return fmt.Errorf("write extlinux.conf: %w", err)
	}
	if _, err := runCmd(ctx, log, "", "extlinux", "--install", extDir); err != nil {
		return fmt.Errorf("install extlinux: %w", err)
	}
	return nil
}

// unmount retries briefly: right after writing, the kernel may still report
// the file system busy.
func unmount(ctx context.Context, log *slog.Logger, dir string) error {
	var err error
	for i := 0; i < 5; i++ {
		if _, err = runCmd(ctx, log, "", "umount", dir); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(300 * time.Millisecond):
		}
	}
	return err
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// imageInfo is the part of qemu-img info --output=json the builder checks.
type imageInfo struct {
	Format          string `json:"format"`
	VirtualSize     int64  `json:"virtual-size"`
	ActualSize      int64  `json:"actual-size"`
	BackingFilename string `json:"backing-filename"`
}

func qemuImgInfo(ctx context.Context, log *slog.Logger, path string) (*imageInfo, error) {
	out, err := runCmd(ctx, log, "", "qemu-img", "info", "-f", "qcow2", "--output=json", path)
	if err != nil {
		return nil, fmt.Errorf("inspect image: %w", err)
	}
	var info imageInfo
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		return nil, fmt.Errorf("inspect image: parse qemu-img output: %w", err)
	}
	return &info, nil
}
