package compute

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/nimbus-cloud/nimbus/agents/agentapi"
	"github.com/nimbus-cloud/nimbus/backend/compute/scheduler"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// ServerRebuild asks to rebuild a server from an image.
type ServerRebuild struct {
	ImageRef string
	// Name and Metadata replace the server's when set (nil keeps them).
	Name     *string
	Metadata map[string]string
	// AdminPass is the new password; one is generated when empty.
	AdminPass string
}

// RebuildServer rebuilds server id from r.ImageRef, keeping its flavor,
// host and UUID. It returns the server (REBUILD) and its new password.
// Kinds: NotFound, Forbidden, Invalid (image unknown or too large),
// Conflict (locked, wrong state).
func (s *Service) RebuildServer(ctx context.Context, id string, r ServerRebuild) (*Server, string, error) {
	srv, _, err := s.serverFor(ctx, id, "os_compute_api:servers:rebuild")
	if err != nil {
		return nil, "", err
	}
	if r.Name != nil {
		if err := checkServerName(*r.Name); err != nil {
			return nil, "", err
		}
	}
	f := &Flavor{ID: srv.Flavor.ID, MemoryMB: srv.Flavor.MemoryMB, RootGB: srv.Flavor.RootGB}
	im, err := s.imageFor(ctx, r.ImageRef, f)
	if err != nil {
		return nil, "", err
	}
	if r.Metadata != nil {
		lim, err := s.quotaLimit(ctx, srv.ProjectID, QuotaMetadataItems)
		if err != nil {
			return nil, "", err
		}
		if err := checkMetadata(r.Metadata, lim); err != nil {
			return nil, "", err
		}
	}
	meta := imageMetaOf(im)
	next := *srv
	next.image = meta
	spec, err := s.instanceSpec(ctx, &next)
	if err != nil {
		return nil, "", err
	}
	pass := r.AdminPass
	if pass == "" {
		pass = randomPassword(12)
	}
	a := actionSpec{apiName: "rebuild", policy: "os_compute_api:servers:rebuild", record: ActionRebuild,
		event: "compute_rebuild_instance", fromVM: []string{VMActive, VMStopped, VMError}, task: TaskRebuilding,
		checkLock: true, agent: agentapi.Action{Kind: agentapi.ActionRebuild, Spec: &spec},
		data: opData{ImageRef: im.ID, Image: &meta},
		prepare: func(tx *sql.Tx, srv *Server) error {
			if r.Name != nil {
				if _, err := tx.ExecContext(ctx, `UPDATE instances SET name = ?, hostname = ? WHERE uuid = ?`,
					*r.Name, hostnameOf(*r.Name), srv.ID); err != nil {
					return err
				}
			}
			if r.Metadata != nil {
				return replaceMetadata(ctx, tx, srv.ID, r.Metadata)
			}
			return nil
		}}
	out, err := s.runAction(ctx, id, a)
	return out, pass, err
}

// hostFor returns host id as the scheduler sees it.
func (s *Service) hostFor(ctx context.Context, id string) (*scheduler.Host, error) {
	hs, err := (&hostSource{s: s}).Hosts(ctx)
	if err != nil {
		return nil, err
	}
	for i := range hs {
		if hs[i].ID == id {
			return &hs[i], nil
		}
	}
	return nil, fault.Conflictf("Compute host %s could not be found.", id)
}

