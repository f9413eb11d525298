package libvirt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/nimbus-cloud/nimbus/agents/agentapi"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// limits bound a helper process (DESIGN §10: qemu-img runs under CPU and
// memory limits, since a hostile image can make it spin or balloon).
type limits struct {
	addressSpace int64 // bytes, 0 for none
	cpuSeconds   int   // 0 for none
}

var (
	// infoLimits are the ones Nova uses for qemu-img info.
	infoLimits = limits{addressSpace: 1 << 30, cpuSeconds: 30}
	// workLimits bound create, resize and convert, which legitimately take
	// longer on big disks.
	workLimits = limits{addressSpace: 2 << 30, cpuSeconds: 3600}
)

// tools runs the host programs the driver needs (qemu-img, genisoimage,
// mkswap, mkfs.ext4). Unit tests replace it.
type tools interface {
	run(ctx context.Context, lim limits, name string, args ...string) ([]byte, error)
}

// execTools runs real programs, under prlimit when it is installed.
type execTools struct{}

func (execTools) run(ctx context.Context, lim limits, name string, args ...string) ([]byte, error) {
	argv := append([]string{name}, args...)
	if pl, err := exec.LookPath("prlimit"); err == nil && (lim.addressSpace > 0 || lim.cpuSeconds > 0) {
		pre := []string{pl}
		if lim.addressSpace > 0 {
			pre = append(pre, "--as="+strconv.FormatInt(lim.addressSpace, 10))
		}
		if lim.cpuSeconds > 0 {
			pre = append(pre, "--cpu="+strconv.Itoa(lim.cpuSeconds))
		}
		argv = append(append(pre, "--"), argv...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 2000 {
			msg = msg[len(msg)-2000:]
		}
		return nil, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, msg)
	}
	return stdout.Bytes(), nil
}

// imageInfo is the part of `qemu-img info --output=json` the driver checks.
type imageInfo struct {
	Format          string `json:"format"`
	VirtualSize     int64  `json:"virtual-size"`
	BackingFilename string `json:"backing-filename"`
	FullBacking     string `json:"full-backing-filename"`
	FormatSpecific  struct {
		Data struct {
			DataFile string `json:"data-file"`
		} `json:"data"`
	} `json:"format-specific"`
}

// inspectBase checks a cached base image before anything is built on it:
// it must be what it claims to be, and must not point at any other file (a
// backing file or an external data file could expose host files to the
// guest). The image service checks this at upload; the host checks again,
// since it is the one that would be hurt.
func (d *Driver) inspectBase(ctx context.Context, path, format string) (*imageInfo, error) {
	out, err := d.tools.run(ctx, infoLimits, "qemu-img", "info", "-f", format, "--output=json", path)
	if err != nil {
		return nil, fault.Wrap(fault.Invalid, err, fmt.Sprintf("The image is not a valid %s disk.", format))
	}
	var info imageInfo
	if err := json.Unmarshal(out, &info); err != nil {
		return nil, fault.Wrap(fault.Internal, err, "parse qemu-img info")
	}
	if info.Format != format {
		return nil, fault.Invalidf("The image is %s, not the declared %s.", info.Format, format)
	}
	if info.BackingFilename != "" || info.FullBacking != "" || info.FormatSpecific.Data.DataFile != "" {
		return nil, fault.Invalidf("The image refers to another file; images must be self-contained.")
	}
	return &info, nil
}

// createOverlay makes a qcow2 overlay on base, grown to sizeBytes when that
// is larger than the base. Formats are always explicit, so qemu-img never
// guesses one from content.
func (d *Driver) createOverlay(ctx context.Context, base, baseFormat, overlay string, sizeBytes, baseSize int64) error {
	if _, err := d.tools.run(ctx, workLimits, "qemu-img", "create", "-q", "-f", "qcow2", "-F", baseFormat, "-b", base, overlay); err != nil {
		return fault.Wrap(fault.Internal, err, "create root disk")
	}
	if sizeBytes > baseSize {
		if _, err := d.tools.run(ctx, workLimits, "qemu-img", "resize", "-q", "-f", "qcow2", overlay, strconv.FormatInt(sizeBytes, 10)); err != nil {
			return fault.Wrap(fault.Internal, err, "grow root disk")
		}
	}
	return nil
}

// createBlank makes an empty disk: ephemeral space as an ext4 file system
// labelled ephemeral0 (what cloud-init mounts), swap formatted as swap.
func (d *Driver) createBlank(ctx context.Context, path string, sizeBytes int64, swap bool) error {
	if _, err := d.tools.run(ctx, workLimits, "qemu-img", "create", "-q", "-f", "raw", path, strconv.FormatInt(sizeBytes, 10)); err != nil {
		return fault.Wrap(fault.Internal, err, "create disk")
	}
	var err error
	if swap {
		_, err = d.tools.run(ctx, workLimits, "mkswap", "-L", "swap0", path)
	} else {
		_, err = d.tools.run(ctx, workLimits, "mkfs.ext4", "-q", "-F", "-L", "ephemeral0", path)
	}
	if err != nil {
		return fault.Wrap(fault.Internal, err, "format disk")
	}
	return nil
}

// buildConfigDrive writes an ISO 9660 config drive labelled config-2 from
// the spec's files. Paths were validated by the agent (clean, relative);
// they are joined under a fresh staging directory and checked again.
func (d *Driver) buildConfigDrive(ctx context.Context, cd *agentapi.ConfigDrive, out string) error {
	stage, err := os.MkdirTemp(filepath.Dir(out), ".config-drive-")
	if err != nil {
		return fault.Wrap(fault.Internal, err, "stage config drive")
	}
	defer os.RemoveAll(stage)
	names := make([]string, 0, len(cd.Files))
	for name := range cd.Files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p := filepath.Join(stage, filepath.FromSlash(name))
		if rel, err := filepath.Rel(stage, p); err != nil || rel == "." || strings.HasPrefix(rel, "..") {
			return fault.Invalidf("Config drive path %q leaves the drive.", name)
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fault.Wrap(fault.Internal, err, "stage config drive")
		}
		if err := os.WriteFile(p, cd.Files[name], 0o644); err != nil {
			return fault.Wrap(fault.Internal, err, "stage config drive")
		}
	}
	_, err = d.tools.run(ctx, workLimits, "genisoimage", "-o", out, "-quiet", "-ldots", "-allow-lowercase",
		"-allow-multidot", "-l", "-publisher", "Nimbus", "-V", "config-2", "-J", "-r", stage)
	if err != nil {
		return fault.Wrap(fault.Internal, err, "build config drive")
	}
	return nil
}

// convertStandalone flattens an overlay and its backing chain into one
// self-contained qcow2 (a snapshot).
func (d *Driver) convertStandalone(ctx context.Context, overlay, out string) error {
	if _, err := d.tools.run(ctx, workLimits, "qemu-img", "convert", "-q", "-f", "qcow2", "-O", "qcow2", overlay, out); err != nil {
		return fault.Wrap(fault.Internal, err, "convert snapshot")
	}
	return nil
}
