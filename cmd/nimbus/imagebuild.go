package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/nimbus-cloud/nimbus/backend/image"
	"github.com/nimbus-cloud/nimbus/backend/image/tinyimage"
)

// tinyImageFile is where `nimbus image build` writes the guest image by
// default, and where `nimbus up` looks for it to register as "tiny".
const tinyImageFile = "tiny.qcow2"

// imageBuild runs `nimbus image build`: the tiny guest image from Debian
// packages (needs root for loop devices).
func imageBuild(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("nimbus image build", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := getenv("NIMBUS_DATA")
	if data == "" {
		data = "./data"
	}
	output := fs.String("output", filepath.Join(data, tinyImageFile), "where to write the qcow2 image")
	cacheDir := fs.String("cache-dir", "", "where downloaded .deb packages are kept (default: the user cache dir)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	res, err := tinyimage.Build(ctx, tinyimage.Options{OutputPath: *output, CacheDir: *cacheDir, Logger: log})
	if err != nil {
		return fmt.Errorf("build tiny image: %w", err)
	}
	fmt.Fprintf(stdout, "built %s: %d bytes, virtual %d MiB, kernel %s\n",
		res.Path, res.SizeBytes, res.VirtualSize>>20, res.KernelVersion)
	return nil
}

// registerTinyImage makes the built guest image the public image "tiny"
// once; later starts find it registered and change nothing. Without a
// built image the cloud still runs, and says how to build one.
func registerTinyImage(ctx context.Context, imgs *image.Service, owner, path string, log *slog.Logger) error {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		log.Warn("no tiny guest image to register: build it with `nimbus image build` (make image)", "path", path)
		return nil
	}
	img, err := imgs.RegisterFile(ctx, image.Image{
		Name:            "tiny",
		Owner:           owner,
		Visibility:      "public",
		DiskFormat:      "qcow2",
		ContainerFormat: "bare",
		MinDisk:         1,
		MinRAM:          64,
		Properties:      map[string]string{"os_distro": "nimbus-tiny", "os_type": "linux"},
	}, path)
	if err != nil {
		return fmt.Errorf("register tiny image: %w", err)
	}
	log.Info("tiny guest image registered", "id", img.ID, "status", img.Status)
	return nil
}