// ResizeServer resizes server id to flavorRef on its host: the new flavor
// is claimed beside the old one, which is released on ConfirmResize (or
// restored by RevertResize). Kinds: NotFound, Forbidden, Invalid (unknown
// or same flavor, disk shrink, no room on the host), OverQuota, Conflict.
func (s *Service) ResizeServer(ctx context.Context, id, flavorRef string) error {
	srv, c, err := s.serverFor(ctx, id, "os_compute_api:servers:resize")
	if err != nil {
		return err
	}
	if err := checkLocked(srv, c); err != nil {
		return err
	}
	if err := checkState(srv, "resize", []string{VMActive, VMStopped}); err != nil {
		return err
	}
	nf, err := s.GetFlavor(ctx, flavorRef)
	if fault.Is(err, fault.NotFound) {
		return fault.Invalidf("Flavor %s could not be found.", flavorRef)
	}
	if err != nil {
		return err
	}
	if nf.ID == srv.Flavor.ID {
		return fault.Invalidf("When resizing, instances must change flavor!")
	}
	if nf.RootGB == 0 && srv.Flavor.RootGB > 0 {
		return fault.Invalidf("Resize to zero disk flavor is not allowed.")
	}
	if nf.RootGB < srv.Flavor.RootGB || nf.EphemeralGB < srv.Flavor.EphemeralGB {
		return fault.Invalidf("Resize error: Unable to resize disk down.")
	}
	im := &ImageInfo{ID: srv.image.ID, Size: srv.image.Size, VirtualSize: srv.image.VirtualSize,
		MinDiskGB: srv.image.MinDiskGB, MinRAMMB: srv.image.MinRAMMB}
	if err := checkImageFits(im, nf); err != nil {
		return err
	}
	newInfo := flavorInfo(nf)
	host, err := s.hostFor(ctx, srv.HostID)
	if err != nil {
		return err
	}
	if srv.OldFlavor != nil {
		return errInvalidState("resize", srv.ID, "vm_state", srv.VMState)
	}
	ok, err := s.sched.ClaimResize(ctx, *host, srv.ID, resources(newInfo, srv.image))
	if err != nil {
		return err
	}
	if !ok {
		return fault.Invalidf("No valid host was found. There are not enough resources on host %s for flavor %s.", srv.Node, nf.Name)
	}
	next := *srv
	next.Flavor = newInfo
	spec, err := s.instanceSpec(ctx, &next)
	if err == nil {
		_, err = s.runAction(ctx, id, actionSpec{apiName: "resize", policy: "os_compute_api:servers:resize", record: ActionResize,
			event: "compute_resize_instance", fromVM: []string{VMActive, VMStopped}, task: TaskResizeMigrate, checkLock: true,
			agent: agentapi.Action{Kind: agentapi.ActionResize, Spec: &spec},
			set: map[string]any{"flavor": toJSON(newInfo), "vcpus": newInfo.VCPUs, "memory_mb": newInfo.MemoryMB,
				"root_gb": rootGB(newInfo, srv.image), "old_flavor": toJSON(srv.Flavor), "new_flavor": toJSON(newInfo)},
			prepare: func(tx *sql.Tx, cur *Server) error {
				// Quotas count the larger flavor during a resize; the
				// instance row now holds the new one.
				return s.checkResizeQuota(ctx, tx, cur, newInfo)
			}})
	}
	if err != nil {
		// Undo the claim made above.
		if rerr := s.sched.RevertResize(ctx, srv.ID); rerr != nil {
			s.log.Error("resize: undo claim", "instance", srv.ID, "err", rerr)
		}
		return err
	}
	return nil
}

// checkResizeQuota refuses a resize whose growth in cores or RAM exceeds
// the project's quota; usage read inside tx already counts the new flavor.
func (s *Service) checkResizeQuota(ctx context.Context, tx *sql.Tx, srv *Server, nf FlavorInfo) error {
	own, err := s.st.projectQuotas(ctx, tx, srv.ProjectID)
	if err != nil {
		return err
	}
	lim := s.effectiveQuotas(own)
	used, err := s.st.projectUsage(ctx, tx, srv.ProjectID)
	if err != nil {
		return err
	}
	for _, r := range []struct {
		name  string
		delta int64
	}{{QuotaCores, nf.VCPUs - srv.Flavor.VCPUs}, {QuotaRAM, nf.MemoryMB - srv.Flavor.MemoryMB}} {
		if r.delta <= 0 || lim[r.name] < 0 {
			continue
		}
		if used[r.name] > lim[r.name] {
			before := used[r.name] - r.delta
			return fault.OverQuotaf("Quota exceeded for %s: Requested %d, but already used %d of %d %s",
				r.name, r.delta, before, lim[r.name], r.name)
		}
	}
	return nil
}

