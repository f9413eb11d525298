package image

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// qemu-img limits, as OpenStack applies them (oslo.concurrency
// ProcessLimits for `qemu-img info`): 1 GiB of address space and 30 s of
// CPU time, enforced by prlimit(1) in the child; the wall-clock timeout is
// enforced here by killing it.
const (
	qemuAddressSpace = 1 << 30
	qemuCPUSeconds   = 30
	qemuMaxOutput    = 1 << 20
)

// qemuRunner runs `qemu-img info`.
type qemuRunner struct {
	bin     string
	timeout time.Duration
}

// prlimitPath is prlimit(1) when installed (util-linux); without it
// qemu-img still runs with -f and the timeout, but without the memory and
// CPU limits.
var prlimitPath = sync.OnceValue(func() string {
	p, err := exec.LookPath("prlimit")
	if err != nil {
		return ""
	}
	return p
})

// qemuInfo is the part of `qemu-img info --output=json` we rely on.
type qemuInfo struct {
	Format              string `json:"format"`
	VirtualSize         int64  `json:"virtual-size"`
	BackingFilename     string `json:"backing-filename"`
	FullBackingFilename string `json:"full-backing-filename"`
	BackingFormat       string `json:"backing-filename-format"`
	FormatSpecific      *struct {
		Type string          `json:"type"`
		Data json.RawMessage `json:"data"`
	} `json:"format-specific"`
}

// limitedBuffer keeps at most max bytes and remembers it was cut.
type limitedBuffer struct {
	bytes.Buffer
	max  int
	over bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); len(p) > room {
		b.over = true
		p = p[:max(room, 0)]
	}
	b.Buffer.Write(p)
	return len(p), nil
}

// info runs `qemu-img info -f <format> --output=json <path>`. The format is
// always explicit, so qemu never probes; path must be absolute, so qemu
// never reads it as a protocol ("nbd:", "json:").
func (q qemuRunner) info(ctx context.Context, path, format string) (*qemuInfo, error) {
	if !strings.HasPrefix(path, "/") {
		return nil, fmt.Errorf("qemu-img info: path %q is not absolute", path)
	}
	ctx, cancel := context.WithTimeout(ctx, q.timeout)
	defer cancel()
	args := []string{"info", "-f", format, "--output=json", path}
	name := q.bin
	if pl := prlimitPath(); pl != "" {
		args = append([]string{"--as=" + strconv.Itoa(qemuAddressSpace), "--cpu=" + strconv.Itoa(qemuCPUSeconds), "--", q.bin}, args...)
		name = pl
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = []string{"LC_ALL=C", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.WaitDelay = time.Second
	stdout := &limitedBuffer{max: qemuMaxOutput}
	stderr := &limitedBuffer{max: 4096}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		return nil, fmt.Errorf("qemu-img info timed out after %s", q.timeout)
	}
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, &qemuFailed{msg: strings.TrimSpace(stderr.String())}
		}
		return nil, fmt.Errorf("run qemu-img: %w", err)
	}
	if stdout.over {
		return nil, fmt.Errorf("qemu-img info printed more than %d bytes", qemuMaxOutput)
	}
	var info qemuInfo
	if err := json.Unmarshal(stdout.Bytes(), &info); err != nil {
		return nil, fmt.Errorf("parse qemu-img info output: %w", err)
	}
	return &info, nil
}

// qemuFailed is qemu-img refusing the data: the image is invalid for its
// declared format, which is the uploader's fault, not ours.
type qemuFailed struct{ msg string }

func (e *qemuFailed) Error() string { return "qemu-img info failed: " + e.msg }

// qemuFormat is the qemu driver for a Glance disk format.
func qemuFormat(diskFormat string) string {
	switch diskFormat {
	case "qcow2", "vmdk", "vdi", "vhdx":
		return diskFormat
	case "vhd":
		return "vpc"
	default: // raw, iso, ami, ari, aki
		return "raw"
	}
}

// detectedFormat is the DetectFormat result a Glance disk format must have.
func detectedFormat(diskFormat string) string {
	switch diskFormat {
	case "qcow2", "vmdk", "vdi", "vhdx", "vhd", "iso":
		return diskFormat
	default:
		return "raw"
	}
}

// checkQemuInfo verifies what qemu-img saw: the declared driver, no
// backing file, no external data file, and VMDK extents only inside the
// image itself.
func checkQemuInfo(info *qemuInfo, path, diskFormat string) error {
	want := qemuFormat(diskFormat)
	if info.Format != want {
		return unsafeImage(diskFormat, "qemu-img reports format %q, not %q", truncate(info.Format, 32), want)
	}
	if info.BackingFilename != "" || info.FullBackingFilename != "" || info.BackingFormat != "" {
		return unsafeImage(diskFormat, "the image has a backing file")
	}
	if info.VirtualSize < 0 {
		return unsafeImage(diskFormat, "qemu-img reports a negative virtual size")
	}
	if info.FormatSpecific == nil || len(info.FormatSpecific.Data) == 0 {
		return nil
	}
	var data struct {
		DataFile *string `json:"data-file"`
		Extents  []struct {
			Filename string `json:"filename"`
		} `json:"extents"`
	}
	if err := json.Unmarshal(info.FormatSpecific.Data, &data); err != nil {
		return fmt.Errorf("parse qemu-img format-specific data: %w", err)
	}
	if data.DataFile != nil {
		return unsafeImage(diskFormat, "the image has an external data file")
	}
	for _, e := range data.Extents {
		if e.Filename != path {
			return unsafeImage(diskFormat, "the VMDK image has an extent outside the image")
		}
	}
	return nil
}
