package main

// Adapters between services. Each service declares the small interface it
// consumes; wiring satisfies it here with another service, so no service
// imports another's internals.

import (
	"context"
	"fmt"
	"io"

	"github.com/nimbus-cloud/nimbus/backend/compute"
	"github.com/nimbus-cloud/nimbus/backend/hosts"
	"github.com/nimbus-cloud/nimbus/backend/image"
	"github.com/nimbus-cloud/nimbus/backend/network"
	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
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

var _ compute.NetworkPorts = computeNetworks{}

// computeNetworks is compute's view of the network service. Lookups, port
// creation and floating IP changes act for the user in ctx; binding
// (binding:host_id is admin-only in Neutron), unbinding, listing an
// instance's ports and deleting them act for the control plane, since
// cleanups run from agent reports and background work that carry no user.
//
// wire, when set, puts a bound port's network and security on its host
// before BindPort returns, so the guest compute boots next finds its
// bridge and never runs unprotected.
type computeNetworks struct {
	nets *network.Service
	wire func(ctx context.Context, portID string) error
}

func (a computeNetworks) ListNetworks(ctx context.Context) ([]compute.NetworkInfo, error) {
	list, _, err := a.nets.ListNetworks(ctx, network.ListOptions{})
	if err != nil {
		return nil, err
	}
	out := make([]compute.NetworkInfo, 0, len(list))
	for i := range list {
		out = append(out, computeNetworkInfo(&list[i]))
	}
	return out, nil
}

func (a computeNetworks) GetNetwork(ctx context.Context, id string) (*compute.NetworkInfo, error) {
	n, err := a.nets.GetNetwork(ctx, id)
	if err != nil {
		return nil, err
	}
	info := computeNetworkInfo(n)
	return &info, nil
}

func (a computeNetworks) GetPort(ctx context.Context, id string) (*compute.PortInfo, error) {
	p, err := a.nets.GetPort(ctx, id)
	if err != nil {
		return nil, err
	}
	return a.portInfo(ctx, p), nil
}

func (a computeNetworks) CreatePort(ctx context.Context, req compute.PortRequest) (*compute.PortInfo, error) {
	in := network.PortCreate{NetworkID: req.NetworkID, ProjectID: req.ProjectID, DeviceID: req.DeviceID, DeviceOwner: req.DeviceOwner}
	if req.FixedIP != "" {
		in.FixedIPs = []network.FixedIPRequest{{IPAddress: req.FixedIP}}
	}
	groups, err := a.securityGroups(ctx, req.SecurityGroups)
	if err != nil {
		return nil, err
	}
	in.SecurityGroups = groups
	p, err := a.nets.CreatePort(ctx, in)
	if err != nil {
		return nil, err
	}
	return a.portInfo(ctx, p), nil
}

// securityGroups resolves group names (or IDs) the caller can see to IDs;
// only "default" (or nothing) is nil, the project's default group.
func (a computeNetworks) securityGroups(ctx context.Context, names []string) ([]string, error) {
	onlyDefault := true
	for _, n := range names {
		onlyDefault = onlyDefault && n == "default"
	}
	if onlyDefault {
		return nil, nil
	}
	list, _, err := a.nets.ListSecurityGroups(ctx, network.ListOptions{})
	if err != nil {
		return nil, err
	}
	c, _ := auth.FromContext(ctx)
	var ids []string
	for _, n := range names {
		found := ""
		for _, g := range list {
			if g.ID == n || (g.Name == n && (c == nil || g.ProjectID == c.ProjectID)) {
				found = g.ID
				break
			}
		}
		if found == "" {
			return nil, fault.Invalidf("Security group %s not found.", n)
		}
		ids = append(ids, found)
	}
	return ids, nil
}

func (a computeNetworks) BindPort(ctx context.Context, portID, deviceID, deviceOwner, hostname string) (*compute.PortInfo, error) {
	sctx := serviceContext(ctx)
	p, err := a.nets.UpdatePort(sctx, portID, network.PortUpdate{DeviceID: &deviceID, DeviceOwner: &deviceOwner, BindingHostID: &hostname})
	if err != nil {
		return nil, err
	}
	if a.wire != nil {
		if err := a.wire(sctx, portID); err != nil {
			return nil, fmt.Errorf("wire port %s on %s: %w", portID, hostname, err)
		}
	}
	return a.portInfo(sctx, p), nil
}

func (a computeNetworks) UnbindPort(ctx context.Context, portID string) error {
	empty := ""
	_, err := a.nets.UpdatePort(serviceContext(ctx), portID, network.PortUpdate{DeviceID: &empty, DeviceOwner: &empty, BindingHostID: &empty})
	return err
}

func (a computeNetworks) DevicePorts(ctx context.Context, deviceID string) ([]compute.PortInfo, error) {
	sctx := serviceContext(ctx)
	list, _, err := a.nets.ListPorts(sctx, network.ListOptions{Filters: map[string][]string{"device_id": {deviceID}}})
	if err != nil {
		return nil, err
	}
	out := make([]compute.PortInfo, 0, len(list))
	byPort := map[string]int{}
	for i := range list {
		byPort[list[i].ID] = i
		out = append(out, *a.portInfo(sctx, &list[i]))
	}
	if len(list) == 0 {
		return out, nil
	}
	// The instance's floating IPs, for its addresses: one query for all
	// of its ports.
	ids := make([]string, 0, len(list))
	for _, p := range list {
		ids = append(ids, p.ID)
	}
	fips, _, err := a.nets.ListFloatingIPs(sctx, network.ListOptions{Filters: map[string][]string{"port_id": ids}})
	if err != nil {
		return nil, err
	}
	for _, f := range fips {
		if i, ok := byPort[f.PortID]; ok {
			out[i].FloatingIPs = append(out[i].FloatingIPs, f.FloatingIPAddress)
		}
	}
	return out, nil
}

func (a computeNetworks) DeletePort(ctx context.Context, portID string) error {
	return a.nets.DeletePort(serviceContext(ctx), portID)
}

// portInfo is p with its network's name and MTU (read with the control
// plane's rights: a port's network may be another project's shared one).
func (a computeNetworks) portInfo(ctx context.Context, p *network.Port) *compute.PortInfo {
	info := &compute.PortInfo{ID: p.ID, NetworkID: p.NetworkID, ProjectID: p.ProjectID, DeviceID: p.DeviceID, MAC: p.MACAddress,
		Status: p.Status}
	for _, ip := range p.FixedIPs {
		info.FixedIPs = append(info.FixedIPs, compute.FixedIP{SubnetID: ip.SubnetID, IP: ip.IPAddress})
	}
	if n, err := a.nets.GetNetwork(serviceContext(ctx), p.NetworkID); err == nil {
		info.NetworkName, info.MTU = n.Name, n.MTU
	}
	return info
}

// FloatingIPByAddress looks the address up among the caller's floating
// IPs, so another project's address is as unknown as a missing one.
func (a computeNetworks) FloatingIPByAddress(ctx context.Context, address string) (*compute.FloatingIPInfo, error) {
	list, _, err := a.nets.ListFloatingIPs(ctx, network.ListOptions{Filters: map[string][]string{"floating_ip_address": {address}}})
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, fault.NotFoundf("Floating IP %s could not be found.", address)
	}
	f := list[0]
	return &compute.FloatingIPInfo{ID: f.ID, Address: f.FloatingIPAddress, PortID: f.PortID, FixedIP: f.FixedIPAddress}, nil
}

func (a computeNetworks) AssociateFloatingIP(ctx context.Context, id, portID, fixedIP string) error {
	_, err := a.nets.UpdateFloatingIP(ctx, id, network.FloatingIPUpdate{SetPort: true, PortID: portID, FixedIPAddress: fixedIP})
	return err
}

func (a computeNetworks) DisassociateFloatingIP(ctx context.Context, id string) error {
	_, err := a.nets.UpdateFloatingIP(ctx, id, network.FloatingIPUpdate{SetPort: true})
	return err
}

func computeNetworkInfo(n *network.Network) compute.NetworkInfo {
	return compute.NetworkInfo{ID: n.ID, Name: n.Name, ProjectID: n.ProjectID, Shared: n.Shared, External: n.External, MTU: n.MTU}
}