// ConfirmResize keeps a resized server's new flavor and releases the old
// one's claim. Kinds: NotFound, Forbidden, Conflict.
func (s *Service) ConfirmResize(ctx context.Context, id string) error {
	_, err := s.runAction(ctx, id, actionSpec{apiName: "confirmResize", policy: "os_compute_api:servers:confirm_resize",
		record: ActionConfirm, event: "compute_confirm_resize", fromVM: []string{VMResized}, task: TaskResizeConfirm,
		checkLock: true, agent: agentapi.Action{Kind: agentapi.ActionConfirm}})
	return err
}

// RevertResize returns a resized server to its old flavor and claim.
// Kinds: NotFound, Forbidden, Conflict.
func (s *Service) RevertResize(ctx context.Context, id string) error {
	srv, _, err := s.serverFor(ctx, id, "os_compute_api:servers:revert_resize")
	if err != nil {
		return err
	}
	if srv.VMState != VMResized || srv.OldFlavor == nil {
		return errInvalidState("revertResize", srv.ID, "vm_state", srv.VMState)
	}
	prev := *srv
	prev.Flavor = *srv.OldFlavor
	spec, err := s.instanceSpec(ctx, &prev)
	if err != nil {
		return err
	}
	_, err = s.runAction(ctx, id, actionSpec{apiName: "revertResize", policy: "os_compute_api:servers:revert_resize",
		record: ActionRevert, event: "compute_revert_resize", fromVM: []string{VMResized}, task: TaskResizeReverting,
		checkLock: true, agent: agentapi.Action{Kind: agentapi.ActionRevert, Spec: &spec}})
	return err
}

// CreateImage snapshots server id into a new image named name (queued
// until the agent uploads it) and returns the image's ID. Kinds: NotFound,
// Forbidden, Invalid, Conflict, Unavailable (no image service).
func (s *Service) CreateImage(ctx context.Context, id, name string, metadata map[string]string) (string, error) {
	srv, _, err := s.serverFor(ctx, id, "os_compute_api:servers:create_image")
	if err != nil {
		return "", err
	}
	if len(name) == 0 || len(name) > 255 {
		return "", fault.Invalidf("Invalid input for field/attribute name. An image name must be 1 to 255 characters.")
	}
	fromVM := []string{VMActive, VMStopped, VMPaused, VMSuspended}
	if err := checkState(srv, "createImage", fromVM); err != nil {
		return "", err
	}
	if s.cfg.Images == nil {
		return "", fault.New(fault.Unavailable, "The image service is not available.")
	}
	props := map[string]string{}
	for k, v := range metadata {
		props[k] = v
	}
	for k, v := range srv.image.Properties {
		if _, ok := props[k]; !ok {
			props[k] = v
		}
	}
	props["image_type"], props["instance_uuid"], props["base_image_ref"] = "snapshot", srv.ID, srv.ImageRef
	props["user_id"], props["owner_project_name"] = srv.UserID, srv.ProjectID
	im, err := s.cfg.Images.CreateSnapshotImage(ctx, SnapshotSpec{
		Name: name, DiskFormat: "qcow2", ContainerFormat: "bare",
		MinDiskGB: rootGB(srv.Flavor, srv.image), MinRAMMB: srv.image.MinRAMMB, Properties: props,
	})
	if err != nil {
		return "", fmt.Errorf("create snapshot image: %w", err)
	}
	_, err = s.runAction(ctx, id, actionSpec{apiName: "createImage", policy: "os_compute_api:servers:create_image",
		record: ActionCreateImage, event: "compute_snapshot_instance", fromVM: fromVM, task: TaskImageSnapshot,
		agent: agentapi.Action{Kind: agentapi.ActionSnapshot, SnapshotImageID: im.ID}, data: opData{ImageID: im.ID}})
	if err != nil {
		if derr := s.cfg.Images.DeleteImage(ctx, im.ID); derr != nil {
			s.log.Warn("delete unused snapshot image", "image", im.ID, "err", derr)
		}
		return "", err
	}
	return im.ID, nil
}
