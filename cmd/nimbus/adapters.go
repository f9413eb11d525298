package main

// Adapters between services. Each service declares the small interface it
// consumes; wiring satisfies it here with another service, so no service
// imports another's internals.

import (
	"context"
	"io"

	"github.com/nimbus-cloud/nimbus/backend/compute"
	"github.com/nimbus-cloud/nimbus/backend/hosts"
	"github.com/nimbus-cloud/nimbus/backend/image"
	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
	"github.com/nimbus-cloud/nimbus/novnc"
)

// serviceContext carries the control plane's own credentials: system-scoped
// admin, for work it does for itself (bootstrap, an agent fetching a base
// image) rather than for a user.
func serviceContext(ctx context.Context) context.Context {
	return auth.WithCredentials(ctx, &auth.Credentials{
		UserID: "nimbus", UserName: "nimbus", System: true,
		Roles: []string{"admin", "member", "reader"},
	})
}

// computeImages is compute's view of the image service.
type computeImages struct{ imgs *image.Service }

func (a computeImages) GetImage(ctx context.Context, id string) (*compute.ImageInfo, error) {
	img, err := a.imgs.GetImage(ctx, id)
	if err != nil {
		return nil, err
	}
	return imageInfo(img), nil
}

func (a computeImages) CreateSnapshotImage(ctx context.Context, spec compute.SnapshotSpec) (*compute.ImageInfo, error) {
	img, err := a.imgs.CreateImage(ctx, image.Image{
		Name:            spec.Name,
		DiskFormat:      spec.DiskFormat,
		ContainerFormat: spec.ContainerFormat,
		MinDisk:         int(spec.MinDiskGB),
		MinRAM:          int(spec.MinRAMMB),
		Properties:      spec.Properties,
	})
	if err != nil {
		return nil, err
	}
	return imageInfo(img), nil
}

// DeleteImage removes a snapshot image whose upload failed. An agent's
// report carries no user, so the control plane then acts for itself.
func (a computeImages) DeleteImage(ctx context.Context, id string) error {
	if _, ok := auth.FromContext(ctx); !ok {
		ctx = serviceContext(ctx)
	}
	return a.imgs.DeleteImage(ctx, id)
}

func imageInfo(img *image.Image) *compute.ImageInfo {
	info := &compute.ImageInfo{
		ID:              img.ID,
		Name:            img.Name,
		Status:          img.Status,
		DiskFormat:      img.DiskFormat,
		ContainerFormat: img.ContainerFormat,
		MinDiskGB:       int64(img.MinDisk),
		MinRAMMB:        int64(img.MinRAM),
		Checksum:        img.Checksum,
		OSHashAlgo:      img.HashAlgo,
		OSHashValue:     img.HashValue,
		Properties:      img.Properties,
	}
	if img.Size != nil {
		info.Size = *img.Size
	}
	if img.VirtualSize != nil {
		info.VirtualSize = *img.VirtualSize
	}
	return info
}

// agentImages serves image content to agents and takes their snapshot
// uploads. The registry has already authenticated the agent, so the
// control plane acts for itself.
type agentImages struct{ imgs *image.Service }

func (a agentImages) OpenImage(ctx context.Context, id string) (io.ReadCloser, int64, error) {
	rc, img, err := a.imgs.OpenContent(serviceContext(ctx), id)
	if err != nil {
		return nil, 0, err
	}
	size := int64(-1)
	if img.Size != nil {
		size = *img.Size
	}
	return rc, size, nil
}

func (a agentImages) UploadImage(ctx context.Context, id string, r io.Reader, size int64) error {
	_, err := a.imgs.Upload(serviceContext(ctx), id, r, size)
	return err
}

// consoleTokens lets the console proxy consume compute's console tokens.
type consoleTokens struct{ comp *compute.Service }

func (c consoleTokens) ConsumeConsoleToken(ctx context.Context, token string) (*novnc.Target, error) {
	t, err := c.comp.ConsumeConsoleToken(ctx, token)
	if err != nil {
		return nil, err
	}
	return &novnc.Target{InstanceUUID: t.InstanceUUID, HostID: t.HostID}, nil
}

// vncDialer reaches an instance's VNC server through its host's agent.
type vncDialer struct{ reg *hosts.Registry }

func (d vncDialer) DialVNC(ctx context.Context, hostID, uuid string) (io.ReadWriteCloser, error) {
	c, err := d.reg.Client(ctx, hostID)
	if err != nil {
		return nil, err
	}
	return c.DialVNC(ctx, uuid)
}
